"""``jaxpriv eval``: how well a protection method hides identities, and what it costs.

:mod:`~jaxpriv.eval.protocol` runs the protocol (identity folders, protection, verification at
calibrated thresholds, robustness, utility, the model's training split),
:mod:`~jaxpriv.eval.transfer` measures with several recognizers (white-box or black-box),
:mod:`~jaxpriv.eval.models` finds a method's trained model,
:mod:`~jaxpriv.eval.report` writes its Markdown report and plot, :mod:`~jaxpriv.eval.cli` is the
command line.
"""

from jaxpriv.eval.cli import add_eval_parser, cmd_eval
from jaxpriv.eval.protocol import evaluate
from jaxpriv.eval.report import markdown, plot

__all__ = ["add_eval_parser", "cmd_eval", "evaluate", "markdown", "plot"]

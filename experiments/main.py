"""Run an experiment: ``run(config, workdir)`` of ``experiments/<config.experiment>.py``.

    python -m experiments.main --config experiments/configs/verify_table.py \
        --workdir DIR [--config.<field>=... to override a config value]

``--workdir`` (required) holds what a run writes besides its committed results: checkpoints,
logs, caches, generated data. It is made absolute from the current directory; then the process
changes into the repository root, so every relative path of a config (data such as
``../shared/data/faces/glint``, ``ckpt/…``, ``experiments/results/…``) is read from the
repository root, wherever the command was started. A bad setting or input (a ``JaxprivError``
of the run) is printed as one line, ``jaxpriv: error: …``, with exit status 2.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

from jaxpriv.errors import JaxprivError

ROOT = Path(__file__).resolve().parents[1]
"""The repository root: relative config paths are resolved from here."""

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment config (.py)",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "run directory (checkpoints, logs, caches)",
                               required=True)


def main(argv: list[str]) -> None:
    del argv
    config = _CONFIG.value
    workdir = Path(_WORKDIR.value).absolute()
    os.chdir(ROOT)
    module = importlib.import_module(f"experiments.{config.experiment}")
    try:
        module.run(config, workdir)
    except JaxprivError as e:  # a bad setting or input: one line, as the CLI prints it
        print(f"jaxpriv: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)

"""``jaxpriv eval``: how well a protection method hides identities, and what it costs.

The command line (:func:`add_eval_parser`, :func:`cmd_eval`) over the protocol
(:mod:`jaxpriv.eval.protocol`) and its report (:mod:`jaxpriv.eval.report`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from jaxpriv.data.splits import SPLITS
from jaxpriv.errors import JaxprivError
from jaxpriv.eval.protocol import CROP_MAX_SIDE, evaluate
from jaxpriv.eval.report import markdown, plot
from jaxpriv.faces import DEFAULT_DETECTOR
from jaxpriv.faces.detect import detector_arg
from jaxpriv.io import check_writable, write_text_atomic
from jaxpriv.methods import MethodSpec, Option, add_option_flags, get_method, given_options
from jaxpriv.protect import seed_arg

_OWN_FLAGS = {"method", "data", "recognizers", "weights", "json", "report", "max_per_identity",
              "sweep", "plot", "seed", "aligned_crops", "overwrite", "quiet", "unseen_only",
              "split", "detector"}


_DEFAULTS = {("recognizers", "dlib_resnet")}  # left out of command_line


def parse_sweep(text: str, spec: MethodSpec) -> tuple[str, list[Any]]:
    """``"param=v1,v2"`` → (param, typed values), checked against the method's options."""
    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    options: dict[str, Option] = {o.name: o for o in spec.options}
    if not sep or not values.strip():
        raise JaxprivError(f"--sweep must look like param=v1,v2,... (got {text!r})")
    if name not in options:
        raise JaxprivError(f"--sweep {name}: not an option of --method {spec.name} "
                           f"(options: {', '.join(options) or 'none'})")
    opt = options[name]
    try:
        typed = [opt.type(v.strip()) for v in values.split(",") if v.strip()]
    except ValueError as e:
        raise JaxprivError(f"--sweep {name}: {e}") from e
    if opt.choices is not None and any(v not in opt.choices for v in typed):
        raise JaxprivError(f"--sweep {name}: values must be among {list(opt.choices)}")
    return name, typed


def command_line(args: argparse.Namespace, options: dict[str, Any]) -> str:
    """The ``jaxpriv eval`` command equivalent to ``args`` (for the report)."""
    parts = ["jaxpriv", "eval", "--method", args.method, "--data", str(args.data)]
    for flag in ("recognizers", "weights", "max_per_identity", "sweep", "seed", "json", "report",
                 "plot"):
        value = getattr(args, flag)
        if value is not None and (flag, value) not in _DEFAULTS:
            parts += ["--" + flag.replace("_", "-"), str(value)]
    if args.aligned_crops is not None:
        parts.append("--aligned-crops" if args.aligned_crops else "--no-aligned-crops")
    if args.unseen_only:
        parts.append("--unseen-only")
    if args.split != "all":
        parts += ["--split", args.split]
    if args.detector != DEFAULT_DETECTOR:
        parts += ["--detector", args.detector]
    for name, value in options.items():
        parts += ["--" + name.replace("_", "-"), str(value)]
    return " ".join(parts)


def cmd_eval(args: argparse.Namespace) -> int:
    """Run ``jaxpriv eval`` from parsed arguments."""
    spec = get_method(args.method)
    if getattr(args, "recognizer", None) is not None and "recognizer" not in {
            o.name for o in spec.options}:
        raise JaxprivError(f"--recognizer is not an option of --method {spec.name} (it chooses "
                           "the recognizer a method is built on); the recognizers that measure "
                           "the probes are --recognizers")
    given = given_options(args, spec, skip=_OWN_FLAGS)
    outputs = [Path(p) for p in (args.json, args.report, args.plot) if p]
    for p in outputs:
        check_writable(p, overwrite=args.overwrite)
    param = None
    option_sets = [given]
    if args.sweep:
        param, values = parse_sweep(args.sweep, spec)
        option_sets = [{**given, param: v} for v in values]
    if args.max_per_identity is not None and args.max_per_identity < 1:
        raise JaxprivError("--max-per-identity must be >= 1")
    report = evaluate(args.data, spec.name, option_sets, recognizer=args.recognizers,
                      max_per_identity=args.max_per_identity, seed=args.seed,
                      aligned_crops=args.aligned_crops, weights=args.weights,
                      progress=not args.quiet, unseen_only=args.unseen_only,
                      identity_split=args.split, detector=args.detector)
    report["sweep"] = param
    report["command"] = command_line(args, given)
    text = markdown(report)
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=2) + "\n", overwrite=args.overwrite)
    if args.report:
        write_text_atomic(args.report, text, overwrite=args.overwrite)
    if args.plot:
        plot(report, args.plot, param, overwrite=args.overwrite)
    print(text)
    return 0


def add_eval_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to ``jaxpriv``'s subparsers."""
    from jaxpriv.methods import method_names

    p = sub.add_parser("eval", help="measure a protection method on identity folders",
                       description=__doc__.splitlines()[0])
    p.add_argument("--method", required=True, choices=method_names())
    p.add_argument("--data", required=True, help="folder of <identity>/<images> folders")
    p.add_argument("--recognizers", default="dlib_resnet",
                   help="recognizer(s) that measure every probe, comma-separated, e.g. "
                   "dlib_resnet,sface: each at its own threshold on its own chip, white-box if it "
                   "built the protection, else black-box; the first gives the main tables "
                   "(default dlib_resnet). --recognizer is the method's own option (cloak, mask: "
                   "the recognizer(s) the protection is built on), as in jaxpriv protect")
    p.add_argument("--weights", default=None,
                   help="weights for the first recognizer, if it ships none")
    p.add_argument("--json", default=None, help="write the full report as JSON")
    p.add_argument("--report", default=None, help="write the report as Markdown")
    p.add_argument("--plot", default=None, help="write a privacy–utility plot (PNG, matplotlib)")
    p.add_argument("--max-per-identity", type=int, default=None,
                   help="at most N probes per identity (the reference is extra)")
    p.add_argument("--sweep", default=None, help="param=v1,v2,...: one run per value")
    p.add_argument("--seed", type=seed_arg, default=0, help="randomness of the method")
    p.add_argument("--aligned-crops", action=argparse.BooleanOptionalAction, default=None,
                   help="inputs are pre-aligned face crops (default: auto, square ≤ "
                   f"{CROP_MAX_SIDE} px)")
    p.add_argument("--unseen-only", action="store_true",
                   help="only identities the method's model (smna, deid, mask) was never trained "
                   "on, as its checkpoint records them")
    p.add_argument("--split", default="all", choices=("all", *SPLITS),
                   help="only the identities of one split of jaxpriv.data.splits (test: for "
                   "reported numbers; validation: to choose defaults); default all")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    detector_arg(p)
    add_option_flags(p, skip=_OWN_FLAGS)
    p.set_defaults(func=cmd_eval)
    return p

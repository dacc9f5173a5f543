"""What every experiment does last: write its JSON and Markdown results (committed outputs under
``experiments/results/``) and print the Markdown."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ml_collections


def recorded_command(argv: Sequence[str] | None = None) -> str:
    """The ``python -m experiments.main`` command of this run (``argv``: its arguments, default
    ``sys.argv[1:]``) as a results file records it: the value of ``--workdir`` (a folder of this
    machine) replaced by ``DIR``."""
    args = list(sys.argv[1:] if argv is None else argv)
    out = []
    for i, a in enumerate(args):
        if i and args[i - 1] == "--workdir":
            a = "DIR"
        elif a.startswith("--workdir="):
            a = "--workdir=DIR"
        out.append(a)
    return " ".join(["python -m experiments.main", *out])


def write_results(config: ml_collections.ConfigDict, result: dict[str, Any], text: str) -> None:
    """``result`` as JSON to ``config.out_json`` and ``text`` to ``config.out_md`` (folders
    created; a rerun replaces them), then print ``text``."""
    Path(config.out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(config.out_json).write_text(json.dumps(result, indent=2) + "\n")
    Path(config.out_md).write_text(text)
    print(text)

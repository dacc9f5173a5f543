"""The trained model behind a method (smna: its SMGG checkpoint; deid: the face generator; mask:
the mask model): where it is, for the split and white-box reports of ``jaxpriv eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jaxpriv.methods import get_method


def model_dir(method: str, options: dict[str, Any]) -> Path | None:
    """The model directory of ``method`` with ``options`` (smna: its SMGG checkpoint; deid: the
    face generator; mask: the mask model); ``None`` for a method without a trained model."""
    opts = get_method(method).in_effect(**options)
    if method == "smna":
        from jaxpriv.smna.method import resolve_checkpoint

        return Path(resolve_checkpoint(opts["checkpoint"], opts["noise"]))
    if method == "deid" and opts.get("generator") == "mobilestylegan":
        return None  # pretrained on FFHQ, not on any identity of ours
    if method == "deid":
        from jaxpriv.deid.method import checkpoint_path

        return Path(checkpoint_path(opts["checkpoint"]))
    if method == "mask":
        from jaxpriv.masktpl.model import default_model_dir

        return Path(default_model_dir())
    return None


def cwd_relative(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (no home paths in
    committed reports)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)

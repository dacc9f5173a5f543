"""Where the shipped model checkpoints live.

The repository's ``ckpt/`` folder is installed with the package as ``jaxpriv/ckpt/`` (see
``pyproject.toml``), so ``pip install jaxpriv`` users get the same default models as a source
checkout, with no download at run time.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
CANDIDATES = (_PACKAGE / "ckpt", _PACKAGE.parent / "ckpt")  # installed wheel, source checkout


def shipped_checkpoint(name: str) -> Path:
    """The folder of the shipped checkpoint ``name`` (e.g. ``"face_gan_64"``): from the installed
    package if it is there, else from the source checkout's ``ckpt/``. Returns the installed
    location when neither exists, so callers' "not found" errors name a real place."""
    for root in CANDIDATES:
        if (root / name).is_dir():
            return root / name
    return CANDIDATES[0] / name

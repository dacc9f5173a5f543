"""Datasets: the project's one identity split (`jaxpriv.data.splits`: train / validation /
test), the `identity_faces` TFDS builder over a folder of `<identity>/<image>` files, the
SMNA sensitivity-map shard format (`jaxpriv.data.map_shards`) and its TFDS builder
(`jaxpriv.data.sensitivity_maps`).

Import-light on purpose (tensorflow_datasets is a heavy import): the names below are resolved on
first use (PEP 562), so ``import jaxpriv.data.map_shards`` does not load TFDS.
"""

from __future__ import annotations

import importlib
from typing import Any

from jaxpriv.data.splits import SPLITS, identity_split, in_split, split_identities

_FROM_IDENTITY_FACES = (
    "IdentityFaces",
    "IdentityFacesConfig",
    "build_identity_faces",
    "identity_faces_config",
    "list_identity_images",
    "load_identity_faces",
)
__all__ = ["SPLITS", "identity_split", "in_split", "split_identities", *_FROM_IDENTITY_FACES]


def __getattr__(name: str) -> Any:
    """Resolve the TFDS names above from :mod:`jaxpriv.data.identity_faces` on first access."""
    if name in _FROM_IDENTITY_FACES:
        return getattr(importlib.import_module("jaxpriv.data.identity_faces"), name)
    raise AttributeError(f"module 'jaxpriv.data' has no attribute {name!r}")

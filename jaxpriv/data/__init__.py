"""Datasets: the `identity_faces` TFDS builder over a folder of `<identity>/<image>` files, the
SMNA sensitivity-map shard format (`jaxpriv.data.map_shards`) and its TFDS builder
(`jaxpriv.data.sensitivity_maps`).

Import-light on purpose (tensorflow_datasets is a heavy import): the names below are resolved on
first use (PEP 562), so ``import jaxpriv.data.map_shards`` does not load TFDS.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "IdentityFaces",
    "IdentityFacesConfig",
    "build_identity_faces",
    "identity_faces_config",
    "list_identity_images",
    "load_identity_faces",
    "split_identities",
]


def __getattr__(name: str) -> Any:
    """Resolve the public names above from :mod:`jaxpriv.data.identity_faces` on first access."""
    if name in __all__:
        return getattr(importlib.import_module("jaxpriv.data.identity_faces"), name)
    raise AttributeError(f"module 'jaxpriv.data' has no attribute {name!r}")

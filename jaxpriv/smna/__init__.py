"""SMNA (Sensitivity Map Noise-Adding): ground-truth sensitivity maps (Alg. 1) and their dataset.

Import-light on purpose: submodules are imported on first use, e.g.
``from jaxpriv.smna.sensitivity import sensitivity_map`` or ``jaxpriv.smna.sensitivity_map``
(resolved lazily); ``jaxpriv.smna.dataset.load_maps`` reads generated maps as NumPy arrays.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "sensitivity_map": "jaxpriv.smna.sensitivity",
    "sensitivity_maps": "jaxpriv.smna.sensitivity",
    "sensitivity_map_loop": "jaxpriv.smna.sensitivity",
    "to_smna_image": "jaxpriv.smna.sensitivity",
    "load_maps": "jaxpriv.smna.dataset",
    "generate_maps": "jaxpriv.smna.dataset",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """Resolve the public names above on first access (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jaxpriv.smna' has no attribute {name!r}")

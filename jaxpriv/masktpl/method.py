"""The ``mask`` entry of the method registry (``jaxpriv protect --method mask``).

Through the generic pipeline (evaluation sweeps) the image's ``jax.random`` key keys the template
directly and nothing reversible is kept; the CLI's dedicated path
(:func:`jaxpriv.cli.protect_mask`) derives the key from a password and writes key files."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from jaxpriv.faces import Face
from jaxpriv.masktpl.xor import DEFAULT_BITS, protect_image
from jaxpriv.methods import MethodSpec, Option, ProtectFn, register_method


def mask_method(bits: int = DEFAULT_BITS, password_file: str | None = None) -> ProtectFn:
    """x ⊕ (M ⊙ P) with the shipped mask model, keyed by the pipeline's key (not reversible
    from a password: use ``jaxpriv protect --method mask`` for that)."""
    del password_file  # only the CLI's reversible path uses it

    def protect(image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        return protect_image(image, faces, key, bits)[0]

    return protect


register_method(MethodSpec(
    "mask", "reversible mask template + low-bit XOR pad (paper 004); needs a password",
    mask_method,
    (Option("bits", int, DEFAULT_BITS, "mask: lowest bits the XOR may change (k)",
            choices=(1, 2, 3, 4)),
     Option("password_file", str, None,
            "mask/restore: file whose first line is the password (else a prompt)")),
))

"""The ``mask`` entry of the method registry (``jaxpriv protect --method mask``): the template's
k low bits steered against ``recognizer`` (default dlib_resnet,sface; :mod:`.steer`), the pad
sealed in the key file.

Its build is a :class:`jaxpriv.methods.MethodRun`. Written to files by
:func:`jaxpriv.protect.protect_files` it is reversible: the password (``password_file`` or a
prompt, read once per run) and a fresh salt per photo key the template, and each output gets its
sealed key file ``<output>.jpkey``. Called in memory (evaluation sweeps, the demo) the image's
``jax.random`` key keys the template directly and nothing reversible is kept (no password)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from jaxpriv.faces import Face
from jaxpriv.masktpl.keys import read_password
from jaxpriv.masktpl.model import load_model
from jaxpriv.masktpl.steer import DEFAULT_RECOGNIZERS, DEFAULT_STEPS, Steering
from jaxpriv.masktpl.xor import DEFAULT_BITS, KEY_SUFFIX, protect_image, protect_sealed
from jaxpriv.methods import (
    MethodRun,
    MethodSpec,
    Option,
    PhotoFn,
    at_least,
    recognizer_option,
    register_method,
)


def mask_method(bits: int = DEFAULT_BITS, password_file: str | None = None,
                recognizer: str = DEFAULT_RECOGNIZERS, steps: int = DEFAULT_STEPS) -> MethodRun:
    """x ⊕ P with the shipped mask model's template M and P steered against ``recognizer``
    (at most ``steps`` texture-weighted gradient steps, each projected back to face SSIM ≥
    :data:`~jaxpriv.masktpl.steer.DEFAULT_SSIM_TARGET`): keyed by the pipeline's key in memory,
    by the password and a fresh salt (plus a sealed key file holding P) when written by
    ``protect_files``."""
    steering = Steering(recognizer, steps) if steps else None  # 0: the generator's pad as is

    def protect(image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        return protect_image(image, faces, key, bits, steering=steering)[0]

    def start() -> PhotoFn:
        password = read_password(password_file, confirm=True)
        model = load_model()

        def photo(image: np.ndarray, faces: Sequence[Face], key: jax.Array
                  ) -> tuple[np.ndarray, tuple[bytes, ...]]:
            del key  # the randomness is the password's: restore needs only it and the key file
            protected, sealed = protect_sealed(image, faces, password, bits, model,
                                               steering=steering)
            return protected, (sealed,)

        return photo

    return MethodRun(protect, start=start, extra_suffixes=(KEY_SUFFIX,), reversible=True)


register_method(MethodSpec(
    "mask", "reversible mask template + low-bit XOR pad (paper 004); needs a password",
    mask_method,
    (Option("bits", int, DEFAULT_BITS, "mask: lowest bits the XOR may change (k)",
            choices=(1, 2, 3, 4)),
     Option("password_file", str, None,
            "mask/restore: file whose first line is the password (else a prompt)"),
     recognizer_option(DEFAULT_RECOGNIZERS),
     Option("steps", int, DEFAULT_STEPS, "mask: at most this many steering steps (0: the "
            "generator's pad)", check=at_least(0))),
))

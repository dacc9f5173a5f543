"""Plate characters ↔ 2-digit codes and the Laplace mechanism on them (paper 001 §5.3.2, eq. 10-12).

Pipeline for one plate string: text → 2-digit codes (§5.3.2: province → 00-30 by Table A1,
digits 0-9 → 00-09, letters → 10-33) → code + Lap(Δf/ε) (eq. 11-12, Δf = 1) → round → cyclic
wrap into the valid range of each position ("cyclic shifting", §5.3.2) → a new, always valid
plate string. Privacy metric: the edit distance between the original and the synthetic plate
(§5.2.1 "Distance", threshold 3).

What ε means here (stated honestly): each character code is released by the Laplace mechanism
with sensitivity Δf = 1, i.e. ε-DP *per character code* between codes that differ by 1 in the
code order; codes k apart are only (kε)-indistinguishable, and a plate of n characters spends
nε in total (sequential composition). Rounding and wrapping are post-processing.

Two alphabets:

* ``"cn"`` (Chinese plates, as the paper): position 0 a province (codes 0-30), position 1 a
  letter (10-33), positions 2.. a digit or letter (0-33). Letters are the 24 of CCPD (no I, O).
* ``"latin"`` (e.g. the openalpr US/EU photos): digits 0-9 → 0-9, letters A-Z → 10-35; each
  position wraps within the class of its original character (digit stays digit, letter stays
  letter), so the plate keeps its format.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv.errors import JaxprivError

Scheme = Literal["cn", "latin"]

PROVINCES = tuple("京津冀鲁晋蒙豫辽苏吉宁皖陕鄂沪黑浙甘赣湘青渝川闽贵粤桂云琼新藏")
"""Table A1: provinces sorted by distance to Beijing; the index is the 2-digit code 00-30.
(Table A1 lists "Shanxi" twice: 04 is 山西 晋 at 407 km, 12 is 陕西 陕 at 908 km.)"""
DIGITS = string.digits
"""Digits 0-9 → codes 00-09 (§5.3.2)."""
CN_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
"""The 24 letters of Chinese plates (no I, O) → codes 10-33 (§5.3.2)."""
LATIN_LETTERS = string.ascii_uppercase
"""Letters of Latin plates → codes 10-35."""

_CN_REST = DIGITS + CN_LETTERS  # code = index, 0..33
_LATIN = DIGITS + LATIN_LETTERS  # code = index, 0..35
_SEPARATORS = " -·•."  # dropped when normalising user-given text


def normalise_text(text: str) -> str:
    """Upper case, without the separators (spaces, dashes, dots) users put in plate strings."""
    return "".join(c for c in text.upper() if c not in _SEPARATORS)


def plate_scheme(text: str) -> Scheme:
    """``"cn"`` when the plate starts with a Table A1 province, else ``"latin"``."""
    t = normalise_text(text)
    return "cn" if t and t[0] in PROVINCES else "latin"


def encode_plate(text: str) -> tuple[int, ...]:
    """Plate string → 2-digit codes (§5.3.2; e.g. "京A132B3" → 00 10 01 03 02 11 03).

    Chinese: province by Table A1 (00-30), digits 00-09, letters 10-33 (no I, O). Latin:
    digits 00-09, letters 10-35. Spaces, dashes and dots are dropped; lower case is upper-cased."""
    t = normalise_text(text)
    if not t:
        raise JaxprivError("empty plate text")
    if plate_scheme(t) == "cn":
        if len(t) < 2 or t[1] not in CN_LETTERS:
            raise JaxprivError(f"plate {text!r}: the second character must be a letter (no I, O)")
        bad = [c for c in t[2:] if c not in _CN_REST]
        if bad:
            raise JaxprivError(f"plate {text!r}: unsupported character(s) {bad} (0-9, A-Z w/o I O)")
        return (PROVINCES.index(t[0]), 10 + CN_LETTERS.index(t[1]),
                *(_CN_REST.index(c) for c in t[2:]))
    bad = [c for c in t if c not in _LATIN]
    if bad:
        raise JaxprivError(f"plate {text!r}: unsupported character(s) {bad} (need a Table A1 "
                           "province first, or only 0-9 and A-Z)")
    return tuple(_LATIN.index(c) for c in t)


def decode_plate(codes: Sequence[int], scheme: Scheme) -> str:
    """Inverse of :func:`encode_plate` for valid codes of ``scheme``."""
    c = [int(v) for v in codes]
    try:
        if scheme == "cn":
            if c[0] < 0 or not 10 <= c[1] <= 33 or min(c[2:], default=0) < 0:
                raise IndexError
            return PROVINCES[c[0]] + CN_LETTERS[c[1] - 10] + "".join(_CN_REST[v] for v in c[2:])
        if min(c) < 0:
            raise IndexError
        return "".join(_LATIN[v] for v in c)
    except IndexError:
        raise JaxprivError(f"codes {c} are not a valid {scheme} plate") from None


def code_ranges(text: str) -> np.ndarray:
    """Valid code interval [lo, hi] of every position, shape (n, 2) (§5.3.2 cyclic shifting).

    Chinese: [0, 30] (provinces), [10, 33] (letters), then [0, 33]. Latin: [0, 9] where the
    original character is a digit, [10, 35] where it is a letter."""
    codes = encode_plate(text)
    if plate_scheme(text) == "cn":
        return np.array([(0, len(PROVINCES) - 1), (10, 33)] + [(0, 33)] * (len(codes) - 2))
    return np.array([(0, 9) if c < 10 else (10, 35) for c in codes])


def code_noise(key: jax.Array, shape: int | tuple[int, ...], epsilon: float,
               sensitivity: float = 1.0) -> jax.Array:
    """Draws of Lap(Δf/ε) (eq. 11-12), one per character code: ``jax.random.laplace`` × Δf/ε.

    ``shape`` is the number of codes, or e.g. (draws, codes) for many synthetic plates at once."""
    if not epsilon > 0:
        raise JaxprivError(f"epsilon must be > 0, got {epsilon}")
    if not sensitivity > 0:
        raise JaxprivError(f"sensitivity must be > 0, got {sensitivity}")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return jax.random.laplace(key, shape, jnp.float32) * (sensitivity / epsilon)


def wrap_codes(values: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Round, then wrap cyclically into [lo, hi] per position: lo + (v - lo) mod (hi - lo + 1).

    ``values`` (..., n) against ``ranges`` (n, 2) from :func:`code_ranges`."""
    v = np.rint(np.asarray(values, np.float64)).astype(np.int64)
    lo, hi = ranges[:, 0], ranges[:, 1]
    return lo + np.mod(v - lo, hi - lo + 1)


def perturb_plate(text: str, key: jax.Array, epsilon: float, sensitivity: float = 1.0) -> str:
    """The DP synthetic plate of Fig. 6: codes + Lap(Δf/ε), rounded and wrapped, decoded."""
    codes = np.asarray(encode_plate(text), np.float64)
    noise = np.asarray(code_noise(key, len(codes), epsilon, sensitivity), np.float64)
    return decode_plate(wrap_codes(codes + noise, code_ranges(text)), plate_scheme(text))


def is_valid_plate(text: str, scheme: Scheme | None = None) -> bool:
    """Is ``text`` a well-formed plate of ``scheme`` (default: its own)?"""
    if scheme is None:
        scheme = plate_scheme(text)
    if scheme == "cn":
        return (len(text) >= 3 and text[0] in PROVINCES and text[1] in CN_LETTERS
                and all(c in _CN_REST for c in text[2:]))
    return len(text) >= 1 and all(c in _LATIN for c in text)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute = 1): the plate "Distance" of §5.2.1."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]

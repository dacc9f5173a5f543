"""The one identity split of the project: train / validation / test, written down once.

Every experiment, model and reported number uses this rule (no per-experiment fractions or
seeds): an identity's split is a pure function of its name,

    u = int(SHA-256("0:" + name)) / 2**256,   test if u < 0.2, validation if u < 0.3, else train,

so it does not depend on which other identities a dataset holds (a split never changes as data
grows), nor on numpy or Python versions. Models are fitted on train, defaults are chosen on
validation, reported numbers come from test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from jaxpriv.errors import JaxprivError

SPLITS = ("train", "validation", "test")
SALT = "0"
TEST_BELOW = 0.2  # share of identities in test
VALIDATION_BELOW = 0.3  # test + validation share


def identity_uniform(name: str) -> float:
    """u in [0, 1): the SHA-256 of ``"<SALT>:<name>"`` read as a fraction of 2**256."""
    return int(hashlib.sha256(f"{SALT}:{name}".encode()).hexdigest(), 16) / 2**256


def identity_split(name: str) -> str:
    """``"train"``, ``"validation"`` or ``"test"`` for one identity name (module docstring)."""
    u = identity_uniform(name)
    return "test" if u < TEST_BELOW else "validation" if u < VALIDATION_BELOW else "train"


def split_identities(names: Iterable[str]) -> dict[str, list[str]]:
    """``{"train": [...], "validation": [...], "test": [...]}``: the unique names, sorted."""
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for name in sorted(set(names)):
        out[identity_split(name)].append(name)
    return out


def in_split(names: Iterable[str], split: str) -> np.ndarray:
    """Boolean mask: which of ``names`` (one per example) belong to identities of ``split``."""
    if split not in SPLITS:
        raise JaxprivError(f"unknown split {split!r}: one of {', '.join(SPLITS)}")
    return np.array([identity_split(str(n)) == split for n in names], dtype=bool)

"""The one identity split (jaxpriv.data.splits): written down once, stable as data grows."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from jaxpriv.data import SPLITS, identity_split, in_split, split_identities
from jaxpriv.errors import JaxprivError

from .conftest import GLINT, SHARED

CELEBA = SHARED / "faces" / "celeba299"


def test_rule_is_the_documented_sha256_threshold() -> None:
    for name in ("Hugh_Laurie", "Tom_Hanks", "7212", "alice", "Ünïcode name"):
        u = int(hashlib.sha256(f"0:{name}".encode()).hexdigest(), 16) / 2**256
        want = "test" if u < 0.2 else "validation" if u < 0.3 else "train"
        assert identity_split(name) == want


def test_split_of_a_name_never_depends_on_the_other_names() -> None:
    names = [f"person_{i}" for i in range(200)]
    split = split_identities(names)
    assert sorted(sum(split.values(), [])) == sorted(names)
    assert all(v == sorted(v) for v in split.values())
    grown = split_identities(list(reversed(names)) + [f"new_{i}" for i in range(50)] + names[:3])
    for s in SPLITS:
        assert set(split[s]) <= set(grown[s])
    shares = {s: len(v) / len(names) for s, v in split.items()}  # 200 draws: within ±0.09
    assert abs(shares["test"] - 0.2) < 0.09 and abs(shares["validation"] - 0.1) < 0.07
    mask = in_split(["person_0", "person_1"] * 2, identity_split("person_1"))
    assert mask.tolist() == [identity_split("person_0") == identity_split("person_1"), True] * 2
    with pytest.raises(JaxprivError, match="unknown split"):  # one line, no traceback
        in_split(["a"], "heldout")


@pytest.mark.skipif(not GLINT.is_dir(), reason="shared glint crops not available")
def test_glint_split_as_written_in_the_readme() -> None:
    split = split_identities(p.name for p in GLINT.iterdir() if p.is_dir())
    assert split["test"] == ["Gwyneth_Paltrow", "Hugh_Laurie", "Jennifer_Aniston",
                             "Victoria_Beckham"]
    assert split["validation"] == ["Jessica_Alba", "Keira_Knightley", "Lindsay_Lohan",
                                   "Miley_Cyrus"]
    assert len(split["train"]) == 10


@pytest.mark.skipif(not CELEBA.is_dir(), reason="shared celeba299 faces not available")
def test_celeba299_split_sizes() -> None:
    split = split_identities(p.name for p in CELEBA.iterdir() if p.is_dir())
    assert {s: len(v) for s, v in split.items()} == {"train": 184, "validation": 20, "test": 36}
    assert np.isin(split["test"], split["train"]).sum() == 0

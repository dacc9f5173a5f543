"""experiments/verify_table.py: the pair statistics, and the table on a tiny real subset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .conftest import GLINT, SHARED


def test_pair_table_counts_rates_and_rank1() -> None:
    from experiments.verify_table import pair_table

    # identities 0, 0, 1, 1 on a line: photo 1 (x=1) is nearer photo 2 (x=1.5) than photo 0
    emb = np.array([[0.0], [1.0], [1.5], [3.0]])
    labels = np.array([0, 0, 1, 1])
    t = pair_table(emb, labels, threshold=1.2, far_targets=(0.2, 0.5))
    assert (t["genuine_pairs"], t["impostor_pairs"]) == (2, 4)
    # genuine distances 1, 1.5; impostor 1.5, 3, 0.5, 2
    assert t["own"]["tar"] == 0.5 and t["own"]["far"] == 0.25
    low, high = t["at_far"]
    assert low["threshold"] == 0.5 and low["tar"] == 0.0 and not low["resolved"]
    assert high["threshold"] == 2.0 and high["tar"] == 1.0 and high["far"] == 0.5
    assert t["rank1"] == 0.5 and t["rank1_probes"] == 4  # photos 1 and 2 miss


def test_singletons_are_not_rank1_probes() -> None:
    from experiments.verify_table import pair_table

    t = pair_table(np.array([[0.0], [0.1], [5.0]]), np.array([0, 0, 1]), 1.0, (0.5,))
    assert t["rank1_probes"] == 2 and t["rank1"] == 1.0


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory):
    if not (GLINT.is_dir() and (SHARED / "faces" / "celeba299" / "landmarks.csv").is_file()):
        pytest.skip(f"shared faces not found under {SHARED}")
    from experiments.configs.verify_table import get_config
    from experiments.verify_table import run

    out = tmp_path_factory.mktemp("verify_table")
    config = get_config()
    config.glint_dir = str(GLINT)
    config.celeba299_dir = str(SHARED / "faces" / "celeba299")
    config.max_identities = 3
    config.max_per_identity = 3
    config.out_json = str(out / "t.json")
    config.out_md = str(out / "t.md")
    result = run(config, workdir=str(out / "work"))
    return result, out


def test_tiny_table_shape_and_values(tiny_table) -> None:
    result, out = tiny_table
    assert json.loads((out / "t.json").read_text()) == result
    assert list(result["datasets"]) == ["glint", "celeba299"]
    for ds in result["datasets"].values():
        assert (ds["photos"], ds["identities"]) == (9, 3)
        assert list(ds["recognizers"]) == ["dlib_resnet", "sface"]
        for t in ds["recognizers"].values():
            assert (t["genuine_pairs"], t["impostor_pairs"]) == (9, 27)
            assert [r["target_far"] for r in t["at_far"]] == [1e-3, 1e-2]
            rates = [t["rank1"], t["own"]["tar"], t["own"]["far"]]
            rates += [r[k] for r in t["at_far"] for k in ("tar", "far")]
            assert all(0.0 <= v <= 1.0 for v in rates)
            assert t["rank1_probes"] == 9
    md = (out / "t.md").read_text()
    assert sum(line.startswith(("| glint |", "| celeba299 |")) for line in md.splitlines()) == 4
    emb = np.load(out / "work" / "verify_table_celeba299_sface.npz")["embeddings"]
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)

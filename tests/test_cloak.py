"""The feature-space cloak: within its DSSIM budget on a real face chip, and effective."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxpriv.baselines import CLOAK_PRESETS, dssim
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import extract_chips, require_one_face
from jaxpriv.io import load_image
from jaxpriv.methods import get_method
from jaxpriv.metrics import ssim
from jaxpriv.recognizers import load_recognizer

from .conftest import SAMPLES


def test_cloak_budget_and_distance() -> None:
    image = load_image(SAMPLES / "obama.jpg")
    face = require_one_face(image, "obama.jpg")
    chip, transform = extract_chips(image, [face])
    rec = load_recognizer("dlib_resnet")
    clean = rec.embed(chip)[0]
    moved = {}
    for preset in ("low", "high"):
        out = get_method("cloak").make(preset=preset, steps=4)(image, [face], jax.random.key(0))
        again, _ = extract_chips(out, [face])
        budget = CLOAK_PRESETS[preset]
        assert (1 - ssim(again[0], chip[0])) / 2 <= budget + 1e-9
        assert dssim(again[0], chip[0]) > 0.5 * budget  # the budget is used, not wasted
        moved[preset] = float(rec.distance(rec.embed(again)[0], clean))
        # only pixels inside the face chip's footprint may change: every changed photo pixel,
        # taken into chip coordinates (the chip may be rotated), lies within the chip + 2 px
        to_chip = np.linalg.inv(np.vstack([transform[0], [0.0, 0.0, 1.0]]))
        changed = np.argwhere(np.any(out != image, axis=-1))[:, ::-1]  # (x, y)
        at = (np.c_[changed, np.ones(len(changed))] @ to_chip.T)[:, :2]
        assert len(at) > 1000 and at.min() >= -2 and at.max() <= 151
    assert moved["low"] > 0.15
    assert moved["high"] > moved["low"]


def test_cloak_options() -> None:
    with pytest.raises(JaxprivError, match="preset"):
        get_method("cloak").make(preset="extreme")
    assert CLOAK_PRESETS == {"low": 0.004, "mid": 0.012, "high": 0.017}


def test_cloak_ensemble_keeps_the_budget_on_both_chips() -> None:
    """--recognizer dlib_resnet,sface: each member's own chip moves, and the budget holds on the
    dlib150 and the ArcFace-112 chip cut at the CLEAN geometry (the old cloak re-cut its chip at
    dlib geometry whatever the recognizer, and had no --recognizer)."""
    from jaxpriv.faces import pin_face

    image = load_image(SAMPLES / "obama.jpg")
    face = require_one_face(image, "obama.jpg")  # HOG: no ArcFace points of its own
    pinned = pin_face(image, face)  # the clean photo's ArcFace geometry
    budget = CLOAK_PRESETS["high"]
    out = get_method("cloak").make(preset="high", steps=3, recognizer="dlib_resnet,sface")(
        image, [face], jax.random.key(0))
    used = []
    for rec in (load_recognizer("dlib_resnet"), load_recognizer("sface")):
        clean, again = (extract_chips(x, [pinned], rec)[0] for x in (image, out))
        used.append(dssim(again[0], clean[0]))
        assert used[-1] <= budget + 1e-9
        moved = float(rec.distance(rec.embed(again)[0], rec.embed(clean)[0]))
        assert moved > 0.1 * rec.threshold, rec.name
    assert max(used) > 0.5 * budget  # the budget is used, not wasted

"""The SMNA visibility study's pure pieces: options, choice under the budget, interpolation."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.smna_visibility import at_budget, choose, face_square, variant_options
from jaxpriv.faces import Face


def _cell(variant: str, level: float, dlib: float, ssim: float, sface: float = 0.1,
          lpips: float = 0.03) -> dict:
    return {"variant": variant, "noise_level": level, "dlib_resnet_protected": dlib,
            "sface_protected": sface, "face_ssim": ssim, "lpips": lpips}


def test_variant_options() -> None:
    assert variant_options("face/1.5/chip") == {"noise_resolution": "face",
                                                "noise_smoothing": 1.5, "noise_region": "chip"}


def test_choose_respects_the_budget_and_ties() -> None:
    cells = [_cell("a", 500, 0.3, 0.96), _cell("a", 800, 0.9, 0.90),
             _cell("b", 600, 0.3, 0.951, sface=0.2), _cell("c", 600, 0.3, 0.97, sface=0.2,
                                                             lpips=0.01)]
    assert choose(cells, 0.95)["variant"] == "c"  # same dlib and SFace: lower LPIPS
    with pytest.raises(RuntimeError):
        choose(cells, 0.99)


def test_at_budget_interpolates_between_bracketing_levels() -> None:
    cells = [_cell("a", 400, 0.1, 0.97), _cell("a", 600, 0.3, 0.95 - 0.02),
             _cell("a", 800, 0.5, 0.90)]
    b = at_budget(cells, "a", 0.95)
    assert b["noise_level"] == pytest.approx(500.0)
    assert b["dlib_resnet_protected"] == pytest.approx(0.2)
    assert at_budget(cells, "a", 0.99) is None


def test_face_square_is_clipped_square() -> None:
    face = Face((10.0, 20.0, 49.0, 79.0), np.zeros((5, 2)))
    y0, y1, x0, x1 = face_square(np.zeros((100, 100, 3), np.uint8), face)
    assert y1 - y0 == 60 and x1 - x0 == 60 and y0 == 20
    y0, y1, x0, x1 = face_square(np.zeros((50, 50, 3), np.uint8), face)
    assert y1 <= 50 and x0 == 0

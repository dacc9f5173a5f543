"""Shared test fixtures: paths to the read-only data beside the checkout and small image sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SCENES = SHARED / "scenes" / "face_recognition"
GLINT = SHARED / "faces" / "glint"
SAMPLES = ROOT / "jaxpriv" / "samples"


def rgb(path: Path) -> np.ndarray:
    """A photo as uint8 RGB (PIL only: independent of jaxpriv.io)."""
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def dlib_reference():
    """dlib-bin's own detector, 5-point predictor and ResNet (the reference implementation)."""
    import dlib

    from jaxpriv.checkpoints import DLIB_RESNET, DLIB_SHAPE_5, face_recognition_models_file

    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(str(face_recognition_models_file(DLIB_SHAPE_5))),
        dlib.face_recognition_model_v1(str(face_recognition_models_file(DLIB_RESNET))),
    )

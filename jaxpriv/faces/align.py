"""Aligned face chips and the inverse transform to paste them back.

Two alignments (``ALIGNMENTS``), each returning for every chip the 2×3 affine ``T`` mapping chip
pixel (x, y, 1) to image coordinates:

* ``"dlib150"`` (default): the pixels of dlib's ``get_face_chip(img, shape, size, padding)``
  (bit-identical: dlib does the sampling, including its pyramid downsampling of large faces) from
  the face's dlib 5 landmarks. ``T`` is derived from dlib's ``chip_details``: the chip's corners
  map to the corners of ``details.rect`` rotated by ``details.angle`` about its centre.
* ``"arcface112"``: the 112×112 ArcFace crop (as OpenCV's ``FaceRecognizerSF.alignCrop`` for
  SFace): the least-squares similarity (Umeyama 1991) taking the face's 5 ArcFace points to
  ``ARCFACE_TEMPLATE``, sampled bilinearly by ``cv2.warpAffine``.
"""

from __future__ import annotations

import math
from typing import Protocol

import cv2
import dlib
import numpy as np

from jaxpriv.errors import JaxprivError
from jaxpriv.faces.detect import (
    DEFAULT_DETECTOR,
    Face,
    arcface_landmarks_in_box,
    check_image,
    detect_faces,
    landmarks_in_box,
    largest_face,
    pin_face,
)

CHIP_SIZE = 150
CHIP_PADDING = 0.25
ALIGNMENTS = ("dlib150", "arcface112")
ARCFACE_SIZE = 112
# the 5-point template of ArcFace-style 112×112 crops (insightface; OpenCV FaceRecognizerSF):
# image-left eye, image-right eye, nose tip, image-left, image-right mouth corner
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]])


class Aligned(Protocol):
    """Anything that declares its chips, like :class:`jaxpriv.recognizers.Recognizer`."""

    alignment: str
    input_size: int


def _shape(face: Face) -> dlib.full_object_detection:
    rect = dlib.rectangle(*(int(round(v)) for v in face.box))
    points = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in face.landmarks])
    return dlib.full_object_detection(rect, points)


def _transform(details: dlib.chip_details) -> np.ndarray:
    """2×3 affine chip (x, y, 1) → image (x, y) for a dlib ``chip_details``."""
    r = details.rect
    cx, cy = (r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2
    ca, sa = math.cos(details.angle), math.sin(details.angle)

    def rot(x: float, y: float) -> tuple[float, float]:
        return cx + ca * (x - cx) - sa * (y - cy), cy + sa * (x - cx) + ca * (y - cy)

    src = np.array([[0, 0, 1], [details.cols - 1, 0, 1], [0, details.rows - 1, 1]], np.float64)
    dst = np.array([rot(r.left(), r.top()), rot(r.right(), r.top()), rot(r.left(), r.bottom())])
    return np.linalg.solve(src, dst).T


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 least-squares similarity (rotation, uniform scale, shift) taking points ``src`` (N, 2)
    to ``dst`` (N, 2): Umeyama (1991), eqs. 40–42."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(sigma) @ sign) / s.var(0).sum()
    return np.hstack([scale * rotation, (mu_d - scale * rotation @ mu_s)[:, None]])


def _inverse(affine: np.ndarray) -> np.ndarray:
    return np.linalg.inv(np.vstack([affine, [0.0, 0.0, 1.0]]))[:2]


def _resolve(alignment: str | int | Aligned, size: int | None) -> tuple[str, int]:
    """(alignment name, chip size) from an alignment name, a recognizer or a legacy int size."""
    if isinstance(alignment, int | np.integer) and not isinstance(alignment, bool):
        name, own = "dlib150", int(alignment)
    elif isinstance(alignment, str):
        name, own = alignment, None
    elif hasattr(alignment, "input_size"):
        name, own = getattr(alignment, "alignment", "dlib150"), int(alignment.input_size)
    else:
        raise JaxprivError(f"alignment must be one of {', '.join(ALIGNMENTS)} or a recognizer, "
                           f"got {alignment!r}")
    if name not in ALIGNMENTS:
        raise JaxprivError(f"unknown alignment {name!r} (choose: {', '.join(ALIGNMENTS)})")
    if own is not None and size is not None and size != own:
        raise JaxprivError(f"chip size {size} contradicts the recognizer's {own}")
    size = size if size is not None else own
    if name == "arcface112":
        if size not in (None, ARCFACE_SIZE):
            raise JaxprivError(f"arcface112 chips are {ARCFACE_SIZE} px, not {size}")
        return name, ARCFACE_SIZE
    return name, CHIP_SIZE if size is None else size


def extract_chips(
    image: np.ndarray,
    faces: list[Face] | None = None,
    alignment: str | int | Aligned = "dlib150",
    padding: float = CHIP_PADDING,
    *,
    size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Aligned chips: uint8 ``(N, S, S, 3)`` and chip→image affines ``(N, 2, 3)``.

    ``alignment``: a name from ``ALIGNMENTS``, or a recognizer (its ``alignment`` — dlib150 if it
    declares none — at its ``input_size``); an int is taken as ``size`` (dlib chips, the older
    positional form). ``size``: dlib chip side (default 150); arcface112 chips are always 112.
    ``padding``: dlib's chip padding. ``faces`` defaults to :func:`detect_faces` of the image.
    ArcFace points are the face's own (YuNet) or, without them, from dlib's 68 landmarks."""
    image = check_image(image)
    name, size = _resolve(alignment, size)
    faces = detect_faces(image) if faces is None else faces
    chips = np.zeros((len(faces), size, size, 3), np.uint8)
    transforms = np.zeros((len(faces), 2, 3), np.float64)
    for i, face in enumerate(faces):
        if name == "dlib150":
            details = dlib.get_face_chip_details(_shape(face), size, padding)
            chips[i] = np.asarray(dlib.extract_image_chip(image, details))
            transforms[i] = _transform(details)
        else:
            points = face.arcface_landmarks
            if points is None:
                points = arcface_landmarks_in_box(image, face.box)
            to_chip = similarity_transform(points, ARCFACE_TEMPLATE)
            chips[i] = cv2.warpAffine(image, to_chip, (size, size), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            transforms[i] = _inverse(to_chip)
    return chips, transforms


def grown_dlib_chip(image: np.ndarray, face: Face, margin: int,
                    size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> tuple[np.ndarray,
                                                                                  np.ndarray]:
    """The dlib ``size`` chip of ``face`` grown by ``margin`` chip pixels on every side at the
    same geometry (scale, angle, pixel grid), sampled by dlib: uint8 ``(size + 2·margin, …, 3)``
    and its chip→image affine ``(2, 3)``. Its centre ``[margin:margin+size]`` is the
    :func:`extract_chips` dlib chip itself."""
    image = check_image(image)
    base = dlib.get_face_chip_details(_shape(face), size, padding)
    r = base.rect
    grow_x = margin * (r.right() - r.left()) / (base.cols - 1)
    grow_y = margin * (r.bottom() - r.top()) / (base.rows - 1)
    rect = dlib.drectangle(r.left() - grow_x, r.top() - grow_y, r.right() + grow_x,
                           r.bottom() + grow_y)
    dims = dlib.chip_dims(base.rows + 2 * margin, base.cols + 2 * margin)
    details = dlib.chip_details(rect, dims, base.angle)
    return np.asarray(dlib.extract_image_chip(image, details)), _transform(details)


def chip_mask(size: int, feather: int = 4) -> np.ndarray:
    """float32 ``(size, size)`` weights: 1 inside, ramping to 0 over ``feather`` px at the edges."""
    ramp = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32)
    ramp = np.clip((ramp + 0.5) / max(feather, 1e-6), 0.0, 1.0)
    return np.minimum(ramp[:, None], ramp[None, :])


def chip_footprint(transform: np.ndarray, size: int,
                   shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: the image window a ``size``-px chip warps into with ``transform``,
    plus a 2-px margin for bilinear sampling, clipped to the image (empty if off-image)."""
    s = size - 1
    corners = np.array([[0, 0, 1], [s, 0, 1], [0, s, 1], [s, s, 1]], np.float64) @ transform.T
    (x0, y0), (x1, y1) = np.floor(corners.min(0)) - 2, np.ceil(corners.max(0)) + 3
    h, w = shape[:2]
    return (int(np.clip(y0, 0, h)), int(np.clip(y1, 0, h)), int(np.clip(x0, 0, w)),
            int(np.clip(x1, 0, w)))


def paste_chip(
    image: np.ndarray,
    chip: np.ndarray,
    transform: np.ndarray,
    reference: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Warp an edited chip back into a copy of ``image`` with the inverse of its alignment.

    With ``reference`` (the chip as extracted), only the change ``chip − reference`` is warped and
    added, so the image keeps its full resolution where the chip was not edited (a chip is often
    smaller than the face it came from). Without it, the chip's pixels replace the image's.
    ``mask`` (float (S, S) in [0, 1], default :func:`chip_mask`) weights the blend; pixels it does
    not reach are returned unchanged. Only the chip's :func:`chip_footprint` is computed, so the
    cost does not grow with the photo."""
    image = check_image(image)
    chip = np.asarray(chip, np.float32)
    size = chip.shape[0]
    mask = chip_mask(size) if mask is None else np.asarray(mask, np.float32)
    out = image.copy()
    y0, y1, x0, x1 = chip_footprint(transform, size, image.shape)
    if y1 <= y0 or x1 <= x0:
        return out
    shifted = np.asarray(transform, np.float64) - np.array([[0, 0, x0], [0, 0, y0]], np.float64)
    base = image[y0:y1, x0:x1].astype(np.float32)
    src = chip if reference is None else chip - np.asarray(reference, np.float32)
    dsize = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(src, shifted, dsize, flags=cv2.INTER_LINEAR)
    weight = cv2.warpAffine(mask, shifted, dsize, flags=cv2.INTER_LINEAR, borderValue=0.0)
    weight = weight[..., None]
    blended = base + weight * warped if reference is not None else base + weight * (warped - base)
    out[y0:y1, x0:x1] = np.where(weight > 0, np.clip(np.rint(blended), 0, 255), base)
    return out


def photo_from_aligned_crop(
    crop: np.ndarray, border: float = 0.25, scale: int = 3, detector: str = "hog"
) -> tuple[np.ndarray, Face]:
    """A "photo" made from one pre-aligned face crop (e.g. a 112×112 ArcFace-style crop), and its
    face.

    The uint8 RGB crop is zero-padded by ``border``·max(H, W) on every side and upsampled
    ×``scale`` (bilinear): dlib's HOG detector needs context and ≥ 80 px faces. The face is the
    ``detector``'s detection (``upsample=0``) nearest the photo's centre; if there is none, dlib's
    5-point predictor runs on the crop's own square (the face fills it by construction).
    Crop pixel (x, y) lands at photo pixel ((x + p + ½)·scale − ½, (y + p + ½)·scale − ½).
    Returns the uint8 photo ``(scale·(H+2p), scale·(W+2p), 3)`` and its :class:`Face`."""
    crop = check_image(crop)
    h, w = crop.shape[:2]
    pad = int(round(border * max(h, w)))
    big = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    big = cv2.resize(big, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    faces = detect_faces(big, upsample=0, detector=detector)
    if faces:
        centre = np.array(big.shape[1::-1]) / 2
        face = min(faces, key=lambda f: np.linalg.norm(f.landmarks.mean(0) - centre))
    else:
        box = (pad * scale, pad * scale, (pad + w) * scale - 1, (pad + h) * scale - 1)
        face = Face(box, landmarks_in_box(big, box))
    return big, face


def aligned_crop_face(crop: np.ndarray, border: float = 0.25, scale: int = 3,
                      detector: str = "hog") -> Face:
    """The face of one pre-aligned crop in the crop's own pixels, exactly where
    :func:`chips_from_aligned_crops` finds it: the face of :func:`photo_from_aligned_crop`, its
    ArcFace points fixed on that upsampled photo (dlib's 68 landmarks there, as the chips take
    them, not re-estimated on the small crop), mapped back by photo pixel X → (X + ½)/scale − ½ −
    pad. Edits steered at this geometry are steered at the one an attacker's chips are cut at."""
    big, face = photo_from_aligned_crop(crop, border, scale, detector)
    face = pin_face(big, face)
    pad = int(round(border * max(np.asarray(crop).shape[:2])))

    def back(points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, np.float64) + 0.5) / scale - 0.5 - pad

    box = back(np.reshape(face.box, (2, 2))).ravel()
    return Face(tuple(float(v) for v in box), back(face.landmarks), face.score,
                back(face.arcface_landmarks))


def chips_from_aligned_crops(
    crops: np.ndarray,
    alignment: str | int | Aligned = "dlib150",
    padding: float = CHIP_PADDING,
    border: float = 0.25,
    scale: int = 3,
    *,
    size: int | None = None,
    detector: str = "hog",
) -> np.ndarray:
    """Chips (``alignment`` and ``size`` as in :func:`extract_chips`) from pre-aligned face crops
    (e.g. 112×112 ArcFace-style crops).

    Each crop becomes a photo by :func:`photo_from_aligned_crop` (zero-padded by
    ``border``·width, upsampled ×``scale``, the ``detector`` + dlib's 5-point predictor, or the
    predictor on the crop's own square if the detector finds nothing); the chip is cut from it
    as from any photo. Returns uint8 ``(N, S, S, 3)``."""
    name, size = _resolve(alignment, size)
    crops = np.asarray(crops)
    if crops.ndim == 3:
        crops = crops[None]
    out = np.zeros((len(crops), size, size, 3), np.uint8)
    for i, crop in enumerate(crops):
        big, face = photo_from_aligned_crop(crop, border, scale, detector)
        chip, _ = extract_chips(big, [face], name, padding, size=size)
        out[i] = chip[0]
    return out


def require_one_face(image: np.ndarray, name: str, detector: str = DEFAULT_DETECTOR) -> Face:
    """The single (largest) face of a photo, or a clear error naming the photo."""
    face = largest_face(detect_faces(image, detector=detector))
    if face is None:
        raise JaxprivError(f"{name}: no face found")
    return face

"""Aligned face chips exactly as dlib makes them, and the inverse transform to paste them back.

``extract_chips`` returns the pixels of dlib's ``get_face_chip(img, shape, size, padding)``
(bit-identical: dlib does the sampling, including its pyramid downsampling of large faces) and,
for each chip, the 2×3 affine ``T`` mapping chip pixel (x, y, 1) to image coordinates. ``T``
is derived from dlib's ``chip_details``: the chip's corners map to the corners of
``details.rect`` rotated by ``details.angle`` about its centre.
"""

from __future__ import annotations

import math

import cv2
import dlib
import numpy as np

from jaxpriv.errors import JaxprivError
from jaxpriv.faces.detect import Face, check_image, detect_faces, landmarks_in_box

CHIP_SIZE = 150
CHIP_PADDING = 0.25


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


def extract_chips(
    image: np.ndarray,
    faces: list[Face] | None = None,
    size: int = CHIP_SIZE,
    padding: float = CHIP_PADDING,
) -> tuple[np.ndarray, np.ndarray]:
    """dlib-exact aligned chips: uint8 ``(N, size, size, 3)`` and chip→image affines ``(N, 2, 3)``.

    ``faces`` defaults to :func:`detect_faces` of the image."""
    image = check_image(image)
    faces = detect_faces(image) if faces is None else faces
    chips = np.zeros((len(faces), size, size, 3), np.uint8)
    transforms = np.zeros((len(faces), 2, 3), np.float64)
    for i, face in enumerate(faces):
        details = dlib.get_face_chip_details(_shape(face), size, padding)
        chips[i] = np.asarray(dlib.extract_image_chip(image, details))
        transforms[i] = _transform(details)
    return chips, transforms


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
    crop: np.ndarray, border: float = 0.25, scale: int = 3
) -> tuple[np.ndarray, Face]:
    """A "photo" made from one pre-aligned face crop (e.g. a 112×112 ArcFace-style crop), and its
    face.

    The uint8 RGB crop is zero-padded by ``border``·max(H, W) on every side and upsampled
    ×``scale`` (bilinear): dlib's HOG detector needs context and ≥ 80 px faces. The face is the
    detection (``upsample=0``) nearest the photo's centre; if there is none, dlib's 5-point
    predictor runs on the crop's own square (the face fills it by construction).
    Returns the uint8 photo ``(scale·(H+2p), scale·(W+2p), 3)`` and its :class:`Face`."""
    crop = check_image(crop)
    h, w = crop.shape[:2]
    pad = int(round(border * max(h, w)))
    big = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    big = cv2.resize(big, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    faces = detect_faces(big, upsample=0)
    if faces:
        centre = np.array(big.shape[1::-1]) / 2
        face = min(faces, key=lambda f: np.linalg.norm(f.landmarks.mean(0) - centre))
    else:
        box = (pad * scale, pad * scale, (pad + w) * scale - 1, (pad + h) * scale - 1)
        face = Face(box, landmarks_in_box(big, box))
    return big, face


def chips_from_aligned_crops(
    crops: np.ndarray,
    size: int = CHIP_SIZE,
    padding: float = CHIP_PADDING,
    border: float = 0.25,
    scale: int = 3,
) -> np.ndarray:
    """dlib chips from pre-aligned face crops (e.g. 112×112 ArcFace-style crops).

    Each crop becomes a photo by :func:`photo_from_aligned_crop` (zero-padded by
    ``border``·width, upsampled ×``scale``, dlib's detector + 5-point predictor, or the
    predictor on the crop's own square if the detector finds nothing); the chip is cut from it
    as from any photo. Returns uint8 ``(N, size, size, 3)``."""
    crops = np.asarray(crops)
    if crops.ndim == 3:
        crops = crops[None]
    out = np.zeros((len(crops), size, size, 3), np.uint8)
    for i, crop in enumerate(crops):
        big, face = photo_from_aligned_crop(crop, border, scale)
        chip, _ = extract_chips(big, [face], size, padding)
        out[i] = chip[0]
    return out


def require_one_face(image: np.ndarray, name: str) -> Face:
    """The single (largest) face of a photo, or a clear error naming the photo."""
    faces = detect_faces(image)
    if not faces:
        raise JaxprivError(f"{name}: no face found")
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))

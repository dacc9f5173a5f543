"""Swap a generated face into the photo (paper 001 §4.3 / §5.3.1, Alg. 2).

The generated chip (dlib chip geometry at the generator's resolution) is warped back with the
inverse of its alignment (the chip→image affine of :func:`jaxpriv.faces.extract_chips`, scaled
from 150 px to the generator's size), and blended with OpenCV's Poisson seamless cloning
(``cv2.seamlessClone``, NORMAL_CLONE) inside a face mask:

* ``hull68`` (default, as in the paper): the convex hull of dlib's 68 landmarks
  (``shape_predictor_68_face_landmarks.dat`` from ``face-recognition-models``): jaw line to
  eyebrows;
* ``ellipse``: a fixed ellipse of the dlib chip template (no 68-point predictor needed).

The mask is intersected with the area the warped chip covers. Pixels outside the mask are
copied from the input unchanged (enforced, not left to OpenCV). Images are uint8 HWC RGB.
"""

from __future__ import annotations

import functools

import cv2
import dlib
import numpy as np

from jaxpriv.checkpoints import DLIB_SHAPE_68, face_recognition_models_file
from jaxpriv.faces import Face
from jaxpriv.faces.detect import check_image

MASKS = ("hull68", "ellipse")
CHIP_SIZE = 150
# ellipse of the face in dlib's 150/0.25 chip (fractions of the chip side: centre, half-axes),
# fitted by eye to the 68-landmark hulls of the sample faces (brows at y ≈ 0.18, chin ≈ 1.0)
ELLIPSE = ((0.5, 0.58), (0.42, 0.40))


@functools.lru_cache(maxsize=1)
def _shape68() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(face_recognition_models_file(DLIB_SHAPE_68)))


def landmarks68(image: np.ndarray, face: Face) -> np.ndarray:
    """dlib's 68 landmarks (float (68, 2) x, y) of the face in ``face.box``."""
    rect = dlib.rectangle(*(int(round(v)) for v in face.box))
    shape = _shape68()(check_image(image), rect)
    return np.array([[p.x, p.y] for p in shape.parts()], np.float64)


def scaled_transform(transform: np.ndarray, size: int, chip_size: int = CHIP_SIZE) -> np.ndarray:
    """The chip→image affine of a ``size``-pixel chip, from that of the ``chip_size`` chip it
    was resized from (pixel centres: x_big = (x + ½)·chip_size/size − ½)."""
    s = chip_size / size
    scale = np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5], [0.0, 0.0, 1.0]])
    return np.asarray(transform, np.float64) @ scale


def warp_chip(chip: np.ndarray, transform: np.ndarray, shape: tuple[int, ...],
              ) -> tuple[np.ndarray, np.ndarray]:
    """Warp a uint8 chip into image space with its chip→image affine; returns the warped uint8
    image and a bool mask of the pixels the chip covers (1 px eroded)."""
    h, w = shape[:2]
    warped = cv2.warpAffine(np.ascontiguousarray(chip), transform, (w, h),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ones = np.full(chip.shape[:2], 255, np.uint8)
    cover = cv2.warpAffine(ones, transform, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    cover = cv2.erode(cover, np.ones((3, 3), np.uint8))
    return warped, cover > 0


def face_mask(image: np.ndarray, face: Face, transform: np.ndarray, mask: str = "hull68",
              chip_size: int = CHIP_SIZE) -> np.ndarray:
    """bool (H, W) mask of the face region to replace: the 68-landmark hull or the chip
    template's ellipse (``transform`` = 150-px chip→image affine)."""
    h, w = image.shape[:2]
    out = np.zeros((h, w), np.uint8)
    if mask == "hull68":
        pts = landmarks68(image, face)
        hull = cv2.convexHull(np.round(pts).astype(np.int32))
        cv2.fillConvexPoly(out, hull, 255)
    elif mask == "ellipse":
        (cx, cy), (ax, ay) = ELLIPSE
        t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        pts = np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], 1) * (chip_size - 1)
        img_pts = pts @ np.asarray(transform)[:, :2].T + np.asarray(transform)[:, 2]
        cv2.fillPoly(out, [np.round(img_pts).astype(np.int32)], 255)
    else:
        raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
    return out > 0


def seamless_paste(image: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Poisson-blend ``source`` (same size as ``image``) into ``image`` inside ``mask`` in place
    (``cv2.seamlessClone``, NORMAL_CLONE); pixels outside ``mask`` are returned unchanged."""
    image = check_image(image)
    if not mask.any():
        return image.copy()
    ys, xs = np.nonzero(mask)
    # work on a padded crop around the mask so the clone never touches the image border
    pad = 4
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, image.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, image.shape[1])
    dst = cv2.copyMakeBorder(image[y0:y1, x0:x1], pad, pad, pad, pad, cv2.BORDER_REFLECT)
    src = cv2.copyMakeBorder(source[y0:y1, x0:x1], pad, pad, pad, pad, cv2.BORDER_REFLECT)
    m = cv2.copyMakeBorder(mask[y0:y1, x0:x1].astype(np.uint8) * 255, pad, pad, pad, pad,
                           cv2.BORDER_CONSTANT, value=0)
    bx, by, bw, bh = cv2.boundingRect(m)
    center = (bx + bw // 2, by + bh // 2)
    cloned = cv2.seamlessClone(np.ascontiguousarray(src), np.ascontiguousarray(dst), m, center,
                               cv2.NORMAL_CLONE)[pad:-pad, pad:-pad]
    out = image.copy()
    region = mask[y0:y1, x0:x1]
    out[y0:y1, x0:x1][region] = cloned[region]
    return out


def swap_face(image: np.ndarray, face: Face, chip: np.ndarray, transform: np.ndarray,
              mask: str = "hull68", clone: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Replace one face by a generated chip (uint8 (S, S, 3), dlib chip geometry; ``transform``
    is the 150-px chip→image affine of that face). Returns (new image, bool region mask);
    pixels outside the mask are unchanged. ``clone=False`` pastes without Poisson blending."""
    image = check_image(image)
    t = scaled_transform(transform, chip.shape[0])
    warped, cover = warp_chip(chip, t, image.shape)
    region = face_mask(image, face, transform, mask) & cover
    if not clone:
        out = image.copy()
        out[region] = warped[region]
        return out, region
    return seamless_paste(image, warped, region), region

"""Baseline protections of a face region: blur, mosaic, solid fill and DP-Pix.

Each works on the face's *region*: the detector box grown by ``margin`` of its size on every side
(dlib's box stops at the eyebrows; the margin takes in forehead and hair) and clipped to the
image. Pixels outside the regions are unchanged. Images are uint8 HWC RGB.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import jax
import numpy as np

from jaxpriv.faces import Face
from jaxpriv.methods import MethodSpec, Option, ProtectFn, register_method


def face_region(face: Face, shape: tuple[int, ...], margin: float) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) integer slice bounds of the grown, clipped face box."""
    left, top, right, bottom = face.box
    w, h = right - left + 1, bottom - top + 1
    x0, x1 = int(np.floor(left - margin * w)), int(np.ceil(right + margin * w)) + 1
    y0, y1 = int(np.floor(top - margin * h)), int(np.ceil(bottom + margin * h)) + 1
    return max(y0, 0), min(y1, shape[0]), max(x0, 0), min(x1, shape[1])


def _per_region(image: np.ndarray, faces: Sequence[Face], margin: float, fn) -> np.ndarray:  # noqa: ANN001
    out = image.copy()
    for face in faces:
        y0, y1, x0, x1 = face_region(face, image.shape, margin)
        if y1 > y0 and x1 > x0:
            out[y0:y1, x0:x1] = fn(out[y0:y1, x0:x1])
    return out


def blur(strength: float = 0.12, margin: float = 0.25) -> ProtectFn:
    """Gaussian blur with σ = ``strength`` × region width (OpenCV)."""

    def protect(image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        def fn(region: np.ndarray) -> np.ndarray:
            sigma = max(strength * region.shape[1], 0.5)
            return cv2.GaussianBlur(region, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE)

        return _per_region(image, faces, margin, fn)

    return protect


def pixelate(region: np.ndarray, cell: int) -> np.ndarray:
    """Replace each ``cell``×``cell`` block by its mean (edge blocks may be smaller)."""
    h, w = region.shape[:2]
    out = np.empty_like(region)
    for y in range(0, h, cell):
        for x in range(0, w, cell):
            block = region[y : y + cell, x : x + cell]
            out[y : y + cell, x : x + cell] = np.rint(block.reshape(-1, 3).mean(0))
    return out


def mosaic(blocks: int = 10, margin: float = 0.25) -> ProtectFn:
    """Pixelation into about ``blocks`` cells across the region width."""

    def protect(image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        return _per_region(
            image, faces, margin, lambda r: pixelate(r, max(1, -(-r.shape[1] // blocks)))
        )

    return protect


def solid(color: int = 0, margin: float = 0.25) -> ProtectFn:
    """Fill the region with one grey level ``color`` (0 = black)."""

    def protect(image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        return _per_region(image, faces, margin, lambda r: np.full_like(r, color))

    return protect


def dppix_scale(cell: int, m: int, epsilon: float) -> float:
    """Laplace scale of DP-Pix (Fan 2018): 255·m / (b²·ε) for b×b cells, m-neighbourhood."""
    return 255.0 * m / (cell * cell * epsilon)


def dppix(cell: int = 8, m: int = 16, epsilon: float = 0.5, margin: float = 0.25) -> ProtectFn:
    """DP-Pix (Fan 2018): pixelate into b×b cells, add Laplace(255·m/(b²·ε)) to each cell mean
    (per channel), clip to [0, 255]. ε-DP for images differing in at most m pixels (the
    guarantee covers the region's pixels, not the face detector's choice of region)."""
    scale = dppix_scale(cell, m, epsilon)

    def protect(image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        out = image.copy()
        for i, face in enumerate(faces):
            y0, y1, x0, x1 = face_region(face, image.shape, margin)
            if y1 <= y0 or x1 <= x0:
                continue
            region = pixelate(out[y0:y1, x0:x1], cell).astype(np.float32)
            ny, nx = -(-(y1 - y0) // cell), -(-(x1 - x0) // cell)
            noise = np.asarray(jax.random.laplace(jax.random.fold_in(key, i), (ny, nx, 3)))
            noise = np.repeat(np.repeat(noise * scale, cell, 0), cell, 1)[: y1 - y0, : x1 - x0]
            out[y0:y1, x0:x1] = np.clip(np.rint(region + noise), 0, 255).astype(np.uint8)
        return out

    return protect


MARGIN = Option("margin", float, 0.25, "grow the face box by this share of its size per side")
register_method(MethodSpec("blur", "Gaussian blur of each face region", blur, (
    Option("strength", float, 0.12, "blur sigma as a share of the region width"), MARGIN)))
register_method(MethodSpec("mosaic", "pixelation of each face region", mosaic, (
    Option("blocks", int, 10, "mosaic cells across the region width"), MARGIN)))
register_method(MethodSpec("solid", "fill each face region with one grey level", solid, (
    Option("color", int, 0, "grey level 0..255"), MARGIN)))
register_method(MethodSpec("dppix", "DP-Pix: pixelation + Laplace noise (Fan 2018)", dppix, (
    Option("cell", int, 8, "cell size b in pixels"),
    Option("m", int, 16, "pixels that may differ between neighbouring images"),
    Option("epsilon", float, 0.5, "privacy budget ε"), MARGIN)))

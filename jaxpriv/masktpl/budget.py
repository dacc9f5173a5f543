"""The visual budget of the steered pad (issue 20: face SSIM ≥ 0.97).

Two measures keep the change where SSIM forgives it: :func:`texture_weight` scales each pixel's
step by w = (√(σ² + C₂)/mean)^p (σ: the original's local grey-level standard deviation in SSIM's
own Gaussian window, C₂ = (0.03·255)², p = :data:`TEXTURE_POWER`, clipped at
:data:`TEXTURE_CLIP`; SSIM's structure term charges a change about (δ/σ)², so skin changes little
and hair, brows and edges more), and :func:`project_to_ssim` scales each step's change back onto
the budget inside the jitted loop (the largest α ∈ [0, 1] by bisection keeping the face box's SSIM
≥ the target, :func:`jaxpriv.metrics.region_ssim_jax`; the k-bit box is convex, so the scaled pad
stays inside it). :func:`tangent_to_ssim` (optional) spends the budget once it binds: a step then
loses its component along −∇SSIM, so it moves the change to where SSIM forgives it instead of
buying distance with SSIM the projection then takes back (projected gradient ascent on the
constraint SSIM ≥ target). :func:`shrink_to_ssim` checks the final uint8 result in float64 and
scales it once more if float32 rounding left it a hair short.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv.faces import Face
from jaxpriv.metrics import SSIM_RADIUS, region_ssim_jax, ssim

TEXTURE_POWER = 3.0
TEXTURE_CLIP = 6.0
SSIM_SIDE = 2 * SSIM_RADIUS + 1  # the smallest face box SSIM's window fits
TANGENT_SLACK = 0.002  # the budget binds once the region's SSIM is within this of the target


def texture_weight(image: np.ndarray, mask: np.ndarray, power: float = TEXTURE_POWER,
                   clip: float = TEXTURE_CLIP) -> np.ndarray:
    """Per-pixel step scale ``(N, H, W, 1)`` of uint8 images ``(N, H, W, 3)`` with bool templates
    ``(N, H, W)``: (√(σ² + C₂) / its mean over the template)^power, clipped to [0, clip]; σ² is
    the local variance of the grey image in SSIM's Gaussian window (σ = 1.5, as
    :func:`jaxpriv.metrics.ssim`), C₂ = (0.03·255)²."""
    from scipy.ndimage import gaussian_filter

    out = np.ones((*image.shape[:3], 1), np.float32)
    for i, (x, m) in enumerate(zip(image, mask, strict=True)):
        grey = x.astype(np.float64).mean(-1)
        mean = gaussian_filter(grey, 1.5, truncate=3.5)
        var = np.maximum(gaussian_filter(grey * grey, 1.5, truncate=3.5) - mean * mean, 0.0)
        c = np.sqrt(var + (0.03 * 255.0) ** 2)
        if m.any():
            out[i, ..., 0] = np.clip((c / c[m].mean()) ** power, 0.0, clip)
    return out


def shrink_to_ssim(original: np.ndarray, changed: np.ndarray, region: tuple[slice, slice],
                   target: float, *, iters: int = 7) -> tuple[np.ndarray, float]:
    """``original + round(α·(changed − original))`` (uint8) with the largest α ∈ [0, 1] found by
    ``iters`` bisection steps such that the SSIM (:func:`jaxpriv.metrics.ssim`) of ``region``
    stays ≥ ``target``; α = 1 when ``changed`` already does. Returns (image, α)."""
    delta = changed.astype(np.int16) - original.astype(np.int16)

    def scaled(alpha: float) -> np.ndarray:
        return (original + np.round(alpha * delta)).astype(np.uint8)

    def fits(x: np.ndarray) -> bool:
        return ssim(x[region], original[region]) >= target

    if fits(changed):
        return changed, 1.0
    lo, best = 0.0, original.copy()
    hi = 1.0
    for _ in range(iters):
        mid = (lo + hi) / 2
        x = scaled(mid)
        if fits(x):
            lo, best = mid, x
        else:
            hi = mid
    return best, lo


def face_box_region(face: Face, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """Rows and columns of ``face.box`` (inclusive corners, rounded) clipped to ``shape``: the
    region whose SSIM the visual budget holds."""
    x0, y0, x1, y1 = (int(round(v)) for v in face.box)
    return slice(max(0, y0), min(shape[0], y1 + 1)), slice(max(0, x0), min(shape[1], x1 + 1))


def region_map(regions: Sequence[tuple[slice, slice]], shape: tuple[int, int]) -> np.ndarray:
    """``(N, H − 10, W − 10, 1)`` float32 maps of :func:`jaxpriv.metrics.region_ssim_jax` for
    rectangles (rows, cols) of working images of ``shape`` (H, W): 1 where SSIM's 11×11 window
    lies inside the rectangle; all 0 for a rectangle smaller than the window (no budget there)."""
    out = np.zeros((len(regions), shape[0] - 2 * SSIM_RADIUS, shape[1] - 2 * SSIM_RADIUS, 1),
                   np.float32)
    for i, (rows, cols) in enumerate(regions):
        r1, c1 = rows.stop - 2 * SSIM_RADIUS, cols.stop - 2 * SSIM_RADIUS
        if r1 > rows.start and c1 > cols.start:
            out[i, rows.start:r1, cols.start:c1] = 1
    return out


def _nonempty(region: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(which images have a non-empty region ``(N,)``, the region with empty ones replaced by all
    ones so that SSIM stays defined there)."""
    has = jnp.sum(region, axis=(1, 2, 3)) > 0
    return has, jnp.where(has[:, None, None, None], region, 1.0)


def project_to_ssim(original: jax.Array, high: jax.Array, low: jax.Array, region: jax.Array,
                     target: jax.Array, iters: int = 6) -> jax.Array:
    """Low bits ``l0 + α·(low − l0)`` (l0: the original's) with the largest α ∈ [0, 1] of
    ``iters`` bisection steps keeping the region's SSIM (at the rounded pixels) ≥ ``target``;
    α = 1 where it already holds or the region is empty. The k-bit box is convex: it stays in it."""
    lo0 = original - high
    has, safe = _nonempty(region)

    def fits(lo: jax.Array) -> jax.Array:
        return ~has | (region_ssim_jax(high + jnp.round(lo), original, safe) >= target)

    def halve(_: int, bounds: tuple) -> tuple:
        a, b = bounds
        mid = (a + b) / 2
        ok = fits(lo0 + mid[:, None, None, None] * (low - lo0))
        return jnp.where(ok, mid, a), jnp.where(ok, b, mid)

    n = low.shape[0]
    a, _ = jax.lax.fori_loop(0, iters, halve, (jnp.zeros(n), jnp.ones(n)))
    alpha = jnp.where(fits(low), 1.0, a)
    return lo0 + alpha[:, None, None, None] * (low - lo0)


def tangent_to_ssim(original: jax.Array, high: jax.Array, low: jax.Array, delta: jax.Array,
                    mask: jax.Array, region: jax.Array, target: jax.Array,
                    slack: float = TANGENT_SLACK) -> jax.Array:
    """The step ``delta`` of the low bits ``low`` (float ``(N, H, W, C)``; ``mask``
    ``(N, H, W, 1)``: the pixels it may move) without its component along −g, g = ∇ of the
    region's SSIM at ``high + low`` restricted to the mask, for the images whose SSIM is below
    ``target + slack`` and whose step lowers it (⟨delta, g⟩ < 0): to first order the step then
    keeps SSIM. Other images, and empty regions, keep ``delta``."""
    has, safe = _nonempty(region)

    def total(lo: jax.Array) -> tuple[jax.Array, jax.Array]:
        s = region_ssim_jax(high + lo, original, safe)
        return jnp.sum(s), s

    g, s = jax.grad(total, has_aux=True)(low)
    g = g * mask
    dot = jnp.sum(delta * g, axis=(1, 2, 3))
    coef = jnp.where(has & (s < target + slack) & (dot < 0),
                     dot / (jnp.sum(g * g, axis=(1, 2, 3)) + 1e-30), 0.0)
    return delta - coef[:, None, None, None] * g

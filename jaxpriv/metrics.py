"""Evaluation metrics: image utility (paper section 5.2.2, eq. 13-17, plus PSNR) and verification.

Conventions
-----------
* Images at the edges are ``uint8`` arrays, ``(H, W, 3)`` RGB or ``(H, W)`` grey, values 0..255.
  ``protected`` is X^a of the paper, ``original`` is X.
* Utility metrics run in NumPy/SciPy (float64; SciPy comes with JAX), outside ``jit``.
  :func:`ssim_jax` is the same SSIM in ``jax.numpy`` (jittable, differentiable) for losses.
* Verification metrics take face-embedding distances; a pair is accepted as "same person" when
  ``distance < threshold`` (as :class:`jaxpriv.recognizers.base.Recognizer`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike, NDArray
from PIL import Image
from scipy import ndimage

from jaxpriv.errors import JaxprivError

__all__ = [
    "FarResolutionWarning",
    "ald_p",
    "dhash_bits",
    "dhash_distance",
    "false_accept_rate",
    "l0_distance",
    "l2_distance",
    "mean_ssim",
    "protection_success_rate",
    "psnr",
    "relative_lp",
    "ssim",
    "ssim_jax",
    "threshold_at_far",
    "true_accept_rate",
    "utility_metrics",
]

# SSIM constants of Wang et al. 2004 (and skimage with gaussian_weights=True).
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5): an 11x11 window, as scipy.ndimage with truncate=3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


# ----------------------------------------------------------------------------- input checks


def _check_image(image: ArrayLike, name: str) -> NDArray[np.uint8]:
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise JaxprivError(f"{name} must be a uint8 image, got dtype {arr.dtype}")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 3)):
        raise JaxprivError(f"{name} must have shape (H, W, 3) or (H, W), got {arr.shape}")
    return arr


def _check_pair(
    protected: ArrayLike, original: ArrayLike
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    a = _check_image(protected, "protected")
    b = _check_image(original, "original")
    if a.shape != b.shape:
        raise JaxprivError(f"image shapes differ: protected {a.shape} vs original {b.shape}")
    return a, b


def _check_batches(protected: Sequence[ArrayLike], original: Sequence[ArrayLike]) -> int:
    if len(protected) != len(original):
        raise JaxprivError(f"got {len(protected)} protected images but {len(original)} originals")
    if len(original) == 0:
        raise JaxprivError("need at least one image pair")
    return len(original)


# ----------------------------------------------------------------------------- utility metrics


def l0_distance(protected: ArrayLike, original: ArrayLike) -> int:
    """Number of pixels changed, eq. (13).

    A pixel counts once when any of its channels differs, so the range is 0..H*W."""
    a, b = _check_pair(protected, original)
    changed = a != b
    if changed.ndim == 3:
        changed = changed.any(axis=-1)
    return int(np.count_nonzero(changed))


def l2_distance(protected: ArrayLike, original: ArrayLike) -> float:
    """Euclidean distance ||X^a - X||_2 over all pixels and channels, eq. (14).

    Values are on the 0..255 scale, so the range is 0..255*sqrt(H*W*C)."""
    a, b = _check_pair(protected, original)
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(np.sqrt(np.sum(diff * diff)))


def relative_lp(protected: ArrayLike, original: ArrayLike, p: float = 2.0) -> float:
    """||X^a - X||_p / ||X||_p for one image pair: the summand of eq. (15).

    The norm runs over all pixels and channels flattened (0..255 values cancel in the ratio);
    ``p >= 1`` or ``math.inf``. Raises for an all-black original (||X||_p = 0)."""
    a, b = _check_pair(protected, original)
    if not p >= 1:
        raise JaxprivError(f"p must be >= 1 or inf, got {p}")
    x = b.astype(np.float64).ravel()
    denom = float(np.linalg.norm(x, ord=p))
    if denom == 0.0:
        raise JaxprivError("relative L_p is undefined for an all-zero original image")
    return float(np.linalg.norm(a.astype(np.float64).ravel() - x, ord=p)) / denom


def ald_p(protected: Sequence[ArrayLike], original: Sequence[ArrayLike], p: float = 2.0) -> float:
    """Average relative L_p distance over n image pairs, eq. (15); a fraction (0 = unchanged).

    Images may differ in size between pairs. See :func:`relative_lp` for the per-pair term."""
    n = _check_batches(protected, original)
    return float(sum(relative_lp(a, b, p) for a, b in zip(protected, original, strict=True)) / n)


def psnr(protected: ArrayLike, original: ArrayLike) -> float:
    """Peak signal-to-noise ratio in dB, 10 log10(255^2 / MSE), MSE over all channels.

    Returns ``math.inf`` for identical images. (Not in the paper; standard companion metric.)"""
    a, b = _check_pair(protected, original)
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return math.inf
    return float(10.0 * np.log10(255.0**2 / mse))


def _gaussian_taps() -> list[float]:
    x = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return [float(v) for v in w / w.sum()]


def _filter_valid_jax(a: jax.Array, taps: list[float]) -> jax.Array:
    """Separable filter of ``(..., H, W, C)`` as two 'valid' convolutions (jittable).

    Keeps only the interior, where no padding is involved; full float32 precision on any device."""
    h, w, c = a.shape[-3:]
    lead = a.shape[:-3]
    z = jnp.moveaxis(a.reshape(-1, h, w, c), -1, 1).reshape(-1, h, w, 1)
    k = jnp.asarray(taps, a.dtype)
    for kernel in (k.reshape(-1, 1, 1, 1), k.reshape(1, -1, 1, 1)):
        z = jax.lax.conv_general_dilated(
            z,
            kernel,
            window_strides=(1, 1),
            padding="VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=jax.lax.Precision.HIGHEST,
        )
    ho, wo = z.shape[1], z.shape[2]
    return jnp.moveaxis(z.reshape(-1, c, ho, wo), 1, -1).reshape(*lead, ho, wo, c)


def _filter_valid_scipy(a: NDArray[np.float64], taps: list[float]) -> NDArray[np.float64]:
    """Same result as :func:`_filter_valid_jax` for ``(H, W, C)`` float64, via scipy.ndimage.

    The border mode is irrelevant: the 5-pixel border it affects is cropped."""
    w = np.asarray(taps)
    a = ndimage.correlate1d(a, w, axis=0, mode="reflect")
    a = ndimage.correlate1d(a, w, axis=1, mode="reflect")
    r = SSIM_RADIUS
    return a[r:-r, r:-r, :]


def _ssim_map(x: Any, y: Any, data_range: Any, xp: ModuleType, filt: Callable[[Any], Any]) -> Any:
    """SSIM map ``(..., H − 10, W − 10, C)`` of ``(..., H, W, C)`` float images, for ``xp`` =
    numpy or jax.numpy.

    Wang et al. 2004: Gaussian 11x11 window (sigma 1.5, applied by ``filt``, which returns the
    interior only, as skimage crops the 5-pixel border), population covariances. Variances and
    covariances are computed from per-image-centred inputs: exact (they are shift invariant) and
    it avoids float32 cancellation in E[x^2] - E[x]^2."""
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    axes = (-3, -2, -1)
    mean_x = xp.mean(x, axis=axes, keepdims=True)
    mean_y = xp.mean(y, axis=axes, keepdims=True)
    xc = x - mean_x
    yc = y - mean_y
    mu_xc = filt(xc)
    mu_yc = filt(yc)
    mu_x = mu_xc + mean_x  # the taps sum to 1
    mu_y = mu_yc + mean_y
    var_x = filt(xc * xc) - mu_xc * mu_xc
    var_y = filt(yc * yc) - mu_yc * mu_yc
    cov = filt(xc * yc) - mu_xc * mu_yc
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    )


def _ssim_core(x: Any, y: Any, data_range: Any, xp: ModuleType, filt: Callable[[Any], Any]) -> Any:
    """Mean SSIM: :func:`_ssim_map` averaged over the interior and over channels."""
    return xp.mean(_ssim_map(x, y, data_range, xp, filt), axis=(-3, -2, -1))


def _check_ssim_size(shape: tuple[int, ...]) -> None:
    side = 2 * SSIM_RADIUS + 1
    if shape[-3] < side or shape[-2] < side:
        raise JaxprivError(f"SSIM needs images of at least {side}x{side}, got {shape}")


def ssim(protected: ArrayLike, original: ArrayLike) -> float:
    """Structural similarity of one image pair (Wang et al. 2004), the summand of eq. (16).

    Matches ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)``: colour images are the mean
    of the per-channel SSIMs. Range -1..1, 1 for identical images."""
    a, b = _check_pair(protected, original)
    x = a.astype(np.float64).reshape(a.shape[0], a.shape[1], -1)
    y = b.astype(np.float64).reshape(x.shape)
    _check_ssim_size(x.shape)
    taps = _gaussian_taps()
    return float(_ssim_core(x, y, 255.0, np, lambda a: _filter_valid_scipy(a, taps)))


def mean_ssim(protected: Sequence[ArrayLike], original: Sequence[ArrayLike]) -> float:
    """Mean SSIM over n image pairs, eq. (16); see :func:`ssim`."""
    n = _check_batches(protected, original)
    return float(sum(ssim(a, b) for a, b in zip(protected, original, strict=True)) / n)


def ssim_jax(x: jax.Array, y: jax.Array, data_range: float | jax.Array = 255.0) -> jax.Array:
    """SSIM of float images ``(..., H, W, C)`` in ``jax.numpy``; returns shape ``(...)``.

    Same definition as :func:`ssim` (eq. 16 summand), jittable and differentiable, for losses.
    ``data_range`` is 255 for 0..255 values and 1 for images in [0, 1]."""
    x = jnp.asarray(x)
    y = jnp.asarray(y, x.dtype)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise JaxprivError(f"ssim_jax needs float images, got {x.dtype}")
    if x.shape != y.shape or x.ndim < 3:
        raise JaxprivError(f"ssim_jax needs equal (..., H, W, C) shapes, got {x.shape}, {y.shape}")
    _check_ssim_size(x.shape)
    taps = _gaussian_taps()
    return _ssim_core(x, y, data_range, jnp, lambda a: _filter_valid_jax(a, taps))


def region_ssim_jax(x: jax.Array, y: jax.Array, region: jax.Array) -> jax.Array:
    """SSIM of a rectangle of float images ``(N, H, W, C)`` (0..255), jittable: the SSIM map's
    mean over ``region`` ``(N, H − 10, W − 10, 1)``, 1 on the map pixels whose 11x11 window lies
    inside the rectangle (rows r0 … r1 − 11 of a rectangle r0:r1), so it equals :func:`ssim` of
    the crop. Returns ``(N,)``."""
    _check_ssim_size(x.shape)
    taps = _gaussian_taps()
    s = _ssim_map(x, jnp.asarray(y, x.dtype), 255.0, jnp, lambda a: _filter_valid_jax(a, taps))
    return jnp.sum(s * region, axis=(1, 2, 3)) / (jnp.sum(region, axis=(1, 2, 3)) * x.shape[-1])


def dhash_bits(image: ArrayLike, hash_size: int = 8) -> NDArray[np.bool_]:
    """Difference hash (Krawetz's dHash, horizontal): ``(hash_size, hash_size)`` bools.

    The image is converted to PIL 'L' grey, resized to (hash_size + 1) x hash_size with Lanczos,
    and each bit says whether a pixel is brighter than its left neighbour. Same bits as
    ``imagehash.dhash(PIL.Image.fromarray(image), hash_size)``."""
    arr = _check_image(image, "image")
    if hash_size < 2:
        raise JaxprivError(f"hash_size must be >= 2, got {hash_size}")
    grey = Image.fromarray(arr).convert("L")
    small = np.asarray(grey.resize((hash_size + 1, hash_size), Image.Resampling.LANCZOS))
    return small[:, 1:] > small[:, :-1]


def dhash_distance(protected: ArrayLike, original: ArrayLike, hash_size: int = 8) -> int:
    """Dhash of eq. (17): Hamming distance between the difference hashes, 0..hash_size**2.

    We read "hash(X^a) - hash(X)" as imagehash's ``ImageHash.__sub__`` (a Hamming distance).
    The paper's averages (e.g. 12873) exceed the 64 bits of the default hash_size=8, so the
    authors must have used a much larger hash; values are only comparable at equal hash_size."""
    a, b = _check_pair(protected, original)
    return int(np.count_nonzero(dhash_bits(a, hash_size) != dhash_bits(b, hash_size)))


def utility_metrics(
    protected: Sequence[ArrayLike],
    original: Sequence[ArrayLike],
    p: float = 2.0,
    hash_size: int = 8,
) -> dict[str, float]:
    """Means over n image pairs of every utility metric (paper Tables 1-2, plus PSNR).

    Keys: ``l0`` (eq. 13), ``l2`` (eq. 14), ``ald_p`` (eq. 15), ``ssim`` (eq. 16), ``dhash``
    (eq. 17), ``psnr`` (inf when any pair is identical)."""
    n = _check_batches(protected, original)
    pairs = list(zip(protected, original, strict=True))
    return {
        "l0": sum(l0_distance(a, b) for a, b in pairs) / n,
        "l2": sum(l2_distance(a, b) for a, b in pairs) / n,
        "ald_p": ald_p(protected, original, p),
        "ssim": mean_ssim(protected, original),
        "dhash": sum(dhash_distance(a, b, hash_size) for a, b in pairs) / n,
        "psnr": sum(psnr(a, b) for a, b in pairs) / n,
    }


# ----------------------------------------------------------------------------- verification


class FarResolutionWarning(UserWarning):
    """Too few impostor distances to resolve the requested false-accept rate."""


def _check_distances(distances: ArrayLike, name: str) -> NDArray[np.float64]:
    d = np.asarray(distances, dtype=np.float64).ravel()
    if d.size == 0:
        raise JaxprivError(f"{name} is empty")
    if not np.all(np.isfinite(d)):
        raise JaxprivError(f"{name} contains NaN or infinite values")
    return d


def true_accept_rate(distances_same: ArrayLike, threshold: float) -> float:
    """Share of same-person distances accepted, i.e. ``< threshold`` (0..1)."""
    d = _check_distances(distances_same, "distances_same")
    return float(np.mean(d < threshold))


def false_accept_rate(distances_diff: ArrayLike, threshold: float) -> float:
    """Share of different-person (impostor) distances accepted, i.e. ``< threshold`` (0..1)."""
    d = _check_distances(distances_diff, "distances_diff")
    return float(np.mean(d < threshold))


def threshold_at_far(distances_diff: ArrayLike, target_far: float, strict: bool = False) -> float:
    """Largest threshold whose false-accept rate on ``distances_diff`` is ``<= target_far``.

    With acceptance ``d < t`` and n impostor distances sorted ascending, at most
    k = floor(target_far * n) may be accepted, so the answer is the (k+1)-th smallest distance
    (it is attained: that distance itself is not accepted). Ties: when that value is repeated,
    the achieved FAR is below k/n, since any larger threshold would accept all the copies.
    When target_far * n < 1 (too few impostor pairs to resolve the target) the result is the
    smallest distance (FAR 0), with a :class:`FarResolutionWarning`, or a JaxprivError if
    ``strict``. ``target_far`` must lie in [0, 1)."""
    d = np.sort(_check_distances(distances_diff, "distances_diff"))
    if not 0.0 <= target_far < 1.0:
        raise JaxprivError(f"target_far must be in [0, 1), got {target_far}")
    k = math.floor(target_far * d.size + 1e-9)  # tolerance for e.g. 0.29 * 100 = 28.999...
    if k == 0:
        msg = (
            f"{d.size} impostor distances cannot resolve FAR {target_far:g} "
            f"(resolution {1 / d.size:g}); using the smallest distance (FAR 0)"
        )
        if strict:
            raise JaxprivError(msg)
        warnings.warn(msg, FarResolutionWarning, stacklevel=2)
    return float(d[k])


def protection_success_rate(distances_protected: ArrayLike, threshold: float) -> float:
    """Share of protected probes no longer matched to their reference: ``distance >= threshold``."""
    d = _check_distances(distances_protected, "distances_protected")
    return float(np.mean(d >= threshold))

"""Baseline protections of a face region: blur, mosaic, solid fill and DP-Pix; and a
feature-space cloak (Fawkes-like) of the aligned chip.

Each works on the face's *region*: the detector box grown by ``margin`` of its size on every side
(dlib's box stops at the eyebrows; the margin takes in forehead and hair) and clipped to the
image. Pixels outside the regions are unchanged. Images are uint8 HWC RGB.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face
from jaxpriv.methods import (
    MethodSpec,
    Option,
    ProtectFn,
    above,
    at_least,
    recognizer_option,
    register_method,
    within,
)


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


def dppix_edges(length: int, cell: int) -> np.ndarray:
    """Cell boundaries along one side of a DP-Pix region: ``cell``-pixel cells, the remainder
    merged into the last one, so every cell spans ``cell`` … 2·``cell``−1 pixels (a side shorter
    than ``cell`` is one cell). No small edge cell: its mean would move more per changed pixel."""
    edges = np.arange(max(length // cell, 1) + 1) * cell
    edges[-1] = length
    return edges


def dppix_sensitivity(height: int, width: int, cell: int, m: int) -> float:
    """L1 sensitivity of DP-Pix's release (every cell's R, G and B means) for a ``height`` ×
    ``width`` region when at most ``m`` pixels change, each by up to 255 in all 3 channels.

    A changed pixel moves its cell's 3 means by ≤ 3·255/n (n = pixels in the cell), so the worst
    case fills the smallest cells first: 3·255·m/b² whenever the region holds m pixels in b×b
    cells (Fan 2018's 255·m/b² is for one grey channel); more for regions with a side < b."""
    sizes = np.sort(np.outer(np.diff(dppix_edges(height, cell)),
                             np.diff(dppix_edges(width, cell))).ravel())
    before = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    changed = np.clip(m - before, 0, sizes)  # pixels the worst case puts in each cell
    return 3 * 255.0 * float(np.sum(changed / sizes))


def dppix_scale(height: int, width: int, cell: int, m: int, epsilon: float) -> float:
    """Laplace scale of DP-Pix for a region: :func:`dppix_sensitivity` / ε (one scale for all its
    cells and channels), so the region's release is ε-DP for images differing in ≤ m pixels."""
    return dppix_sensitivity(height, width, cell, m) / epsilon


NOISE_CHUNK = 4096
"""DP-Pix draws its noise in chunks of this many values: one compiled shape for every region."""


@jax.jit
def _laplace_chunk(key: jax.Array, index: jax.Array) -> jax.Array:
    return jax.random.laplace(jax.random.fold_in(key, index), (NOISE_CHUNK,), jnp.float32)


def laplace_noise(key: jax.Array, n: int) -> np.ndarray:
    """``n`` i.i.d. standard Laplace draws: chunk j of :data:`NOISE_CHUNK` values from
    ``fold_in(key, j)``, so any ``n`` reuses the one compiled draw (no compilation per size)."""
    chunks = [np.asarray(_laplace_chunk(key, j)) for j in range(-(-n // NOISE_CHUNK))]
    return np.concatenate(chunks)[:n]


def dppix_region(region: np.ndarray, key: jax.Array, cell: int, m: int,
                 epsilon: float) -> np.ndarray:
    """DP-Pix of one uint8 region (H, W, 3): each cell (:func:`dppix_edges`) replaced by its
    exact mean + Laplace(:func:`dppix_scale`) per channel, rounded and clipped to 0..255
    (post-processing). The noise comes from :func:`laplace_noise`: a new region size compiles
    nothing."""
    h, w = region.shape[:2]
    ey, ex = dppix_edges(h, cell), dppix_edges(w, cell)
    sums = np.add.reduceat(np.add.reduceat(region.astype(np.float64), ey[:-1], 0), ex[:-1], 1)
    means = sums / np.outer(np.diff(ey), np.diff(ex))[..., None]
    noise = laplace_noise(key, means.size)
    cells = means + dppix_scale(h, w, cell, m, epsilon) * noise.reshape(means.shape)
    cells = np.clip(np.rint(cells), 0, 255).astype(np.uint8)
    return np.repeat(np.repeat(cells, np.diff(ey), 0), np.diff(ex), 1)


def dppix(cell: int = 8, m: int = 16, epsilon: float = 0.5, margin: float = 0.25) -> ProtectFn:
    """DP-Pix (Fan 2018) of each face region (:func:`dppix_region`, key ``fold_in(key, i)`` for
    face i): ε-DP for regions differing in at most m pixels, counting all 3 channels (L1
    sensitivity 3·255·m/b², :func:`dppix_sensitivity`) and no cell smaller than b×b unless the
    region is. The guarantee covers the region's pixels, not the face detector's choice of
    region; each face's region is a separate release."""

    def protect(image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        out = image.copy()
        for i, face in enumerate(faces):
            y0, y1, x0, x1 = face_region(face, image.shape, margin)
            if y1 > y0 and x1 > x0:
                out[y0:y1, x0:x1] = dppix_region(out[y0:y1, x0:x1], jax.random.fold_in(key, i),
                                                 cell, m, epsilon)
        return out

    return protect


MARGIN = Option("margin", float, 0.25, "grow the face box by this share of its size per side",
                check=at_least(0))
register_method(MethodSpec("blur", "Gaussian blur of each face region", blur, (
    Option("strength", float, 0.12, "blur sigma as a share of the region width",
           check=above(0)), MARGIN)))
register_method(MethodSpec("mosaic", "pixelation of each face region", mosaic, (
    Option("blocks", int, 10, "mosaic cells across the region width", check=at_least(1)),
    MARGIN)))
register_method(MethodSpec("solid", "fill each face region with one grey level", solid, (
    Option("color", int, 0, "grey level 0..255", check=within(0, 255)), MARGIN)))
register_method(MethodSpec("dppix", "DP-Pix: pixelation + Laplace noise (Fan 2018)", dppix, (
    Option("cell", int, 8, "cell size b in pixels", check=at_least(1)),
    Option("m", int, 16, "pixels that may differ between neighbouring images",
           check=at_least(1)),
    Option("epsilon", float, 0.5, "privacy budget ε", check=above(0)), MARGIN)))


# ----------------------------------------------------------------------------------------------
# Feature-space cloak (in the manner of Fawkes, Shan et al. 2020)

CLOAK_PRESETS: dict[str, float] = {"low": 0.004, "mid": 0.012, "high": 0.017}
"""DSSIM budgets of the cloak presets (Fawkes' low / mid / high)."""

CLOAK_LR = 2.0 / 255.0  # Adam step in [0, 1] pixel units; 10 steps nearly saturate (see docs)
_SAMPLES = Path(__file__).parent / "samples"


def dssim_jax(x: jax.Array, y: jax.Array) -> jax.Array:
    """Structural dissimilarity (1 − SSIM) / 2 of float images ``(..., H, W, C)`` in [0, 1]."""
    from jaxpriv.metrics import ssim_jax

    return (1.0 - ssim_jax(x, y, 1.0)) / 2.0


def dssim(protected: np.ndarray, original: np.ndarray) -> float:
    """(1 − SSIM) / 2 of two uint8 images, SSIM from :func:`jaxpriv.metrics.ssim`."""
    from jaxpriv.metrics import ssim

    return (1.0 - ssim(protected, original)) / 2.0


BUDGET_VIEWS: tuple[tuple[str, int], ...] = (("dlib150", 150), ("arcface112", 112))
"""The chips (alignment, side) on which the cloak's DSSIM budget must hold, whatever the
recognizers it attacks: every alignment a recognizer of jaxpriv sees, so that cloaks built on
different ensembles are compared at the same visual budget."""


@functools.lru_cache(maxsize=4)
def cloak_targets(recognizer: str = "dlib_resnet") -> np.ndarray:
    """Candidate target embeddings ``(K, D)``: every face of the bundled sample photos
    (``jaxpriv/samples/*.jpg``, two public figures; HOG detection, the same faces in the same
    order for every recognizer), embedded by ``recognizer``."""
    from jaxpriv.faces import extract_chips
    from jaxpriv.io import load_image
    from jaxpriv.recognizers import load_recognizer

    rec = load_recognizer(recognizer)
    chips = [c for p in sorted(_SAMPLES.glob("*.jpg"))
             for c in extract_chips(load_image(p), None, rec)[0]]
    return rec.embed(np.stack(chips))


def _ensemble(spec: str) -> Any:
    from jaxpriv.recognizers.ensemble import load_ensemble

    return load_ensemble(spec)


def _views(image: np.ndarray, face: Face, transform: np.ndarray) -> np.ndarray:
    """``(V, 2, 3)`` affines of the :data:`BUDGET_VIEWS` chips into the working chip."""
    from jaxpriv.recognizers.ensemble import chip_affines

    return chip_affines(image, face, [a for a, _ in BUDGET_VIEWS], transform)


def _view_dssim(x: jax.Array, x0: jax.Array, views: jax.Array) -> jax.Array:
    """Largest DSSIM ``(N,)`` over the budget views of working images ``x`` vs ``x0``."""
    from jaxpriv.recognizers.ensemble import warp

    return jnp.max(jnp.stack([dssim_jax(warp(x, views[:, i], size), warp(x0, views[:, i], size))
                              for i, (_, size) in enumerate(BUDGET_VIEWS)]), axis=0)


@functools.lru_cache(maxsize=8)
def _cloak_attack(recognizer: str, steps: int) -> Callable:
    """jit of ``(x0 (N,H,W,3) working chips in [0,1], affines (N,M,2,3) member chip → working,
    views (N,V,2,3), targets [(N,D_i)], budget) → x``: Adam on the ensemble loss
    (:mod:`jaxpriv.recognizers.ensemble`, Σ τ_i·‖f_i(x) − target_i‖/t_i), each step clipped to
    [0, 1] and shrunk inside the budget on every view."""
    import optax

    ens = _ensemble(recognizer)

    def shrink(x0: jax.Array, delta: jax.Array, views: jax.Array, budget: jax.Array) -> jax.Array:
        # DSSIM grows ~ quadratically with the scale of a small perturbation
        d = _view_dssim(x0 + delta, x0, views)
        a = jnp.where(d > budget, jnp.sqrt(budget / jnp.maximum(d, 1e-12)) * 0.99, 1.0)
        return a[:, None, None, None] * delta

    def attack(params: Any, x0: jax.Array, affines: jax.Array, views: jax.Array,
               targets: list, budget: jax.Array) -> jax.Array:
        opt = optax.adam(CLOAK_LR)

        def loss(delta: jax.Array) -> jax.Array:
            return jnp.sum(ens.loss(params, x0 + delta, affines, targets)[0])

        def step(carry: tuple, _: None) -> tuple:
            delta, state = carry
            updates, state = opt.update(jax.grad(loss)(delta), state)
            delta = jnp.clip(x0 + optax.apply_updates(delta, updates), 0.0, 1.0) - x0
            return (shrink(x0, delta, views, budget), state), None

        delta = jnp.zeros_like(x0)
        (delta, _), _ = lax.scan(step, (delta, opt.init(delta)), None, length=steps)
        for _ in range(3):
            delta = shrink(x0, delta, views, budget)
        return x0 + delta

    jitted = jax.jit(attack)
    return lambda *args: jitted(ens.params, *args)


def _fit_budget(image: np.ndarray, face: Face, chip: np.ndarray, delta: np.ndarray,
                transform: np.ndarray, budget: float, iters: int = 6) -> np.ndarray:
    """Paste ``chip + α·delta`` (``chip``: any chip of the face, ``transform`` its chip→photo
    affine) with the largest α ∈ [0, 2] (bisection) such that every :data:`BUDGET_VIEWS` chip,
    cut again from the pasted image at the clean geometry, stays within ``budget`` DSSIM."""
    from jaxpriv.faces import extract_chips, paste_chip

    ref = chip.astype(np.float32)
    clean = [extract_chips(image, [face], a)[0][0] for a, _ in BUDGET_VIEWS]

    def paste(alpha: float) -> tuple[np.ndarray, float]:
        out = paste_chip(image, ref + alpha * delta, transform, reference=chip)
        again = [extract_chips(out, [face], a)[0][0] for a, _ in BUDGET_VIEWS]
        return out, max(dssim(x, c) for x, c in zip(again, clean, strict=True))

    out, d = paste(1.0)
    if d <= budget:
        lo, hi, best = 1.0, 2.0, out
        top, d_top = paste(2.0)
        if d_top <= budget:
            return top
    else:
        lo, hi, best = 0.0, 1.0, image.copy()
    for _ in range(iters):
        mid = (lo + hi) / 2
        out, d = paste(mid)
        if d <= budget:
            lo, best = mid, out
        else:
            hi = mid
    return best


def cloak(preset: str = "mid", steps: int = 10, recognizer: str = "dlib_resnet") -> ProtectFn:
    """Feature-space cloak in the manner of Fawkes (Shan et al. 2020), white-box on
    ``recognizer`` (one name or an ensemble ``"dlib_resnet,sface"``, see
    :mod:`jaxpriv.recognizers.ensemble`).

    Per face: the working chip x₀ (:func:`~jaxpriv.recognizers.ensemble.working_chip`, float
    [0, 1]; every member sees its own aligned chip of it) takes ``steps`` Adam steps (jitted
    ``lax.scan``) minimising Σ τ_i·‖f_i(x) − f_i(target)‖/t_i (distances in units of each
    member's threshold), each followed by a clip to [0, 1] and a shrink of δ = x − x₀ back inside
    the DSSIM budget of ``preset`` (low/mid/high = 0.004/0.012/0.017; DSSIM = (1 − SSIM)/2,
    :func:`jaxpriv.metrics.ssim_jax`) on the dlib150 AND the ArcFace-112 chip
    (:data:`BUDGET_VIEWS`, the same budget whatever the recognizers). Target: of the bundled
    sample faces (:func:`cloak_targets`, no network data), the one farthest from the face's own
    (Σ τ_i·d_i/t_i; Fawkes picks the farthest of a few candidate identities). δ is pasted back
    with :func:`jaxpriv.faces.paste_chip`, scaled (bisection) so both chips cut again from the
    result are within the budget, measured with :func:`jaxpriv.metrics.ssim` on uint8: the
    budget holds for what a recognizer sees."""
    if preset not in CLOAK_PRESETS:
        raise JaxprivError(f"unknown cloak preset {preset!r}; choose from {list(CLOAK_PRESETS)}")
    if steps < 1:
        raise JaxprivError(f"steps must be >= 1, got {steps}")
    from jaxpriv.faces import pin_face
    from jaxpriv.recognizers.ensemble import (
        chip_affines,
        clean_embeddings,
        combine,
        working_chip,
    )

    budget = CLOAK_PRESETS[preset]
    ens = _ensemble(recognizer)
    targets = [cloak_targets(r.name) for r in ens.members]
    attack = _cloak_attack(ens.name, steps)

    def protect(image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        out = image.copy()
        for face in faces:
            face = pin_face(out, face)  # the clean geometry for every chip cut below
            work, transform = working_chip(out, face)
            own = clean_embeddings(ens, out, face)
            far = combine(ens, [np.linalg.norm(t - o, axis=-1) for t, o in
                                zip(targets, own, strict=True)])
            pick = int(np.argmax(far))
            x0 = jnp.asarray(work[None], jnp.float32) / 255.0
            x = attack(x0, chip_affines(out, face, ens, transform)[None],
                       _views(out, face, transform)[None],
                       [jnp.asarray(t[pick][None]) for t in targets], budget)
            delta = np.asarray(x)[0] * 255.0 - work.astype(np.float32)
            out = _fit_budget(out, face, work, delta, transform, budget)
        return out

    return protect


register_method(MethodSpec("cloak", "feature-space cloak toward a far identity (Fawkes-like)",
                           cloak, (
    Option("preset", str, "mid", "DSSIM budget: low 0.004, mid 0.012, high 0.017",
           choices=tuple(CLOAK_PRESETS)),
    Option("steps", int, 10, "Adam steps of the attack", check=at_least(1)),
    recognizer_option("dlib_resnet"))))

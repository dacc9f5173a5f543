"""The steered pad: choose the k low bits inside the template so the face leaves its identity.

Paper 004, eq. 7: the perturbation maximises Σ_l τ_l·Dist_l(R_l(φ), R_l(φ ⊕ P)) over the
superposed recognizers R_l under a visual budget. A pad regenerated from the high bits cannot pick
the direction of a low-bit flip (the sign of 2^b·(1 − 2·x_b) is set by the bits it may not see);
a pad kept in the key file (:mod:`jaxpriv.masktpl.xor`) can. Here the protected pixel is
y = high(x) + l with l ∈ {0, …, 2^k − 1} on the template M and y = x elsewhere, and l follows
gradient steps of ``step`` grey levels (:func:`step_direction`: the gradient's sign, or by
default the gradient over its RMS, clipped; projected onto the k-bit box) on

    L(y) = Σ_i τ_i · min(d_i(y) / t_i, margin)

(:class:`jaxpriv.recognizers.ensemble.Ensemble`: each member sees its own aligned chip of y,
warped bilinearly from the photo; d_i in units of its threshold t_i; capped at ``margin`` so
steps go to the members not yet fooled). The loss and gradient are taken at the rounded l
(straight-through), and steps stop as soon as every member is past ``margin``, so the change is
the smallest the steps find, inside the k-bit box. The pad returned is the best one visited (its
least-fooled member furthest away), not the last: under the visual budget a late step can trade
one member's distance for another's. ``focus`` > 0 weights member i's gradient by
τ_i·softmax(−d/(t·focus))_i, so the least-fooled member steers most.

Re-alignment (``jitter`` > 0, expectation over transformation): an attacker finds the face again
in the protected photo, and the change itself moves its landmarks, so its chip is cut at a
slightly different geometry than the one steered against (on glint's 112×112 crops, found again
through the ×3 upsample, a ±8 grey-level noise already decorrelates the chips: correlation
0.1–0.5 between the two chips' changes). Each step then samples, per face and member, a
small similarity of the chip about its centre (:func:`jitter_affines`), so the pad is steered
against the neighbourhood of the clean geometry rather than one point of it.

Visual budget (issue 20: face SSIM ≥ 0.97, :mod:`jaxpriv.masktpl.budget`): with
``weighting="texture"`` each pixel's step is scaled by the contrast SSIM forgives, and after every
step the change is projected back to face-box SSIM ≥ ``ssim_target`` in the jitted loop, so the
steps spend the budget instead of being cut after it; ``tangent``: once the budget binds, each step
first loses its component along −∇SSIM (:func:`jaxpriv.masktpl.budget.tangent_to_ssim`).

Start: the original (``"zero"``: pad 0) or the trained generator's pad (``"generator"``).
The face's working image is the photo's own pixel grid, an axis-aligned crop holding every
member's chip, padded to a square of one of a few fixed sides (:func:`bucket`) so that one
compilation of the step loop (a single jitted ``lax.while_loop``) serves all faces of a bucket.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face, extract_chips
from jaxpriv.masktpl.budget import (
    SSIM_SIDE,
    face_box_region,
    project_to_ssim,
    region_map,
    shrink_to_ssim,
    tangent_to_ssim,
    texture_weight,
)
from jaxpriv.recognizers.base import embedding_distance
from jaxpriv.recognizers.ensemble import (
    Ensemble,
    chip_affines,
    clean_embeddings,
    load_ensemble,
    warp,
)

SIZES = (128, 192, 256, 384, 512, 768, 1024)
DEFAULT_RECOGNIZERS = "dlib_resnet,sface:3"
DEFAULT_STEPS = 36
DEFAULT_MARGIN = 2.5
DEFAULT_STEP = 2.0
DEFAULT_BALANCE = False
DEFAULT_FOCUS = 0.0
DEFAULT_JITTER = 1.5
DEFAULT_ROUNDS = 1
DEFAULT_TANGENT = False
REFIND_IOU = 0.3  # a face found again must overlap the steered one by more than this
STARTS = ("zero", "generator")
WEIGHTINGS = ("sign", "texture")
DEFAULT_WEIGHTING = "texture"
DIRECTIONS = ("sign", "scaled")
DEFAULT_DIRECTION = "scaled"
SCALED_CLIP = 3.0
DEFAULT_SSIM_TARGET = 0.97


@dataclasses.dataclass(frozen=True)
class Steering:
    """How the pad is steered: the superposed ``recognizers`` (``"name[:τ],…"``), at most
    ``steps`` gradient steps of ``step`` grey levels (``direction="sign"``: the gradient's
    sign; ``"scaled"``: the gradient over its RMS on the template, clipped at ±3, so pixels
    that matter more move more; ``weighting="texture"``: scaled per pixel by
    :func:`texture_weight`), stop once every d_i/t_i ≥ ``margin``, starting from the original
    (``"zero"``) or the generator's pad (``"generator"``); each step's change is projected back
    to face SSIM ≥ ``ssim_target`` (0: no budget); ``focus`` > 0: softmin temperature on d/t
    weighting the members' gradients (0: by τ alone); ``jitter`` > 0: each step sees every
    member's chip at a random similarity moving its edge by ≤ ``jitter`` chip pixels per
    component (:func:`jitter_affines`; 0: the clean geometry); ``rounds`` > 1: after each run of
    steps the face is found again in the protected photo and the next run steers at the
    geometry found (:func:`steer_rounds`); ``tangent``: at the budget each step keeps SSIM to
    first order (:func:`jaxpriv.masktpl.budget.tangent_to_ssim`)."""

    recognizers: str = DEFAULT_RECOGNIZERS
    steps: int = DEFAULT_STEPS
    margin: float = DEFAULT_MARGIN
    start: str = "zero"
    step: float = DEFAULT_STEP
    balance: bool = DEFAULT_BALANCE
    weighting: str = DEFAULT_WEIGHTING
    ssim_target: float = DEFAULT_SSIM_TARGET
    direction: str = DEFAULT_DIRECTION
    focus: float = DEFAULT_FOCUS
    jitter: float = DEFAULT_JITTER
    rounds: int = DEFAULT_ROUNDS
    tangent: bool = DEFAULT_TANGENT

    def ensemble(self) -> Ensemble:
        """The loaded (cached) ensemble of :attr:`recognizers`."""
        if self.start not in STARTS:
            raise JaxprivError(f"steering start must be one of {', '.join(STARTS)}, "
                               f"got {self.start!r}")
        if self.weighting not in WEIGHTINGS:
            raise JaxprivError(f"steering weighting must be one of {', '.join(WEIGHTINGS)}, "
                               f"got {self.weighting!r}")
        if self.direction not in DIRECTIONS:
            raise JaxprivError(f"steering direction must be one of {', '.join(DIRECTIONS)}, "
                               f"got {self.direction!r}")
        if not (isinstance(self.focus, int | float) and 0.0 <= self.focus < float("inf")):
            raise JaxprivError(f"steering focus must be a temperature ≥ 0, got {self.focus!r}")
        if not (isinstance(self.jitter, int | float) and 0.0 <= self.jitter < 16.0):
            raise JaxprivError(f"steering jitter must be chip pixels in [0, 16), "
                               f"got {self.jitter!r}")
        if not (isinstance(self.rounds, int) and 1 <= self.rounds <= 16):
            raise JaxprivError(f"steering rounds must be an integer in [1, 16], "
                               f"got {self.rounds!r}")
        if not isinstance(self.tangent, bool):
            raise JaxprivError(f"steering tangent must be true or false, got {self.tangent!r}")
        if not 0.0 <= self.ssim_target < 1.0:
            raise JaxprivError(f"ssim_target must be in [0, 1), got {self.ssim_target!r}")
        return load_ensemble(self.recognizers)

    def batch_keywords(self) -> dict[str, Any]:
        """The keywords of :func:`steer_batch` this steering sets (all but the images, the
        per-pixel weight and the SSIM region)."""
        return {"steps": self.steps, "margin": self.margin, "step": self.step,
                "balance": self.balance, "ssim_target": self.ssim_target,
                "direction": self.direction, "focus": self.focus, "jitter": self.jitter,
                "tangent": self.tangent}


def working_box(image: np.ndarray, face: Face, ensemble: Ensemble,
                extra: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the photo region holding every member's chip of ``face`` (and the
    nonzero pixels of the bool map ``extra``), clipped to the photo."""
    h, w = image.shape[:2]
    pts = []
    for rec in ensemble.members:
        _, t = extract_chips(image, [face], rec)
        s = rec.input_size - 1
        corners = np.array([[0, 0, 1], [s, 0, 1], [0, s, 1], [s, s, 1]], np.float64)
        pts.append(corners @ t[0].T)
    if extra is not None and extra.any():
        ys, xs = np.nonzero(extra)
        pts.append(np.array([[xs.min(), ys.min()], [xs.max(), ys.max()]], np.float64))
    p = np.concatenate(pts)
    x0, y0 = np.maximum(np.floor(p.min(0)) - 1, 0).astype(int)
    x1, y1 = np.minimum(np.ceil(p.max(0)) + 2, [w, h]).astype(int)
    return int(y0), int(y1), int(x0), int(x1)


def bucket(n: int) -> int:
    """The working side for a crop of ``n`` px: the next of :data:`SIZES` (beyond them, the next
    multiple of 512), so one compiled step loop serves every face of that bucket."""
    return next((s for s in SIZES if s >= n), -(-n // 512) * 512)


def step_direction(grad: jax.Array, mask: jax.Array, direction: str) -> jax.Array:
    """Per-pixel step of a gradient ``(N, H, W, C)``: its sign (``"sign"``, an L∞ step), or
    (``"scaled"``) the gradient over its RMS on the 0/1 ``mask`` ``(N, H, W, 1)``, clipped to
    ±:data:`SCALED_CLIP` (between an L∞ and an L2 step: the budget goes where the gradient is)."""
    if direction == "sign":
        return jnp.sign(grad)
    on = jnp.broadcast_to(mask, grad.shape)
    rms = jnp.sqrt(jnp.sum(on * grad**2, axis=(1, 2, 3), keepdims=True)
                   / jnp.maximum(jnp.sum(on, axis=(1, 2, 3), keepdims=True), 1.0))
    return jnp.clip(grad / (rms + 1e-20), -SCALED_CLIP, SCALED_CLIP)


def jitter_affines(affines: jax.Array, key: jax.Array, size: int, amount: float) -> jax.Array:
    """Chip → working affines ``(N, 2, 3)`` composed with a random similarity of the ``size``
    chip about its centre: translation, scale and rotation each moving the chip's edge by at
    most ``amount`` pixels (uniform), one draw per image: an attacker's re-alignment."""
    u = jax.random.uniform(key, (affines.shape[0], 4), minval=-amount, maxval=amount)
    half = size / 2.0
    scale, angle = 1.0 + u[:, 2] / half, u[:, 3] / half
    cos, sin = scale * jnp.cos(angle), scale * jnp.sin(angle)
    c = (size - 1) / 2.0
    rot = jnp.stack([jnp.stack([cos, -sin], -1), jnp.stack([sin, cos], -1)], -2)  # (N, 2, 2)
    shift = c - rot @ jnp.array([c, c]) + u[:, :2]  # chip → chip: c + R(p − c) + t
    return jnp.concatenate([affines[:, :, :2] @ rot,
                            (affines[:, :, :2] @ shift[..., None]) + affines[:, :, 2:]], -1)


@functools.partial(jax.jit, static_argnames=("ensemble", "k", "steps", "margin", "balance",
                                             "direction", "focus", "jitter", "tangent"))
def _steer(ensemble: Ensemble, params: Sequence[Any], high: jax.Array, low: jax.Array,
           mask: jax.Array, affines: jax.Array, refs: Sequence[jax.Array], k: int, steps: int,
           margin: float, balance: bool, step: jax.Array, weight: jax.Array,
           original: jax.Array | None, region: jax.Array | None, ssim_target: jax.Array,
           direction: str, focus: float = 0.0, jitter: float = 0.0,
           key: jax.Array | None = None, tangent: bool = False) -> tuple[jax.Array, jax.Array]:
    """The whole step loop as one ``lax.while_loop``: (best l, d_i/t_i ``(N, M)`` there), best
    = the visited l whose least-fooled member is furthest away (max of min_i min(d_i/t_i,
    margin); the earliest among ties). With a ``region``, each step's change is projected back
    to region SSIM ≥ ``ssim_target`` (``tangent``: after :func:`tangent_to_ssim`); ``jitter`` >
    0: step i sees the chips at :func:`jitter_affines` drawn from ``fold_in(key, i)``."""
    taus = jnp.asarray(ensemble.taus, jnp.float32)

    def member(lo: jax.Array, affine: jax.Array, i: int) -> jax.Array:
        rec = ensemble.members[i]
        hard = lo + jax.lax.stop_gradient(jnp.round(lo) - lo)  # straight-through rounding
        chip = warp((high + hard) / 255.0, affine, rec.input_size)
        return embedding_distance(rec.apply(params[i], chip), refs[i]) / rec.threshold

    def geometry(i: jax.Array) -> list[jax.Array]:
        if not jitter:
            return [affines[:, j] for j in range(len(ensemble.members))]
        keys = jax.random.split(jax.random.fold_in(key, i), len(ensemble.members))
        return [jitter_affines(affines[:, j], keys[j], rec.input_size, jitter)
                for j, rec in enumerate(ensemble.members)]

    def evaluate(lo: jax.Array, affs: list[jax.Array]) -> tuple[jax.Array, jax.Array]:
        pairs = [jax.vjp(lambda x, i=i: member(x, affs[i], i), lo)
                 for i in range(len(ensemble.members))]
        rel = jnp.stack([r for r, _ in pairs], axis=-1)  # (N, M)
        coef = (rel < margin) * taus  # 0 once past the margin
        if focus > 0:  # the least-fooled member steers most: softmin of d_i/t_i
            coef = coef * jax.nn.softmax(-rel / focus, axis=-1)
        grad = jnp.zeros_like(lo)
        for i, (_, vjp) in enumerate(pairs):
            g = vjp(coef[:, i].astype(lo.dtype))[0]
            if balance:  # each member's gradient at unit mean |g|: neither dominates the sign
                g = g / (jnp.mean(jnp.abs(g), axis=(1, 2, 3), keepdims=True) + 1e-20)
            grad = grad + g
        return rel, grad

    def body(state: tuple) -> tuple:
        i, lo, _, _, best, best_score, best_rel = state
        rel, grad = evaluate(lo, geometry(i))  # measured at l; the last pass only measures
        done = jnp.all(rel >= margin, axis=1)
        score = jnp.min(jnp.minimum(rel, margin), axis=1)
        better = score > best_score
        best = jnp.where(better[:, None, None, None], lo, best)
        best_score = jnp.where(better, score, best_score)
        best_rel = jnp.where(better[:, None], rel, best_rel)
        delta = step * mask * weight * step_direction(grad, mask, direction)
        if region is not None and tangent:
            delta = tangent_to_ssim(original, high, lo, delta, mask, region, ssim_target)
        moved = jnp.clip(lo + delta, 0.0, float(2**k - 1))
        if region is not None:
            moved = project_to_ssim(original, high, moved, region, ssim_target)
        lo = jnp.where((~done & (i < steps))[:, None, None, None], moved, lo)
        return i + 1, lo, rel, done, best, best_score, best_rel

    def cond(state: tuple) -> jax.Array:
        return (state[0] <= steps) & ~jnp.all(state[3])

    n, m = low.shape[0], len(ensemble.members)
    rel0 = jnp.zeros((n, m), jnp.float32)
    init = (0, low, rel0, jnp.zeros(n, bool), low, jnp.full(n, -jnp.inf), rel0)
    _, _, _, _, best, _, best_rel = jax.lax.while_loop(cond, body, init)
    return jnp.round(best), best_rel


def steer_batch(high: np.ndarray, low: np.ndarray, mask: np.ndarray, affines: np.ndarray,
                refs: Sequence[np.ndarray], k: int, ensemble: Ensemble,
                steps: int = DEFAULT_STEPS, margin: float = DEFAULT_MARGIN,
                step: float = DEFAULT_STEP, balance: bool = DEFAULT_BALANCE,
                weight: np.ndarray | None = None, original: np.ndarray | None = None,
                region: np.ndarray | None = None, ssim_target: float = 0.0,
                direction: str = DEFAULT_DIRECTION, focus: float = DEFAULT_FOCUS,
                jitter: float = DEFAULT_JITTER,
                tangent: bool = DEFAULT_TANGENT) -> tuple[np.ndarray, np.ndarray]:
    """Steer working images: ``high`` float ``(N, H, W, 3)`` (the pixels with their k low bits
    cleared on the mask, the pixels themselves elsewhere), start ``low`` (k low bits, 0 off the
    mask), ``mask`` ``(N, H, W, 1)`` 0/1, member chip → working affines ``(N, M, 2, 3)``, clean
    embeddings ``refs[i]`` ``(N, D_i)``. Each image stops once all its d_i/t_i ≥ ``margin``;
    ``balance``: each member's gradient is scaled to unit mean magnitude before the sign;
    ``direction``: :func:`step_direction`; ``focus`` > 0: member i's gradient weighted by
    τ_i·softmax(−d/(t·focus))_i, so the least-fooled member steers most (0: by τ_i alone);
    ``jitter`` > 0: each step sees the chips re-aligned at random (:func:`jitter_affines`, a
    fixed key: the same inputs give the same pad); ``weight`` ``(N, H, W, 1)``: per-pixel
    step scale (:func:`texture_weight`; None: 1);
    ``original`` (the uint8-valued images), ``region`` (:func:`region_map`) and ``ssim_target``
    > 0: after every step the change is scaled back until the region's SSIM ≥ the target (the
    budget is spent by the steps, not cut after them); ``tangent``: at the budget each step
    first loses its SSIM-lowering component (:func:`tangent_to_ssim`). Returns (the best visited
    l, rounded, uint8-valued float: the one whose least-fooled member is furthest away; d_i/t_i
    ``(N, M)`` there)."""
    high, low, mask, affines = (jnp.asarray(a, jnp.float32) for a in (high, low, mask, affines))
    weight = jnp.ones_like(mask) if weight is None else jnp.asarray(weight, jnp.float32)
    project = original is not None and region is not None and ssim_target > 0
    low, rel = _steer(ensemble, ensemble.params, high, low, mask, affines,
                      [jnp.asarray(r) for r in refs], k, int(steps), float(margin), bool(balance),
                      jnp.float32(step), weight,
                      jnp.asarray(original, jnp.float32) if project else None,
                      jnp.asarray(region, jnp.float32) if project else None,
                      jnp.float32(ssim_target), direction, float(focus), float(jitter),
                      jax.random.key(0), bool(tangent))
    return np.asarray(low), np.asarray(rel)


def refind_face(photo: np.ndarray, face: Face, detector: str) -> Face | None:
    """The face ``detector`` finds in ``photo`` overlapping ``face``'s box most (IoU >
    :data:`REFIND_IOU`), else None: the geometry an attacker aligns on the protected photo."""
    from jaxpriv.faces import detect_faces
    from jaxpriv.tracking import iou

    found = [f for f in detect_faces(photo, detector=detector) if iou(f.box, face.box) > REFIND_IOU]
    return max(found, key=lambda f: iou(f.box, face.box)) if found else None


def steer_rounds(high: np.ndarray, low: np.ndarray, mask: np.ndarray, affines: np.ndarray,
                 refs: Sequence[np.ndarray], k: int, ensemble: Ensemble, rounds: int,
                 realign: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 **steering: Any) -> tuple[np.ndarray, np.ndarray]:
    """Steering against the attacker's re-alignment: ``rounds`` runs of :func:`steer_batch`
    (``steering``: its keywords), each from the pad the last one reached; between runs
    ``realign`` (uint8 working images ``(N, H, W, 3)``, current affines ``(N, M, 2, 3)`` → the
    affines of the faces found again in them, the current ones where none is found) moves the
    geometry to where an attacker would cut its chips of the protected face. Returns the last
    run's (l, d_i/t_i)."""
    if rounds < 1:
        raise JaxprivError(f"steering rounds must be ≥ 1, got {rounds!r}")
    for r in range(rounds):
        low, rel = steer_batch(high, low, mask, affines, refs, k, ensemble, **steering)
        if r + 1 < rounds:
            affines = realign((high + low).astype(np.uint8), affines)
    return low, rel


def steer_face(image: np.ndarray, face: Face, mask: np.ndarray, start: np.ndarray, k: int,
               steering: Steering, detector: str | None = None,
               ) -> tuple[np.ndarray, list[float]]:
    """Protected pixels of one face: uint8 ``image`` with the k low bits of the pixels in
    ``mask`` (bool ``(H, W)``) steered away from the face's identity as ``steering`` says,
    starting from ``start`` (uint8, same shape: the original or the generator's protected image;
    equal to ``image`` off the mask): steps scaled by its weighting, each step's change projected
    back to face-box SSIM ≥ its ``ssim_target`` and the result checked exactly by
    :func:`shrink_to_ssim` (0: no budget; the other fields: :func:`steer_batch`); ``rounds`` > 1:
    between runs of steps the face is found again in the protected photo by ``detector`` (None:
    the one that found it, YuNet if it carries ArcFace points, else HOG) and steered at that
    geometry (:func:`steer_rounds`). Returns (protected image, d_i/t_i per member at the
    steered pad)."""
    ensemble = steering.ensemble()
    y0, y1, x0, x1 = working_box(image, face, ensemble, mask)
    h, w = y1 - y0, x1 - x0
    side = bucket(max(h, w))
    shift = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]])  # working pixel → photo

    def crop(a: np.ndarray) -> np.ndarray:
        out = np.zeros((side, side, *a.shape[2:]), a.dtype)
        out[:h, :w] = a[y0:y1, x0:x1]
        return out[None]

    high, low, m = working_arrays(crop(image), crop(start), crop(mask), k)
    weight = texture_weight(crop(image), crop(mask)) if steering.weighting == "texture" else None
    refs = [e[None] for e in clean_embeddings(ensemble, image, face)]
    affines = chip_affines(image, face, ensemble, shift)[None]
    rows, cols = face_box_region(face, image.shape)
    inside = (slice(max(rows.start, y0) - y0, min(rows.stop, y1) - y0),
              slice(max(cols.start, x0) - x0, min(cols.stop, x1) - x0))
    region = region_map([inside], (side, side))
    if detector is None:
        detector = "yunet" if face.arcface_landmarks is not None else "hog"

    def pasted(working: np.ndarray) -> np.ndarray:
        out = image.copy()
        out[y0:y1, x0:x1] = working[0, :h, :w]
        return out

    def realign(working: np.ndarray, current: np.ndarray) -> np.ndarray:
        photo = pasted(working)
        again = refind_face(photo, face, detector)
        return current if again is None else chip_affines(photo, again, ensemble, shift)[None]

    low, rel = steer_rounds(high, low, m, affines, refs, k, ensemble, steering.rounds, realign,
                            weight=weight, original=crop(image).astype(np.float32),
                            region=region, **steering.batch_keywords())
    out = pasted((high + low).astype(np.uint8))
    if steering.ssim_target and min(rows.stop - rows.start, cols.stop - cols.start) >= SSIM_SIDE:
        out, _ = shrink_to_ssim(image, out, (rows, cols), steering.ssim_target)
    return out, [float(v) for v in rel[0]]


def working_arrays(image: np.ndarray, start: np.ndarray, mask: np.ndarray,
                   k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(high, low, mask) float arrays of :func:`steer_batch` from uint8 images ``(N, H, W, 3)``,
    uint8 starts and bool masks ``(N, H, W)``: on the mask, high = x & ~(2^k − 1) and low = the
    start's k low bits; off it, high = x and low = 0."""
    m = mask[..., None].astype(np.float32)
    low_bits = np.uint8((1 << k) - 1)
    high = np.where(m > 0, image & ~low_bits, image).astype(np.float32)
    return high, (start & low_bits).astype(np.float32) * m, m

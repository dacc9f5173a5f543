"""Recognizer ensembles: ``"dlib_resnet,sface:0.5"`` → members with weights τ and one loss.

Issue 17 item 4 / the mask paper's superposition (eq. 7, weights τ). The ensemble loss of an image
``x`` against one reference embedding per member is

    L(x) = Σ_i τ_i · d_i(x) / t_i

with ``d_i`` the Euclidean distance between member i's embedding of ITS OWN aligned chip of ``x``
and its reference, and ``t_i`` member i's same-person threshold. Each distance is in units of its
own threshold (``d_i / t_i = 1`` is the match boundary of every member), so recognizers whose
embeddings have different scales weigh alike; τ defaults to 1. Callers choose the sign: a cloak
pulls toward a target (minimise L), a mask or a sensitivity map pushes away from the clean face.

Geometry: one float working image per face and, per member, a 2×3 affine ``A_i`` taking member
chip pixel ``(x, y, 1)`` to working pixel ``(x, y)``; member i's chip is the working image sampled
bilinearly at ``A_i`` (:func:`warp`, ``jax.scipy.ndimage.map_coordinates``, zeros outside), hence
differentiable with respect to every working pixel. :func:`working_chip` cuts the default working
image (the dlib150 chip grown on every side at the same pixel grid, so that it holds the
ArcFace crop too) and
:func:`chip_affines` composes each member's chip→photo affine (:func:`jaxpriv.faces.extract_chips`)
with the inverse of the working image's own chip→photo affine — any working image with a known
chip→photo affine (e.g. a plain dlib chip) works the same way.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv.errors import JaxprivError
from jaxpriv.recognizers.base import Recognizer, embedding_distance, shared_recognizer

WORK_MARGIN = 50
"""Chip pixels :func:`working_chip` adds on every side of the dlib150 chip (150 → 250 px, i.e. a
dlib padding of 0.75 instead of 0.25): enough to hold the ArcFace crop, which reaches ≈ 38 px
above the dlib150 chip on frontal faces."""


@dataclasses.dataclass(frozen=True, eq=False)
class Ensemble:
    """Recognizers with weights τ (one member = a plain recognizer)."""

    members: tuple[Recognizer, ...]
    taus: tuple[float, ...]

    @property
    def name(self) -> str:
        """Canonical spec: ``"dlib_resnet,sface"`` (``name:τ`` where τ ≠ 1)."""
        return ",".join(r.name if t == 1.0 else f"{r.name}:{t:g}"
                        for r, t in zip(self.members, self.taus, strict=True))

    @property
    def params(self) -> tuple[Any, ...]:
        """The members' parameters (a pytree to pass through ``jax.jit``)."""
        return tuple(r.params for r in self.members)

    def chips(self, working01: jax.Array, affines: jax.Array) -> list[jax.Array]:
        """Each member's chip ``(N, S_i, S_i, C)`` of working images ``(N, H, W, C)``;
        ``affines`` ``(N, M, 2, 3)`` or ``(M, 2, 3)`` (shared), from :func:`chip_affines`."""
        affines = jnp.asarray(affines, jnp.float32)
        if affines.ndim == 3:
            affines = jnp.broadcast_to(affines, (working01.shape[0], *affines.shape))
        return [warp(working01, affines[:, i], r.input_size) for i, r in enumerate(self.members)]

    def embed(self, params: Sequence[Any], working01: jax.Array,
              affines: jax.Array) -> list[jax.Array]:
        """Each member's embeddings ``(N, D_i)`` of its own chip of the working images."""
        return [r.apply(p, c) for r, p, c in
                zip(self.members, params, self.chips(working01, affines), strict=True)]

    def loss(self, params: Sequence[Any], working01: jax.Array, affines: jax.Array,
             refs: Sequence[jax.Array]) -> tuple[jax.Array, list[jax.Array]]:
        """(L ``(N,)`` = Σ τ_i·d_i/t_i, [d_i ``(N,)`` in each member's own units]) against
        reference embeddings ``refs[i]`` ``(N, D_i)`` or ``(D_i,)``. Pure; differentiable."""
        dists = [embedding_distance(e, jnp.asarray(ref)) for e, ref in
                 zip(self.embed(params, working01, affines), refs, strict=True)]
        return combine(self, dists), dists


def combine(ensemble: Ensemble, dists: Sequence[jax.Array]) -> jax.Array:
    """Σ τ_i·d_i/t_i of per-member distances (each in its own units)."""
    return sum(t * d / r.threshold
               for r, t, d in zip(ensemble.members, ensemble.taus, dists, strict=True))


def parse_spec(spec: str) -> tuple[tuple[str, float], ...]:
    """``"dlib_resnet,sface:0.5"`` → ``(("dlib_resnet", 1.0), ("sface", 0.5))``; a one-line
    :class:`JaxprivError` for an empty or repeated name or a τ that is not a positive number.
    Names are checked when loaded (:func:`load_ensemble`)."""
    out: list[tuple[str, float]] = []
    for part in str(spec).split(","):
        name, _, tau = part.strip().partition(":")
        name = name.strip()
        if not name:
            raise JaxprivError(f"empty recognizer name in {spec!r} (use e.g. dlib_resnet,sface)")
        try:
            weight = float(tau) if tau.strip() else 1.0
        except ValueError:
            weight = float("nan")
        if not weight > 0 or weight == float("inf"):
            raise JaxprivError(f"recognizer weight in {part.strip()!r} must be a positive number")
        if name in (n for n, _ in out):
            raise JaxprivError(f"recognizer {name!r} named twice in {spec!r}")
        out.append((name, weight))
    return tuple(out)


def check_spec(spec: str) -> str | None:
    """An :class:`~jaxpriv.methods.Option` check: ``None`` if every name is a known recognizer,
    else what is wrong (without loading any weights)."""
    from jaxpriv.recognizers.base import available_recognizers

    try:
        names = [n for n, _ in parse_spec(spec)]
    except JaxprivError as e:
        return str(e)
    known = available_recognizers()
    unknown = [n for n in names if n not in known]
    return f"names unknown recognizer {unknown[0]!r} (available: {', '.join(known)})" \
        if unknown else None


@functools.lru_cache(maxsize=8)
def load_ensemble(spec: str) -> Ensemble:
    """Load the members of ``spec`` (see :func:`parse_spec`); cached per spec."""
    parsed = parse_spec(spec)
    return Ensemble(tuple(shared_recognizer(n) for n, _ in parsed), tuple(t for _, t in parsed))


def warp(x01: jax.Array, affine: jax.Array, size: int) -> jax.Array:
    """Bilinear sample of images ``(N, H, W, C)`` at ``affine`` ``(N, 2, 3)`` (output pixel
    ``(x, y, 1)`` → input pixel ``(x, y)``; pixel centres at integers, as cv2 and dlib) →
    ``(N, size, size, C)``; zeros outside the input. Differentiable in ``x01``."""
    ys, xs = jnp.meshgrid(jnp.arange(size, dtype=jnp.float32),
                          jnp.arange(size, dtype=jnp.float32), indexing="ij")
    grid = jnp.stack([xs, ys, jnp.ones_like(xs)], axis=-1)  # (S, S, 3)

    def one(img: jax.Array, a: jax.Array) -> jax.Array:
        pts = grid @ a.T  # (S, S, 2) as (x, y)

        def channel(c: jax.Array) -> jax.Array:
            return jax.scipy.ndimage.map_coordinates(c, [pts[..., 1], pts[..., 0]], order=1,
                                                     mode="constant", cval=0.0)

        return jax.vmap(channel, in_axes=-1, out_axes=-1)(img)

    return jax.vmap(one)(x01, jnp.asarray(affine, x01.dtype))


def _homogeneous(affine: np.ndarray) -> np.ndarray:
    return np.concatenate([affine, np.broadcast_to([0.0, 0.0, 1.0], (*affine.shape[:-2], 1, 3))],
                          axis=-2)


def chip_affines(image: np.ndarray, face: Any, ensemble: Ensemble | Sequence[Any],
                 working_transform: np.ndarray) -> np.ndarray:
    """``(M, 2, 3)`` affines member chip pixel → working pixel for one face of ``image``, given
    the working image's own chip→photo affine ``working_transform`` ``(2, 3)`` (e.g. from
    :func:`working_chip` or :func:`jaxpriv.faces.extract_chips`). ``ensemble``: an
    :class:`Ensemble`, or any alignments / recognizers :func:`jaxpriv.faces.extract_chips`
    accepts (e.g. ``["dlib150", "arcface112"]``)."""
    from jaxpriv.faces import extract_chips

    to_work = np.linalg.inv(_homogeneous(np.asarray(working_transform, np.float64)))
    out = []
    for rec in ensemble.members if isinstance(ensemble, Ensemble) else ensemble:
        _, transform = extract_chips(image, [face], rec)
        out.append((to_work @ _homogeneous(transform[0]))[:2])
    return np.stack(out).astype(np.float32)


def working_chip(image: np.ndarray, face: Any,
                 margin: int = WORK_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """The default working image of one face: the dlib150 chip grown by ``margin`` on every
    side (:func:`jaxpriv.faces.align.grown_dlib_chip`) and its chip→photo affine; paste an
    edited one back with :func:`jaxpriv.faces.paste_chip`."""
    from jaxpriv.faces.align import grown_dlib_chip

    return grown_dlib_chip(image, face, margin)


def clean_embeddings(ensemble: Ensemble, image: np.ndarray, face: Any) -> list[np.ndarray]:
    """Each member's embedding ``(D_i,)`` of its own chip cut from the photo by
    :func:`jaxpriv.faces.extract_chips` (the view every recognizer has of the unedited face)."""
    from jaxpriv.faces import extract_chips

    return [r.embed(extract_chips(image, [face], r)[0])[0] for r in ensemble.members]

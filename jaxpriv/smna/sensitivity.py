"""Ground-truth sensitivity maps of SMNA (Alg. 1), exact (vmapped, chunked, sharded) and linearised.

Paper: "Sensitivity Map Noise-Adding" (SMNA), Alg. 1. For an image ``x`` and its identity's
labelled portrait ``x_labeled``, every pixel ``(h, w)`` is set to a noise colour (all channels) and
the recognizer queried once; the map holds the change of the comparison score.

Sign convention (used everywhere in jaxpriv): with ``d`` the recognizer's Euclidean embedding
distance to the reference embedding,

    s[h, w] = d(x with pixel (h, w) set to the noise colour) − d(x).

``s > 0`` means setting the pixel to the noise colour moves the face AWAY from its identity. This
is Alg. 1 line 4 (``f(x) − f(x_modified)``) with ``f`` a *similarity*; with a distance the order of
the two terms flips so the meaning stays the same.

Image pipeline (fixed, documented, one of each):

* the SMNA image is the recognizer's aligned chip (dlib: 150×150) downsampled ONCE to 64×64 with
  OpenCV's area interpolation (``cv2.INTER_AREA``, an antialiased box average), rounded to uint8:
  :func:`to_smna_image`;
* a (possibly perturbed) SMNA image reaches the recognizer through :func:`to_chip`, i.e.
  ``jax.image.resize(x01, (..., S, S, 3), method="bilinear", antialias=False)`` with ``S`` the
  recognizer's ``input_size``, inside the jitted query function (upsampling: antialiasing would
  change nothing).

Images are uint8 RGB ``(H, W, 3)`` or float32 RGB in [0, 1]; noise colours are ``"black"`` (0) and
``"white"`` (255, i.e. 1.0), or any float in [0, 1].
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import cv2
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxpriv.errors import JaxprivError
from jaxpriv.recognizers import Recognizer, embedding_distance
from jaxpriv.recognizers.ensemble import Ensemble

SMNA_SIZE = 64
"""Side of the SMNA image (paper Sec. IV-A: 64×64×3 images, 64×64×1 maps)."""

NOISE_COLORS: dict[str, float] = {"black": 0.0, "white": 1.0}
"""Noise colours of the paper (Sec. IV-A: RGB all 0 or all 255), in the [0, 1] scale."""

DEFAULT_CHUNK = 8
"""Perturbed images per vmapped query batch (per device); fastest on the 2-core dev CPU."""

Method = Literal["exact", "linear"]
_DATA = "data"


# ----------------------------------------------------------------------------------------------
# Image pipeline


def to_smna_image(chip: np.ndarray, size: int = SMNA_SIZE) -> np.ndarray:
    """Downsample uint8 chip(s) ``(..., S, S, 3)`` to the SMNA image ``(..., size, size, 3)``.

    One area (antialiased box) resize, ``cv2.INTER_AREA``, rounded to uint8 (paper Sec. IV-A:
    64×64 images)."""
    chip = np.asarray(chip)
    if chip.dtype != np.uint8 or chip.ndim < 3 or chip.shape[-1] != 3:
        raise JaxprivError(f"chip must be uint8 (..., S, S, 3), got {chip.dtype} {chip.shape}")
    if chip.ndim > 3:
        flat = chip.reshape(-1, *chip.shape[-3:])
        out = np.stack([to_smna_image(c, size) for c in flat])
        return out.reshape(*chip.shape[:-3], size, size, 3)
    return cv2.resize(chip, (size, size), interpolation=cv2.INTER_AREA)


def to_chip(x01: jax.Array, input_size: int) -> jax.Array:
    """Bilinear upsampling of float images ``(B, H, W, 3)`` in [0, 1] to ``(B, S, S, 3)``.

    The single fixed resize between an SMNA image and the recognizer (``jax.image.resize``,
    ``method="bilinear"``, ``antialias=False``: irrelevant when upsampling)."""
    shape = (x01.shape[0], input_size, input_size, x01.shape[-1])
    return jax.image.resize(x01, shape, method="bilinear", antialias=False)


def smna_transform(chip_transform: np.ndarray, chip_size: int,
                   size: int = SMNA_SIZE) -> np.ndarray:
    """The SMNA image's pixel → photo affine ``(2, 3)``, from its chip's chip→photo affine: an
    area resize maps SMNA pixel ``x`` to chip pixel ``(x + ½)·chip_size/size − ½``. With
    :func:`jaxpriv.recognizers.ensemble.chip_affines` it gives each ensemble member's view."""
    k = chip_size / size
    scale = np.array([[k, 0.0, 0.5 * k - 0.5], [0.0, k, 0.5 * k - 0.5], [0.0, 0.0, 1.0]])
    return np.asarray(chip_transform, np.float64) @ scale


def as_float01(image: np.ndarray | jax.Array) -> np.ndarray:
    """uint8 → float32 / 255; float input is taken as already in [0, 1]."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32)


def noise_value(color: str | float) -> float:
    """``"black"`` → 0.0, ``"white"`` → 1.0, a float in [0, 1] → itself."""
    if isinstance(color, str):
        if color not in NOISE_COLORS:
            raise JaxprivError(f"unknown noise colour {color!r}; use black, white or a float")
        return NOISE_COLORS[color]
    value = float(color)
    if not 0.0 <= value <= 1.0:
        raise JaxprivError(f"noise colour must be in [0, 1], got {value}")
    return value


# ----------------------------------------------------------------------------------------------
# Pure functions (traced)


def _distances(apply: Callable, input_size: int, params: Any, x01: jax.Array,
               ref: jax.Array) -> jax.Array:
    """d(x) for a batch ``(B, H, W, 3)`` against one reference embedding ``(D,)`` → ``(B,)``."""
    return embedding_distance(apply(params, to_chip(x01, input_size)), ref)


def _ensemble_distances(ens: Ensemble, params: Any, x01: jax.Array, ref: Any) -> jax.Array:
    """The ensemble's distance Σ τ_i·d_i/t_i (:mod:`jaxpriv.recognizers.ensemble`) of a batch
    ``(B, H, W, 3)``; ``ref`` = (member references ``(D_i,)``, affines ``(M, 2, 3)`` member chip
    → SMNA image pixel): each member sees its own chip, warped from the SMNA image."""
    refs, affines = ref
    return ens.loss(params, x01, affines, refs)[0]


def _dist(model: tuple[Callable, int] | Ensemble) -> Callable:
    """``(params, x (B,H,W,3), ref) → (B,)`` for a recognizer ``(apply, input_size)`` (the
    :func:`to_chip` path) or an :class:`Ensemble`."""
    if isinstance(model, Ensemble):
        return functools.partial(_ensemble_distances, model)
    return functools.partial(_distances, *model)


def _exact_one(dist: Callable, chunk: int, params: Any, x01: jax.Array,
               ref: Any, color: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Alg. 1 for one image ``(H, W, 3)``: (map ``(H, W)``, clean distance ``()``).

    Pixel ``p`` (row-major) is set to ``color`` in all channels; pixels go through the recognizer
    ``chunk`` at a time (one ``vmap``-ed batch per ``lax.map`` step), so memory is bounded by one
    chunk whatever the image size. The last chunk is padded with the last pixel, then dropped."""
    h, w = x01.shape[:2]
    n = h * w
    n_chunks = math.ceil(n / chunk)
    ids = jnp.minimum(jnp.arange(n_chunks * chunk), n - 1).reshape(n_chunks, chunk)
    flat = jnp.arange(n)

    def perturb(p: jax.Array) -> jax.Array:  # one pixel → one modified image
        mask = (flat == p).reshape(h, w, 1)
        return jnp.where(mask, color, x01)

    def query(chunk_ids: jax.Array) -> jax.Array:
        batch = jax.vmap(perturb)(chunk_ids)
        return dist(params, batch, ref)

    d_mod = lax.map(query, ids).reshape(-1)[:n].reshape(h, w)
    d0 = dist(params, x01[None], ref)[0]
    return d_mod - d0, d0


def _linear_one(dist: Callable, params: Any, x01: jax.Array, ref: Any,
                color: jax.Array) -> tuple[jax.Array, jax.Array]:
    """First-order Alg. 1: s_lin[h,w] = Σ_c ∂d/∂x[h,w,c] · (color − x[h,w,c]) from one VJP."""

    def d(x: jax.Array) -> jax.Array:
        return dist(params, x[None], ref)[0]

    d0, grad = jax.value_and_grad(d)(x01)
    return jnp.sum(grad * (color - x01), axis=-1), d0


# ----------------------------------------------------------------------------------------------
# Compiled functions (cached: one per recognizer apply (or ensemble), chunk, method and mesh;
# jit then specialises on the image size)


@functools.lru_cache(maxsize=32)
def _compiled(model: tuple[Callable, int] | Ensemble, chunk: int, method: str,
              mesh: Mesh | None) -> Callable:
    """jit of the batched map function ``(params, x (N,H,W,3), refs, color) → (maps, d0)``
    (refs: ``(N,D)`` for a recognizer, (per-member ``(N,D_i)``, affines ``(N,M,2,3)``) for an
    ensemble).

    With a mesh the image batch (hence every chunk of perturbed images) is split over its
    ``data`` axis; parameters and colour are replicated."""
    if method == "exact":
        one = functools.partial(_exact_one, _dist(model), chunk)
    else:
        one = functools.partial(_linear_one, _dist(model))

    def batched(params: Any, x: jax.Array, refs: jax.Array, color: jax.Array):
        return jax.vmap(one, in_axes=(None, 0, 0, None))(params, x, refs, color)

    if mesh is None:
        return jax.jit(batched)
    data, rep = NamedSharding(mesh, P(_DATA)), NamedSharding(mesh, P())
    return jax.jit(batched, in_shardings=(rep, data, data, rep), out_shardings=(data, data))


@functools.lru_cache(maxsize=8)
def _compiled_distance(apply: Callable, input_size: int) -> Callable:
    """jit of ``(params, x (B,H,W,3), ref (D,)) → (B,)`` distances (one query per image)."""
    return jax.jit(functools.partial(_distances, apply, input_size))


# ----------------------------------------------------------------------------------------------
# Public API


def sensitivity_maps(
    rec: Recognizer | Ensemble,
    images: np.ndarray,
    ref_embeddings: np.ndarray | Sequence[np.ndarray],
    color: str | float,
    chunk: int = DEFAULT_CHUNK,
    method: Method = "exact",
    mesh: Mesh | None = None,
    images_per_device: int = 1,
    affines: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sensitivity maps (Alg. 1) of a batch of images, each against its own reference embedding.

    ``images``: uint8 or [0, 1] float ``(N, H, W, 3)``; ``ref_embeddings``: ``(N, D)`` embeddings
    of each image's identity portrait. Images go ``mesh.size * images_per_device`` at a time
    (padded) through one compiled function whose batch is sharded over the mesh's ``data`` axis,
    so each device evaluates ``images_per_device * chunk`` perturbed images per step.
    Returns float32 maps ``(N, H, W)`` (sign: see module docstring) and clean distances ``(N,)``.
    ``method="linear"`` gives the first-order estimate (one VJP per image, ``chunk`` unused).

    With an :class:`~jaxpriv.recognizers.ensemble.Ensemble` the distance of Alg. 1 is the
    ensemble loss Σ τ_i·d_i/t_i (in units of each member's threshold): ``ref_embeddings`` is one
    ``(N, D_i)`` array per member and ``affines`` ``(N, M, 2, 3)`` maps each member's chip
    pixels to SMNA image pixels (:func:`jaxpriv.recognizers.ensemble.chip_affines`); every
    member sees its own chip warped from the image, so the map is Σ τ_i·map_i/t_i."""
    if method not in ("exact", "linear"):
        raise JaxprivError(f"method must be 'exact' or 'linear', got {method!r}")
    if chunk < 1 or images_per_device < 1:
        raise JaxprivError("chunk and images_per_device must be >= 1")
    x = as_float01(images)
    if isinstance(rec, Ensemble):
        m = len(rec.members)
        refs = [np.asarray(r, np.float32) for r in ref_embeddings]
        if affines is None or np.shape(affines) != (len(x), m, 2, 3) or len(refs) != m \
                or any(r.shape[0] != len(x) for r in refs):
            raise JaxprivError(f"an ensemble of {m} needs {m} reference arrays (N, D_i) and "
                               f"affines (N, {m}, 2, 3) for N = {len(x)} images")
        model: tuple[Callable, int] | Ensemble = rec
        per_image: Any = (tuple(refs), np.asarray(affines, np.float32))
    else:
        refs = np.asarray(ref_embeddings, np.float32)
        if x.ndim != 4 or x.shape[-1] != 3 or refs.ndim != 2 or len(refs) != len(x):
            raise JaxprivError(f"need images (N,H,W,3) and refs (N,D), got {x.shape}, "
                               f"{refs.shape}")
        model, per_image = (rec.apply, rec.input_size), refs
    fn = _compiled(model, chunk if method == "exact" else 0, method, mesh)
    group = (1 if mesh is None else mesh.size) * images_per_device
    value = jnp.float32(noise_value(color))
    maps, d0 = [], []
    for start in range(0, len(x), group):
        # this group's images and their references (arrays of N rows, or a pytree of them)
        xb, rb = jax.tree.map(lambda a: a[start : start + group], (x, per_image))  # noqa: B023
        n = len(xb)
        if n < group:  # pad with copies of the last image (results dropped)
            xb, rb = jax.tree.map(
                lambda a: np.concatenate([a, np.repeat(a[-1:], group - n, 0)]),  # noqa: B023
                (xb, rb))
        mb, d = fn(rec.params, xb, rb, value)
        maps.append(np.asarray(mb)[:n])
        d0.append(np.asarray(d)[:n])
    if not maps:
        return np.zeros((0, *x.shape[1:3]), np.float32), np.zeros((0,), np.float32)
    return np.concatenate(maps).astype(np.float32), np.concatenate(d0).astype(np.float32)


def sensitivity_map(
    rec: Recognizer,
    image64: np.ndarray,
    ref_embedding: np.ndarray,
    color: str | float,
    chunk: int = DEFAULT_CHUNK,
    method: Method = "exact",
) -> np.ndarray:
    """Sensitivity map (Alg. 1) of one image ``(H, W, 3)`` (uint8 or [0, 1] float, normally the
    64×64 :func:`to_smna_image`) against ``ref_embedding`` ``(D,)``: float32 ``(H, W)``,
    ``s > 0`` = setting that pixel to ``color`` moves the face away from its identity.

    ``method="exact"``: H·W queries, ``chunk`` perturbed images per vmapped batch;
    ``method="linear"``: s_lin[h,w] = Σ_c ∂d/∂x[h,w,c]·(color − x[h,w,c]) from one VJP."""
    image = np.asarray(image64)
    if image.ndim != 3:
        raise JaxprivError(f"image must be (H, W, 3), got {image.shape}")
    ref = np.asarray(ref_embedding, np.float32).reshape(1, -1)
    maps, _ = sensitivity_maps(rec, image[None], ref, color, chunk, method)
    return maps[0]


def clean_distance(rec: Recognizer, image64: np.ndarray, ref_embedding: np.ndarray) -> float:
    """d(x): distance of the unmodified image (through :func:`to_chip`) to ``ref_embedding``."""
    x = jnp.asarray(as_float01(image64))[None]
    fn = _compiled_distance(rec.apply, rec.input_size)
    return float(fn(rec.params, x, jnp.asarray(ref_embedding, jnp.float32))[0])


def sensitivity_map_loop(
    rec: Recognizer,
    image64: np.ndarray,
    ref_embedding: np.ndarray,
    color: str | float,
    pixels: Sequence[tuple[int, int]] | None = None,
) -> np.ndarray:
    """Reference: Alg. 1 as written, one Python iteration and one recognizer query per pixel.

    Only for tests and benchmarks (no batching). With ``pixels`` only those ``(h, w)`` are
    queried and the other entries are NaN. Returns float32 ``(H, W)``."""
    x = as_float01(image64)
    h, w = x.shape[:2]
    value = noise_value(color)
    fn = _compiled_distance(rec.apply, rec.input_size)
    ref = jnp.asarray(ref_embedding, jnp.float32)
    d0 = float(fn(rec.params, jnp.asarray(x)[None], ref)[0])
    todo = [(i, j) for i in range(h) for j in range(w)] if pixels is None else list(pixels)
    out = np.full((h, w), np.nan, np.float32)
    for i, j in todo:
        modified = x.copy()
        modified[i, j, :] = value
        out[i, j] = float(fn(rec.params, jnp.asarray(modified)[None], ref)[0]) - d0
    return out

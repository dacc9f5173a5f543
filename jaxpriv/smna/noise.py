"""SMNA noise addition (paper 000, Alg. 3) and its application to face chips.

Alg. 3:  NoiseMap = G(x) − Mean(G(x));  NoiseLevel = δ / |NoiseMap|;  x' = x + NoiseLevel·NoiseMap.

Our reading, in units:

- G(x) is one 64×64 map per face; Mean is over its 64×64 values.
- |NoiseMap| is a norm over the 64×64 map, so the added change NoiseLevel·NoiseMap has that norm
  equal to δ = ``noise_level``, in grey levels of 0..255, in *each* RGB channel (the same value
  is added to R, G and B: the maps were measured by setting all three to 0 or 255). The paper
  does not say which norm; we read it as the **L2 norm** (``norm="l2"``, default): RMS change
  δ/64, i.e. 7.8…19.5 grey levels at the paper's δ = 500…1250, which reproduces the paper's
  regime (distance rising with δ, noise "more noticeable" as δ grows; Table III). The L1 reading
  (``norm="l1"``: mean |change| δ/4096 = 0.12…0.31 grey levels) is a nearly invisible change,
  half of which uint8 rounding removes, so it cannot be the paper's scale; it stays available
  for comparison. Measurements: ``experiments/results/smna_noise_reading.md``.
- Sign. The maps are s = d(x with the pixel set to the noise colour) − d(x) (dlib distance to the
  identity's reference; s > 0: that pixel pushes the face away from its identity). Noise that
  moves pixels *toward* the noise colour where the map is above its mean works — subtract
  NoiseLevel·NoiseMap for black noise, add it for white (``sign="toward"``, default). Alg. 3 as
  printed adds it for both colours (``sign="literal"``): for black that moves sensitive pixels
  away from black, which makes faces *easier* to recognise (kept for the ablation).
  ``sign="away"`` is the opposite of ``"toward"`` for either colour.

How the change reaches the face (:func:`chip_change`; measured in
``experiments/results/smna_visibility.md``):

- ``resolution="map"`` (the first implementation): Alg. 3 at 64×64 (the resolution of Alg. 1
  maps and of Table I), the change bilinearly up-sampled to the 150×150 chip. Bilinear
  interpolation of a 64-grid leaves creases at every grid line: blotches, once a large face
  magnifies them again.
- ``resolution="face"`` (default): G(x) is only the *weights*; they are smoothed
  (``smoothing`` = Gaussian σ in 64-map pixels), up-sampled bicubically to the chip and, with
  ``region`` (a (S, S) mask, e.g. the landmark hull), confined to the face; Alg. 3's
  normalisation is then done at the chip's resolution with δ rescaled to the 64-grid
  (L2: ‖change‖₂·64/S = δ, the same RMS change δ/64 as at 64×64).

:mod:`jaxpriv.smna.method` then pastes only the change back into the photo
(:func:`jaxpriv.faces.paste_chip` with ``reference``), so the photo keeps its resolution. All
functions here are pure JAX, jit- and vmap-able; leading axes are batch axes.
"""

from __future__ import annotations

import math
from typing import Literal

import jax
import jax.numpy as jnp

from jaxpriv.smna.smgg import Variables, generator_apply

NoiseColor = Literal["black", "white"]
Sign = Literal["toward", "literal", "away"]
Norm = Literal["l1", "l2"]
Resolution = Literal["map", "face"]
NOISE_COLORS = ("black", "white")
SIGNS = ("toward", "literal", "away")
RESOLUTIONS = ("map", "face")
DEFAULT_RESOLUTION: Resolution = "face"  # the ``smna`` method's defaults (smna_visibility.md)
DEFAULT_SMOOTHING = 1.0


def noise_map(g: jax.Array) -> jax.Array:
    """Alg. 3 line 1: G(x) − Mean(G(x)) per map. ``g`` (..., 64, 64) or (..., 64, 64, 1)."""
    g = jnp.asarray(g, jnp.float32)
    if g.ndim >= 3 and g.shape[-1] == 1:
        g = g[..., 0]
    return g - g.mean(axis=(-2, -1), keepdims=True)


def map_norm(m: jax.Array, norm: Norm = "l2") -> jax.Array:
    """|NoiseMap| of Alg. 3 line 2 over the last two axes: L2 (default) or L1 norm."""
    if norm == "l1":
        return jnp.abs(m).sum(axis=(-2, -1))
    if norm == "l2":
        return jnp.sqrt(jnp.square(m).sum(axis=(-2, -1)))
    raise ValueError(f"unknown norm {norm!r}; use 'l1' or 'l2'")


def direction(noise: NoiseColor, sign: Sign = "toward") -> float:
    """±1 multiplying NoiseLevel·NoiseMap (see the module docstring)."""
    if noise not in NOISE_COLORS:
        raise ValueError(f"noise must be one of {NOISE_COLORS}, got {noise!r}")
    if sign == "literal":
        return 1.0
    toward = -1.0 if noise == "black" else 1.0
    if sign == "toward":
        return toward
    if sign == "away":
        return -toward
    raise ValueError(f"sign must be one of {SIGNS}, got {sign!r}")


def noise_delta(g: jax.Array, noise_level: float | jax.Array, noise: NoiseColor = "black",
                sign: Sign = "toward", norm: Norm = "l2") -> jax.Array:
    """Alg. 3 lines 1–3 without the image: the change ±NoiseLevel·NoiseMap, float (..., 64, 64) in
    grey levels (0..255 scale), with |change| (``norm``) equal to δ = ``noise_level``. A constant
    map gives no change."""
    m = noise_map(g)
    size = map_norm(m, norm)[..., None, None]
    level = jnp.where(size > 0, noise_level / jnp.where(size > 0, size, 1.0), 0.0)
    return direction(noise, sign) * level * m


def add_noise(x: jax.Array, g: jax.Array, noise_level: float | jax.Array,
              noise: NoiseColor = "black", sign: Sign = "toward", norm: Norm = "l2") -> jax.Array:
    """Alg. 3 on 64×64 images: ``x`` (..., 64, 64, 3) in 0..255 (uint8 or float), ``g`` G(x).
    Returns float32 x' clipped to [0, 255] (round it to store as uint8)."""
    delta = noise_delta(g, noise_level, noise, sign, norm)
    return jnp.clip(jnp.asarray(x, jnp.float32) + delta[..., None], 0.0, 255.0)


def upsample_delta(delta: jax.Array, size: int) -> jax.Array:
    """A 64×64 change (..., 64, 64) → (..., size, size), bilinear without antialiasing — the
    resize through which Alg. 1 perturbations reached the recognizer
    (:func:`jaxpriv.smna.sensitivity.to_chip`). Values are interpolated, not rescaled: the
    per-pixel magnitude is unchanged and the L1 over the chip grows with the area."""
    return jax.image.resize(delta, (*delta.shape[:-2], size, size), "linear", antialias=False)


def smooth_map(m: jax.Array, sigma: float) -> jax.Array:
    """Gaussian blur (σ = ``sigma`` pixels, radius ⌈3σ⌉, reflected edges) over the last two axes
    of ``m`` (..., H, W); σ = 0 returns ``m``."""
    if sigma <= 0:
        return jnp.asarray(m, jnp.float32)
    r = int(math.ceil(3 * sigma))
    taps = jnp.exp(-0.5 * (jnp.arange(-r, r + 1, dtype=jnp.float32) / sigma) ** 2)
    taps = taps / taps.sum()
    pad = [(0, 0)] * (m.ndim - 2) + [(r, r), (r, r)]
    x = jnp.pad(jnp.asarray(m, jnp.float32), pad, mode="reflect")
    h, w = m.shape[-2:]
    x = sum(taps[i] * x[..., i:i + h, :] for i in range(2 * r + 1))
    return sum(taps[i] * x[..., :, i:i + w] for i in range(2 * r + 1))


def chip_change(g: jax.Array, size: int, noise_level: float | jax.Array,
                noise: NoiseColor = "black", sign: Sign = "toward", norm: Norm = "l2",
                resolution: Resolution = DEFAULT_RESOLUTION,
                smoothing: float = DEFAULT_SMOOTHING,
                region: jax.Array | None = None) -> jax.Array:
    """The Alg. 3 change on a ``size``-px chip, float (N, size, size) grey levels, from G(x)
    (N, 64, 64[, 1]). ``resolution="map"``: Alg. 3 at 64×64 (map smoothed by ``smoothing``
    first), bilinearly up-sampled; ``"face"``: smoothed map up-sampled bicubically as weights,
    times ``region`` (S, S) if given, normalised at the chip so that its norm on the 64-grid
    (L2: ·64/S, L1: ·(64/S)²) is δ (module docstring)."""
    src = smooth_map(noise_map(g), smoothing) if smoothing > 0 else g
    if resolution == "map":
        if region is not None:
            raise ValueError("a face region needs resolution='face'")
        return upsample_delta(noise_delta(src, noise_level, noise, sign, norm), size)
    if resolution != "face":
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    m = noise_map(src)
    w = jax.image.resize(m, (*m.shape[:-2], size, size), "cubic", antialias=False)
    if region is not None:
        w = w * jnp.asarray(region, jnp.float32)
    grid = (64 / size) if norm == "l2" else (64 / size) ** 2
    size_ = (map_norm(w, norm) * grid)[..., None, None]
    level = jnp.where(size_ > 0, noise_level / jnp.where(size_ > 0, size_, 1.0), 0.0)
    return direction(noise, sign) * level * w


def protect_chips(generator: Variables, chips: jax.Array, noise_level: float | jax.Array,
                  noise: NoiseColor = "black", sign: Sign = "toward", norm: Norm = "l2",
                  resolution: Resolution = DEFAULT_RESOLUTION,
                  smoothing: float = DEFAULT_SMOOTHING, *, image64: jax.Array,
                  region: jax.Array | None = None) -> jax.Array:
    """SMNA on aligned chips: uint8 (N, S, S, 3) → float32 (N, S, S, 3) in [0, 255]
    (= chip + :func:`chip_change` of G(image64), clipped). ``generator`` = G's
    ``{"params", "batch_stats"}``; ``image64`` uint8 (N, 64, 64, 3) is G's input, made from the
    chips as in training (:func:`jaxpriv.smna.sensitivity.to_smna_image`); ``region`` optional
    (N, S, S) weights in [0, 1] (``resolution="face"`` only)."""
    x = jnp.asarray(image64, jnp.float32) / 255.0
    g, _ = generator_apply(generator, x, train=False)
    delta = chip_change(g, chips.shape[-2], noise_level, noise, sign, norm, resolution,
                        smoothing, region)
    return jnp.clip(jnp.asarray(chips, jnp.float32) + delta[..., None], 0.0, 255.0)

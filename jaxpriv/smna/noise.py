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

The noise is computed at 64×64 (the resolution of Alg. 1 maps and of Table I) and applied to a
150×150 dlib chip as a bilinearly up-sampled *delta*; :mod:`jaxpriv.smna.method` then pastes only
that change back into the photo (:func:`jaxpriv.faces.paste_chip` with ``reference``), so the
photo keeps its resolution. All functions here are pure JAX, jit- and vmap-able; leading axes are
batch axes.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from jaxpriv.smna.smgg import Variables, generator_apply

NoiseColor = Literal["black", "white"]
Sign = Literal["toward", "literal", "away"]
Norm = Literal["l1", "l2"]
NOISE_COLORS = ("black", "white")
SIGNS = ("toward", "literal", "away")


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


def protect_chips(generator: Variables, chips: jax.Array, noise_level: float | jax.Array,
                  noise: NoiseColor = "black", sign: Sign = "toward", norm: Norm = "l2",
                  *, image64: jax.Array) -> jax.Array:
    """SMNA on aligned chips: uint8 (N, S, S, 3) → float32 (N, S, S, 3) in [0, 255]
    (= chip + up-sampled Alg. 3 change of G(image64), clipped). ``generator`` = G's
    ``{"params", "batch_stats"}``; ``image64`` uint8 (N, 64, 64, 3) is G's input, made from the
    chips as in training (:func:`jaxpriv.smna.sensitivity.to_smna_image`)."""
    x = jnp.asarray(image64, jnp.float32) / 255.0
    g, _ = generator_apply(generator, x, train=False)
    delta = upsample_delta(noise_delta(g, noise_level, noise, sign, norm), chips.shape[-2])
    return jnp.clip(jnp.asarray(chips, jnp.float32) + delta[..., None], 0.0, 255.0)

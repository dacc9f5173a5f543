"""The Laplace mechanism on a latent code (paper 001, eq. 10–12).

``M(D) = f(D) + Lap(Δf/ε)`` (eq. 12) with ``Lap(x) = exp(−|x|/b) / 2b`` (eq. 11), applied to the
projected latent ``w*`` (eq. 10: ``I_de = G(w* + Lap(Δf/ε))``).

Two modes:

* ``paper`` — Δf is whatever the user gives (the paper does not bound ``w*``; its ε is therefore
  nominal: nothing guarantees ``‖w*(D1) − w*(D2)‖₁ ≤ Δf``).
* ``bounded`` — ``w*`` is first standardised with public, data-independent constants (centre
  ``c`` and per-coordinate scale ``s``: the generator's mean and std of ``w``), ``u = (w − c)/s``,
  and each coordinate of ``u`` is clipped to ``[−C, C]``; the L1 sensitivity of the clipped ``u``
  over *any* two faces is then exactly ``Δf = 2·C·dim`` (eq. 4), so ``u + Lap(Δf/ε)`` is ε-DP with
  the ε reported, and so is ``w̃ = c + s·(u + Lap(Δf/ε))`` (post-processing, like clipping the
  noisy ``u`` back into the box). In ``w`` units the noise of coordinate ``i`` has scale
  ``s_i·Δf/ε``: shaped like the latent distribution, so the same ε keeps more faces face-like.

Optional **truncation** ``ψ ≤ 1`` (StyleGAN's truncation trick) pulls the released code toward the
generator's mean, ``w̃ → c + ψ·(w̃ − c)``: a function of the released value only, so it is
post-processing and leaves ε unchanged; it trades identity detail for more face-like faces.

Randomness only from the given ``jax.random`` key. All functions jit and vmap.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

MODES = ("paper", "bounded")


def laplace_scale(sensitivity: float | jax.Array, epsilon: float | jax.Array) -> jax.Array:
    """Scale ``b = Δf/ε`` of the Laplace noise (eq. 10–12)."""
    return jnp.asarray(sensitivity, jnp.float32) / jnp.asarray(epsilon, jnp.float32)


def laplace_mechanism(key: jax.Array, value: jax.Array, sensitivity: float | jax.Array,
                      epsilon: float | jax.Array) -> jax.Array:
    """``value + Lap(Δf/ε)`` elementwise, i.i.d. (eq. 12)."""
    value = jnp.asarray(value, jnp.float32)
    noise = jax.random.laplace(key, value.shape, jnp.float32)
    return value + laplace_scale(sensitivity, epsilon) * noise


def bounded_sensitivity(clip: float, dim: int) -> float:
    """L1 sensitivity ``Δf = 2·C·dim`` of a ``dim``-vector clipped to a box of half-width ``C``
    (eq. 4: the largest L1 distance between two points of the box)."""
    return 2.0 * float(clip) * int(dim)


def clip_latent(w: jax.Array, clip: float | jax.Array, center: jax.Array | float = 0.0,
                scale: jax.Array | float = 1.0) -> jax.Array:
    """Clip each coordinate of ``w`` to ``[center − C·scale, center + C·scale]``."""
    center = jnp.asarray(center, jnp.float32)
    scale = jnp.asarray(scale, jnp.float32)
    return center + scale * jnp.clip((jnp.asarray(w, jnp.float32) - center) / scale, -clip, clip)


def bounded_laplace_mechanism(key: jax.Array, w: jax.Array, clip: float, epsilon: float,
                              center: jax.Array | float = 0.0, scale: jax.Array | float = 1.0,
                              clip_output: bool = True, truncation: float = 1.0) -> jax.Array:
    """ε-DP release of a latent ``w`` (last axis = the ``dim`` coordinates): standardise
    ``u = (w − center)/scale``, clip ``u`` to ``[−C, C]``, add ``Lap(2·C·dim/ε)`` (eq. 12 with the
    Δf of eq. 4), (post-processing) clip back into the box if ``clip_output``, shrink toward the
    centre by ``truncation`` ψ, and map back to ``w`` units."""
    dim = jnp.shape(w)[-1]
    center = jnp.asarray(center, jnp.float32)
    scale = jnp.asarray(scale, jnp.float32)
    u = jnp.clip((jnp.asarray(w, jnp.float32) - center) / scale, -clip, clip)
    noisy = laplace_mechanism(key, u, bounded_sensitivity(clip, dim), epsilon)
    if clip_output:
        noisy = jnp.clip(noisy, -clip, clip)
    return center + scale * (truncation * noisy)


@dataclasses.dataclass(frozen=True)
class LatentMechanism:
    """A configured mechanism for ``dim``-dimensional latents: ``mode`` ``paper`` (user Δf) or
    ``bounded`` (Δf = 2·C·dim derived from the clip box)."""

    mode: str
    epsilon: float
    dim: int
    sensitivity: float = 1.0  # paper mode: the user's Δf
    clip: float = 1.0  # bounded mode: C
    truncation: float = 1.0  # ψ: post-processing pull toward the centre (1 = none)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        for name in ("epsilon", "sensitivity", "clip"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if not 0 < self.truncation <= 1:
            raise ValueError(f"truncation ψ must be in (0, 1], got {self.truncation}")

    @property
    def delta_f(self) -> float:
        """The Δf the noise is calibrated to."""
        if self.mode == "bounded":
            return bounded_sensitivity(self.clip, self.dim)
        return float(self.sensitivity)

    @property
    def scale(self) -> float:
        """Per-coordinate Laplace scale b = Δf/ε."""
        return self.delta_f / self.epsilon

    def __call__(self, key: jax.Array, w: jax.Array, center: jax.Array | float = 0.0,
                 scale: jax.Array | float = 1.0) -> jax.Array:
        """Release ``w`` (…, dim) through the mechanism (``center``/``scale`` standardise ``w`` in
        bounded mode; in paper mode only ``center`` is used, by the truncation)."""
        if self.mode == "bounded":
            return bounded_laplace_mechanism(key, w, self.clip, self.epsilon, center, scale,
                                             truncation=self.truncation)
        noisy = laplace_mechanism(key, w, self.sensitivity, self.epsilon)
        center = jnp.asarray(center, jnp.float32)
        return center + self.truncation * (noisy - center)

    def describe(self) -> str:
        """One line stating the guarantee honestly."""
        psi = f", then ψ = {self.truncation:g} toward the mean" if self.truncation != 1 else ""
        if self.mode == "bounded":
            return (f"bounded Laplace: each of {self.dim} standardised latent coords "
                    f"(w − mean)/std clipped to ±C = ±{self.clip:g}, Δf = 2·C·dim = "
                    f"{self.delta_f:g}, ε = {self.epsilon:g} (true ε-DP for the latent code), "
                    f"b = {self.scale:.4g} std{psi}")
        return (f"paper Laplace: Δf = {self.delta_f:g} (user-given, not enforced), "
                f"nominal ε = {self.epsilon:g}, b = {self.scale:.4g}{psi}")

"""Mask template network: where is the recognizer sensitive on an aligned face?

The paper's Mask Template Network (Fig. 1) regresses, for an aligned face, the coordinates the
recognizer attends to (eq. 3: f_* = ω_*ᵀ·I; eq. 4: squared loss; eq. 5: + λ‖ω‖²). We regress a
dense 64×64 sensitivity map instead of a few hundred coordinates: the target ``t`` of a chip is
the rank-normalised, smoothed saliency |∂d/∂x| of a recognizer, with d the embedding distance to
the clean face (:func:`recognizer_saliency`). The template M is the top ``fraction`` of the
predicted map; the per-user key shifts the map by a keyed offset and adds keyed uniform jitter
before the threshold (the paper's "offset of * … salt and pepper noise"), so templates differ
between users while staying on sensitive regions (:func:`keyed_template`).

Images: uint8 chips at the edges; float32 in [0, 1] inside the networks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

NET_SIZE = 64  # the networks see 64×64 downsampled chips


def to_net_input(chips01: jax.Array, size: int = NET_SIZE) -> jax.Array:
    """Float ``(N, S, S, 3)`` chips in [0, 1] → ``(N, size, size, 3)`` (antialiased resize)."""
    n = chips01.shape[0]
    return jax.image.resize(chips01, (n, size, size, chips01.shape[-1]), "linear", antialias=True)


class UpConv(nn.Module):
    """×2 upsampling as a sub-pixel convolution (conv to 4·f channels, then depth-to-space):
    the learnable upsampling of a transposed convolution, but fast to differentiate on CPU."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        n, h, w, _ = x.shape
        y = nn.Conv(4 * self.features, (3, 3), name="conv")(x)
        y = y.reshape(n, h, w, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
        return y.reshape(n, 2 * h, 2 * w, self.features)


class TemplateNet(nn.Module):
    """Small VGG-style encoder-decoder (4×4 stride-2 convolutions, as Fig. 1) from a 64×64 chip
    in [0, 1] to 64×64 sensitivity logits ``(N, 64, 64)``."""

    width: int = 16

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w = self.width
        h = x - 0.5
        skips = []
        for i, f in enumerate((w, 2 * w, 4 * w)):  # 64 → 32 → 16 → 8
            h = nn.relu(nn.Conv(f, (3, 3), name=f"enc{i}a")(h))
            skips.append(h)
            h = nn.relu(nn.Conv(f, (4, 4), strides=(2, 2), name=f"enc{i}b")(h))
        h = nn.relu(nn.Conv(8 * w, (3, 3), name="mid")(h))
        for i, f in enumerate((4 * w, 2 * w, w)):  # 8 → 16 → 32 → 64
            h = nn.relu(UpConv(f, name=f"dec{i}")(h))
            h = jnp.concatenate([h, skips[-1 - i]], axis=-1)
            h = nn.relu(nn.Conv(f, (3, 3), name=f"dec{i}b")(h))
        return nn.Conv(1, (1, 1), name="out")(h)[..., 0]


TEMPLATE_NET = TemplateNet()


def template_loss(params: Any, x64: jax.Array, target: jax.Array, l2: float) -> jax.Array:
    """Eq. 4 + eq. 5: mean squared error of sigmoid(prediction) to the target map plus
    ``l2``·‖ω‖² over the kernels."""
    pred = jax.nn.sigmoid(TEMPLATE_NET.apply({"params": params}, x64))
    mse = jnp.mean(jnp.square(pred - target))
    decay = sum(jnp.sum(jnp.square(p)) for p in jax.tree_util.tree_leaves(params) if p.ndim > 1)
    return mse + l2 * decay


def _blur(maps: jax.Array, sigma: float) -> jax.Array:
    """Gaussian blur of ``(N, H, W)`` maps (separable, edge-padded)."""
    r = max(1, int(3 * sigma))
    x = jnp.arange(-r, r + 1, dtype=jnp.float32)
    k = jnp.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    z = jnp.pad(maps, ((0, 0), (r, r), (r, r)), mode="edge")[..., None]
    z = jax.lax.conv_general_dilated(z, k.reshape(-1, 1, 1, 1), (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    z = jax.lax.conv_general_dilated(z, k.reshape(1, -1, 1, 1), (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return z[..., 0]


def rank_normalise(maps: jax.Array) -> jax.Array:
    """Per map, each value's rank / (n − 1): uniform in [0, 1], robust to gradient scale."""
    n, h, w = maps.shape
    flat = maps.reshape(n, -1)
    ranks = jnp.argsort(jnp.argsort(flat, axis=1), axis=1).astype(jnp.float32)
    return (ranks / (h * w - 1)).reshape(n, h, w)


def recognizer_saliency(
    apply: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    chips01: jax.Array,
    key: jax.Array,
    draws: int = 2,
    eps: float = 2.0 / 255.0,
    size: int = NET_SIZE,
    sigma: float = 1.0,
) -> jax.Array:
    """Template-network targets: |∂d/∂x| summed over colour channels, averaged over ``draws``
    points x + δ (δ uniform in ±``eps``; at x itself d is not differentiable), with
    d(x') = ‖f(x') − f(x)‖ (the Dist of eq. 7); area-downsampled to ``size``, blurred by
    ``sigma`` px and rank-normalised. ``chips01``: float ``(N, S, S, 3)`` in [0, 1] at the
    recognizer's input size. Returns float32 ``(N, size, size)`` in [0, 1]."""
    clean = jax.lax.stop_gradient(apply(params, chips01))

    def dist(x: jax.Array) -> jax.Array:
        return jnp.sum(jnp.sqrt(jnp.sum(jnp.square(apply(params, x) - clean), -1) + 1e-12))

    total = jnp.zeros(chips01.shape[:3], jnp.float32)
    for k in jax.random.split(key, draws):
        delta = jax.random.uniform(k, chips01.shape, minval=-eps, maxval=eps)
        g = jax.grad(dist)(jnp.clip(chips01 + delta, 0.0, 1.0))
        total = total + jnp.sum(jnp.abs(g), axis=-1)
    n = chips01.shape[0]
    small = jax.image.resize(total[..., None], (n, size, size, 1), "linear", antialias=True)
    return rank_normalise(_blur(small[..., 0], sigma))


def template_scores(params: Any, chips01: jax.Array) -> jax.Array:
    """Predicted sensitivity in (0, 1) at chip resolution: ``(N, S, S)`` for ``(N, S, S, 3)``."""
    n, s = chips01.shape[0], chips01.shape[1]
    logits = TEMPLATE_NET.apply({"params": params}, to_net_input(chips01))
    up = jax.image.resize(logits[..., None], (n, s, s, 1), "linear")[..., 0]
    return jax.nn.sigmoid(up)


def keyed_template(
    scores: jax.Array, key: jax.Array, fraction: float, offset: int, jitter: float
) -> jax.Array:
    """Binary template M (bool ``(S, S)``) of one chip: the map is shifted by a keyed offset in
    [−``offset``, ``offset``]² px (edges repeated), keyed uniform noise of amplitude ``jitter``
    is added, and the top ``fraction`` of pixels is kept (round(fraction·S²) up to ties)."""
    k_off, k_jit = jax.random.split(key)
    shift = jax.random.randint(k_off, (2,), -offset, offset + 1)
    padded = jnp.pad(scores, offset, mode="edge")  # shift without wrapping around the chip
    moved = jax.lax.dynamic_slice(padded, (offset - shift[0], offset - shift[1]), scores.shape)
    z = moved + jitter * jax.random.uniform(k_jit, scores.shape)
    n = scores.size
    keep = max(1, min(n, int(round(fraction * n))))
    thresh = jnp.sort(z.ravel())[n - keep]
    return z >= thresh

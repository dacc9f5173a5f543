"""MobileStyleGAN (FFHQ 1024×1024; Belousov 2021, arXiv:2104.04767) in Flax, with the weights of
PyPI ``random-face==2021.7.21.1`` (an OpenVINO IR export, read by :mod:`jaxpriv.deid.ir_convert`).

It plays the role of paper 001's pre-trained StyleGAN ``G(·)`` (§2.3, eq. 9–10): a face is a
style vector ``w`` (512) in W space.

* mapping ``z → w``: pixel norm, then 8 dense layers with √2·lrelu(0.2) (equalised-lr scales are
  folded into the exported weights);
* synthesis ``w → image``: a 4×4 constant, one modulated 3×3 convolution, then 7 blocks
  (4→8→…→512) of [modulated inverse-Haar-DWT ×2 upsampling → 2 modulated depthwise-separable
  convolutions + fixed noise + bias + lrelu(0.2)]; the last block's ``to_img`` head gives 12
  wavelet channels (LL and 3 detail bands per RGB channel) at 512², whose inverse DWT is the
  1024² image. The same ``w`` modulates every layer (the export's input is one style).

The export folds each layer's demodulation into its weights (MobileStyleGAN's demodulation uses
a fixed style statistic) and bakes in one noise map per layer, so the image is a deterministic
function of ``w``. It keeps only the last ``to_img`` head: no lower-resolution image comes out of
an earlier block; the LL band of the final wavelet output is the 512² image (the 2×2 average of
the 1024² one) at almost the full cost (``size=512`` below).

Images are NHWC float32 RGB in about [-1, 1]. The weights are distilled from NVIDIA's
StyleGAN2-FFHQ, whose licence is non-commercial; they are read from the installed package at run
time, never copied into this repository and never downloaded.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxpriv.deid import ir_convert

PyTree = Any
STYLE_DIM = 512
CHANNELS = (512, 512, 512, 512, 256, 128, 64)  # output channels of blocks 0…6 (8² … 512²)
HAAR = ir_convert.HAAR
_NHWC = ("NHWC", "HWIO", "NHWC")


class MappingNetwork(nn.Module):
    """``z (B, 512) → w (B, 512)``."""

    n_layers: int = 8

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        x = z * jax.lax.rsqrt(jnp.mean(z**2, axis=-1, keepdims=True) + 1e-8)
        for i in range(self.n_layers):
            x = jax.nn.leaky_relu(nn.Dense(STYLE_DIM, name=f"layers_{i}")(x), 0.2) * math.sqrt(2)
        return x


def depthwise_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Depthwise k×k convolution (cross-correlation, zero "SAME" padding) of NHWC ``x`` with
    ``kernel`` (k, k, 1, C), as a sum of k² shifted products: on XLA CPU ≈ 7× faster (forward
    and gradient) than ``conv_general_dilated`` with ``feature_group_count=C``."""
    k, (h, w) = kernel.shape[0], x.shape[1:3]
    r = k // 2
    padded = jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)))
    return sum(padded[:, i:i + h, j:j + w, :] * kernel[i, j, 0]
               for i in range(k) for j in range(k))


class StyledConv(nn.Module):
    """Modulated convolution (input scaled by the style, 1/√(C_in·k²)) + noise + bias + lrelu.
    ``depthwise``: a k×k depthwise then a 1×1 pointwise convolution (MobileStyleGAN), else one
    dense k×k convolution. Demodulation is folded into the weights by the export."""

    features: int
    depthwise: bool = True
    kernel: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        _, h, wd, cin = x.shape
        k, init = self.kernel, nn.initializers.normal(1.0)
        style = nn.Dense(cin, name="modulation")(w) / math.sqrt(cin * k * k)
        x = x * style[:, None, None, :]
        if self.depthwise:
            x = depthwise_conv(x, self.param("weight_dw", init, (k, k, 1, cin)))
            x = x @ self.param("weight_pw", init, (cin, self.features))
        else:
            x = jax.lax.conv_general_dilated(
                x, self.param("weight", init, (k, k, cin, self.features)), (1, 1), "SAME",
                dimension_numbers=_NHWC)
        x = x + self.param("noise", nn.initializers.zeros, (h, wd))[None, :, :, None]
        return jax.nn.leaky_relu(x + self.param("bias", nn.initializers.zeros, (self.features,)),
                                 0.2)


def idwt_haar(low: jax.Array, high: jax.Array) -> jax.Array:
    """Inverse one-level Haar DWT: ``low`` (B, H, W, C) and ``high`` (B, H, W, C, 3) bands →
    (B, 2H, 2W, C), the convention of the export's transposed convolutions (filters
    (1, 1)/√2 and (1, −1)/√2; bands 0 and 2 take the high-pass filter along rows)."""

    def interleave(a: jax.Array, b: jax.Array, axis: int) -> jax.Array:
        shape = list(a.shape)
        shape[axis] *= 2
        return jnp.stack([a, b], axis=axis + 1).reshape(shape)

    b0, b1, b2 = high[..., 0], high[..., 1], high[..., 2]
    a = interleave(HAAR * (low + b0), HAAR * (low - b0), 1)
    b = interleave(HAAR * (b1 + b2), HAAR * (b1 - b2), 1)
    return interleave(HAAR * (a + b), HAAR * (a - b), 2)


def _split_bands(x: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """Channels [LL of n | n × 3 detail bands, band-minor] → (low, high (…, n, 3))."""
    return x[..., :n], x[..., n:].reshape(*x.shape[:-1], n, 3)


class IDWTUp(nn.Module):
    """×2 upsampling: modulate, read the channels as Haar bands (C/4 each), inverse DWT."""

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        c = x.shape[-1]
        x = x * nn.Dense(c, name="modulation")(w)[:, None, None, :]
        return idwt_haar(*_split_bands(x, c // 4))


class ToImage(nn.Module):
    """Modulated 1×1 convolution to 12 wavelet channels (no demodulation, no activation)."""

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        x = x * (nn.Dense(cin, name="modulation")(w) / math.sqrt(cin))[:, None, None, :]
        weight = self.param("weight", nn.initializers.normal(1.0), (cin, 12))
        return x @ weight + self.param("bias", nn.initializers.zeros, (12,))


class SynthesisBlock(nn.Module):
    """IDWT upsampling then two styled depthwise-separable convolutions (+ ``to_img``)."""

    features: int
    to_img: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        x = IDWTUp(name="up")(x, w)
        x = StyledConv(self.features, name="conv1")(x, w)
        x = StyledConv(self.features, name="conv2")(x, w)
        return ToImage(name="to_img")(x, w) if self.to_img else x


class SynthesisNetwork(nn.Module):
    """``w (B, 512) → image (B, 1024, 1024, 3)``; ``size=512``: LL band / 2, (B, 512, 512, 3)."""

    channels: tuple[int, ...] = CHANNELS

    @nn.compact
    def __call__(self, w: jax.Array, size: int = 1024) -> jax.Array:
        const = self.param("input", nn.initializers.normal(1.0), (4, 4, STYLE_DIM))
        x = jnp.broadcast_to(const, (w.shape[0], *const.shape))
        x = StyledConv(STYLE_DIM, depthwise=False, name="conv1")(x, w)
        for i, c in enumerate(self.channels):
            x = SynthesisBlock(c, to_img=i == len(self.channels) - 1, name=f"layers_{i}")(x, w)
        low, high = _split_bands(x, 3)
        if size == 2 * x.shape[1]:
            return idwt_haar(low, high)
        if size == x.shape[1]:
            return low / 2.0  # Haar LL / 2 = mean of each 2×2 block of the full image
        raise ValueError(f"size must be {2 * x.shape[1]} or {x.shape[1]}, got {size}")


def mapping(params: PyTree, z: jax.Array) -> jax.Array:
    """Style ``w`` (B, 512) of latent ``z`` (B, 512)."""
    return MappingNetwork().apply({"params": params["mapping"]}, z)


def synthesis(params: PyTree, w: jax.Array, size: int = 1024) -> jax.Array:
    """Face image (B, size, size, 3), RGB in about [-1, 1], of style ``w`` (B, 512)."""
    return SynthesisNetwork().apply({"params": params["synthesis"]}, w, size)


@functools.cache
def load_params() -> PyTree:
    """MobileStyleGAN's params converted from the installed ``random-face`` package (cached).
    Raises :class:`~jaxpriv.errors.JaxprivError` if the package or a file is missing."""
    from jaxpriv.checkpoints import random_face_file

    maps = ir_convert.read_ir(random_face_file("MappingNetwork.xml"),
                              random_face_file("MappingNetwork.bin"))
    synth = ir_convert.read_ir(random_face_file("SynthesisNetwork.xml"),
                               random_face_file("SynthesisNetwork.bin"))
    params = ir_convert.to_flax(ir_convert.mapping_params(maps), ir_convert.synthesis_params(synth))
    return jax.tree_util.tree_map(jnp.asarray, params)

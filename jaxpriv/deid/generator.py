"""A small style-based face generator (StyleGAN2-like) and its discriminator, in Flax.

Paper 001 (§2.3, eq. 9–10, 18–20) uses a pre-trained StyleGAN as ``G(·)``: the face is projected
to a latent ``w*`` and the de-identified face is ``G(w* + Lap(Δf/ε))``. No StyleGAN weights exist
on these machines, so this module defines a compact generator with the same ingredients, trained
here (``experiments/face_gan.py``):

* mapping network ``z → w`` (pixel-normalised ``z``, equalised-lr MLP with lr multiplier 0.01);
* synthesis from a learned 4×4 constant, two modulated 3×3 convolutions per resolution with weight
  demodulation (implemented as input scaling → shared convolution → output scaling, which equals
  the per-sample demodulated weight), bilinear ×2 upsampling, skip ``toRGB`` outputs; no noise
  inputs (the output is a deterministic function of ``w``);
* a residual discriminator with minibatch standard deviation.

Images are NHWC float32 in [-1, 1] (``to_unit`` maps to [0, 1], ``to_uint8`` to uint8 RGB).
The generator's input is either ``w`` of shape ``(B, w_dim)`` (broadcast to every layer: the
"W" space used for projection and noise) or ``(B, num_ws, w_dim)`` ("W+").
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv.checkpoints import load_model, save_model
from jaxpriv.errors import JaxprivError

SQRT2 = math.sqrt(2.0)


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of :class:`Generator` / :class:`Discriminator` (channels per resolution
    ``min(channel_max, channel_base // res)``)."""

    resolution: int = 64
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 4
    mapping_lr_mul: float = 0.01
    channel_base: int = 2048
    channel_max: int = 128
    d_channel_base: int = 2048
    d_channel_max: int = 128
    mbstd_group: int = 4

    def __post_init__(self) -> None:
        log = math.log2(self.resolution)
        if self.resolution < 8 or log != int(log):
            raise ValueError(f"resolution must be a power of two ≥ 8, got {self.resolution}")

    @property
    def resolutions(self) -> list[int]:
        return [2**i for i in range(2, int(math.log2(self.resolution)) + 1)]

    def channels(self, res: int) -> int:
        return int(min(self.channel_max, self.channel_base // res))

    def d_channels(self, res: int) -> int:
        return int(min(self.d_channel_max, self.d_channel_base // res))

    @property
    def num_ws(self) -> int:
        """Number of per-layer styles (modulated convs + the last toRGB)."""
        return 2 * len(self.resolutions)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_64() -> GeneratorConfig:
    """The shipped 64×64 configuration (G widths 128, 96, 48, 24, 12 at 4…64 px; D 8…128;
    ≈ 0.6 M parameters each), sized for a 2-core CPU."""
    return GeneratorConfig(resolution=64, channel_base=768, d_channel_base=512)


def config_128() -> GeneratorConfig:
    """The 128×128 configuration (G widths 128, 128, 96, 48, 24, 12 at 4…128 px)."""
    return GeneratorConfig(resolution=128, channel_base=1536, d_channel_base=1024)


def lrelu(x: jax.Array) -> jax.Array:
    """Leaky ReLU (0.2) with StyleGAN's gain √2."""
    return jax.nn.leaky_relu(x, 0.2) * SQRT2


class EqualDense(nn.Module):
    """Dense layer with equalised learning rate (weights N(0, 1/lr_mul), scaled at run time)."""

    features: int
    lr_mul: float = 1.0
    bias_init: float = 0.0
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        w = self.param("kernel", nn.initializers.normal(1.0 / self.lr_mul),
                       (fan_in, self.features))
        y = x @ (w * (self.lr_mul / math.sqrt(fan_in)))
        if self.use_bias:
            b = self.param("bias", nn.initializers.constant(self.bias_init / self.lr_mul),
                           (self.features,))
            y = y + b * self.lr_mul
        return y


class EqualConv(nn.Module):
    """Convolution (SAME padding, stride 1) with equalised learning rate."""

    features: int
    kernel: int = 3
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        w = self.param("kernel", nn.initializers.normal(1.0),
                       (self.kernel, self.kernel, cin, self.features))
        y = jax.lax.conv_general_dilated(
            x, w / math.sqrt(cin * self.kernel**2), (1, 1), "SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


def upsample2(x: jax.Array) -> jax.Array:
    """Bilinear ×2 upsampling of NHWC ``x``."""
    b, h, w, c = x.shape
    return jax.image.resize(x, (b, 2 * h, 2 * w, c), "bilinear")


def downsample2(x: jax.Array) -> jax.Array:
    """2×2 average pooling of NHWC ``x``."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


class ModulatedConv(nn.Module):
    """Modulated convolution with optional demodulation (StyleGAN2).

    ``y = conv(x · s, W) · d`` with style ``s = A(w)`` per input channel and
    ``d = 1/√(Σ_{k,k,in} (W·s)² + 1e-8)`` per output channel — identical to convolving with the
    per-sample weight ``W·s·d`` but without grouped convolutions."""

    features: int
    kernel: int = 3
    demodulate: bool = True
    upsample: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        s = EqualDense(cin, bias_init=1.0, name="affine")(w)  # (B, cin)
        weight = self.param("kernel", nn.initializers.normal(1.0),
                            (self.kernel, self.kernel, cin, self.features))
        weight = weight / math.sqrt(cin * self.kernel**2)
        if self.upsample:
            x = upsample2(x)
        y = jax.lax.conv_general_dilated(
            x * s[:, None, None, :], weight, (1, 1), "SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.demodulate:
            d = jax.lax.rsqrt((s**2) @ jnp.sum(weight**2, axis=(0, 1)) + 1e-8)  # (B, out)
            y = y * d[:, None, None, :]
        return y


class StyleLayer(nn.Module):
    """Modulated 3×3 conv + bias + leaky ReLU."""

    features: int
    upsample: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        y = ModulatedConv(self.features, 3, True, self.upsample, name="conv")(x, w)
        return lrelu(y + self.param("bias", nn.initializers.zeros, (self.features,)))


class ToRGB(nn.Module):
    """Modulated 1×1 conv to RGB, no demodulation."""

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        y = ModulatedConv(3, 1, False, False, name="conv")(x, w)
        return y + self.param("bias", nn.initializers.zeros, (3,))


class MappingNetwork(nn.Module):
    """``z → w``: pixel norm, then ``mapping_layers`` equalised-lr dense layers (lr ×0.01)."""

    config: GeneratorConfig

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        c = self.config
        x = z * jax.lax.rsqrt(jnp.mean(z**2, axis=-1, keepdims=True) + 1e-8)
        for i in range(c.mapping_layers):
            x = lrelu(EqualDense(c.w_dim, lr_mul=c.mapping_lr_mul, name=f"fc{i}")(x))
        return x


class SynthesisNetwork(nn.Module):
    """``w → image``: constant 4×4 input, two style layers per resolution, skip toRGB."""

    config: GeneratorConfig

    @nn.compact
    def __call__(self, w: jax.Array) -> jax.Array:
        c = self.config
        if w.ndim == 2:
            w = jnp.broadcast_to(w[:, None, :], (w.shape[0], c.num_ws, w.shape[-1]))
        b = w.shape[0]
        const = self.param("const", nn.initializers.normal(1.0), (4, 4, c.channels(4)))
        x = jnp.broadcast_to(const[None], (b, *const.shape))
        x = StyleLayer(c.channels(4), name="b4_conv")(x, w[:, 0])
        rgb = ToRGB(name="b4_torgb")(x, w[:, 1])
        i = 1
        for res in c.resolutions[1:]:
            x = StyleLayer(c.channels(res), upsample=True, name=f"b{res}_conv0")(x, w[:, i])
            x = StyleLayer(c.channels(res), name=f"b{res}_conv1")(x, w[:, i + 1])
            rgb = upsample2(rgb) + ToRGB(name=f"b{res}_torgb")(x, w[:, i + 2])
            i += 2
        return rgb


class Generator(nn.Module):
    """Mapping + synthesis. ``__call__(z)`` → images; ``mapping(z)`` → w; ``synthesis(w)`` →
    images (NHWC, [-1, 1])."""

    config: GeneratorConfig

    def setup(self) -> None:
        self.mapping_net = MappingNetwork(self.config)
        self.synthesis_net = SynthesisNetwork(self.config)

    def mapping(self, z: jax.Array) -> jax.Array:
        return self.mapping_net(z)

    def synthesis(self, w: jax.Array) -> jax.Array:
        return self.synthesis_net(w)

    def __call__(self, z: jax.Array) -> jax.Array:
        return self.synthesis_net(self.mapping_net(z))


def minibatch_stddev(x: jax.Array, group: int) -> jax.Array:
    """Append one channel: mean over features of the std over groups of ``group`` consecutive
    samples (consecutive, so groups stay inside a data-parallel shard)."""
    b, h, w, c = x.shape
    g = math.gcd(group, b)
    y = x.reshape(b // g, g, h, w, c)
    y = jnp.sqrt(jnp.var(y, axis=1) + 1e-8).mean(axis=(1, 2, 3))  # (b/g,)
    y = jnp.broadcast_to(jnp.repeat(y, g)[:, None, None, None], (b, h, w, 1))
    return jnp.concatenate([x, y], axis=-1)


class Discriminator(nn.Module):
    """Residual discriminator: fromRGB, per resolution conv → pool → conv with a pooled 1×1
    skip, then minibatch std, conv, dense, dense → one logit per image."""

    config: GeneratorConfig

    @nn.compact
    def __call__(self, img: jax.Array) -> jax.Array:
        c = self.config
        res = img.shape[1]
        x = lrelu(EqualConv(c.d_channels(res), 1, name="fromrgb")(img))
        while res > 4:
            cout = c.d_channels(res // 2)
            y = lrelu(EqualConv(c.d_channels(res), 3, name=f"b{res}_conv0")(x))
            y = downsample2(y)
            y = lrelu(EqualConv(cout, 3, name=f"b{res}_conv1")(y))
            skip = EqualConv(cout, 1, use_bias=False, name=f"b{res}_skip")(downsample2(x))
            x = (y + skip) / SQRT2
            res //= 2
        x = minibatch_stddev(x, c.mbstd_group)
        x = lrelu(EqualConv(c.d_channels(4), 3, name="b4_conv")(x))
        x = lrelu(EqualDense(c.d_channels(4), name="b4_fc")(x.reshape(x.shape[0], -1)))
        return EqualDense(1, name="out")(x)[:, 0]


def init_generator(key: jax.Array, config: GeneratorConfig) -> Any:
    """Fresh generator parameters."""
    return Generator(config).init(key, jnp.zeros((1, config.z_dim)))["params"]


def init_discriminator(key: jax.Array, config: GeneratorConfig) -> Any:
    """Fresh discriminator parameters."""
    r = config.resolution
    return Discriminator(config).init(key, jnp.zeros((config.mbstd_group, r, r, 3)))["params"]


def mapping(params: Any, config: GeneratorConfig, z: jax.Array) -> jax.Array:
    """``w = f(z)`` (B, w_dim)."""
    return Generator(config).apply({"params": params}, z, method=Generator.mapping)


def synthesis(params: Any, config: GeneratorConfig, w: jax.Array) -> jax.Array:
    """``G(w)``: NHWC float32 images in about [-1, 1] (eq. 10's generator)."""
    return Generator(config).apply({"params": params}, w, method=Generator.synthesis)


def generate(params: Any, config: GeneratorConfig, z: jax.Array) -> jax.Array:
    """``G(f(z))`` for latent noise ``z`` (B, z_dim)."""
    return Generator(config).apply({"params": params}, z)


def discriminate(params: Any, config: GeneratorConfig, img: jax.Array) -> jax.Array:
    """Discriminator logits (B,) for NHWC images in [-1, 1]."""
    return Discriminator(config).apply({"params": params}, img)


def w_statistics(params: Any, config: GeneratorConfig, key: jax.Array,
                 n: int = 10000) -> tuple[jax.Array, jax.Array]:
    """Mean and per-coordinate std of ``w = f(z)`` over ``n`` samples of ``z``."""
    w = mapping(params, config, jax.random.normal(key, (n, config.z_dim)))
    return w.mean(0), w.std(0)


def to_unit(img: jax.Array) -> jax.Array:
    """[-1, 1] → [0, 1] (clipped)."""
    return jnp.clip((img + 1.0) * 0.5, 0.0, 1.0)


def from_uint8(img: np.ndarray | jax.Array) -> jax.Array:
    """uint8 RGB → float32 [-1, 1]."""
    return jnp.asarray(img, jnp.float32) / 127.5 - 1.0


def to_uint8(img: jax.Array) -> np.ndarray:
    """[-1, 1] float → uint8 RGB (rounded, clipped)."""
    return np.asarray(jnp.round(to_unit(img) * 255.0)).astype(np.uint8)


def param_count(params: Any) -> int:
    """Number of scalars in a parameter tree."""
    return int(sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(params)))


# ---------------------------------------------------------------- shipped checkpoint format

CHECKPOINT_FORMAT = "jaxpriv.deid.generator/1"


@dataclasses.dataclass
class LoadedGenerator:
    """A generator ready for projection and sampling: EMA parameters, architecture, and the
    mean / per-coordinate std of ``w = f(z)``."""

    params: Any
    config: GeneratorConfig
    w_avg: jax.Array
    w_std: jax.Array
    info: dict[str, Any]


def save_generator(path: str | os.PathLike[str], params: Any, config: GeneratorConfig,
                   w_avg: jax.Array, w_std: jax.Array, info: dict[str, Any] | None = None,
                   ) -> None:
    """Write a model directory (:func:`jaxpriv.checkpoints.save_model`): ``config.json``
    (architecture + ``info``) and ``params/`` = ``{"g_ema": params, "w_avg": (w_dim,),
    "w_std": (w_dim,)}``."""
    tree = {"g_ema": params, "w_avg": np.asarray(w_avg, np.float32),
            "w_std": np.asarray(w_std, np.float32)}
    save_model(path, tree, {"format": CHECKPOINT_FORMAT, "generator": config.to_dict(),
                            "info": info or {}})


def load_generator(path: str | os.PathLike[str]) -> LoadedGenerator:
    """Read a checkpoint written by :func:`save_generator` (parameters as NumPy arrays on the
    host, as the projection and sampling code has always received them)."""
    path = Path(path).absolute()
    if not (path / "config.json").is_file() or not (path / "params").is_dir():
        raise JaxprivError(f"{path}: not a face-generator checkpoint (needs config.json and "
                           "params/; see ckpt/face_gan_64/README.md)")

    def abstract(meta: dict[str, Any]) -> Any:
        config = GeneratorConfig(**meta["generator"])
        return {"g_ema": jax.eval_shape(lambda: init_generator(jax.random.key(0), config)),
                "w_avg": jax.ShapeDtypeStruct((config.w_dim,), jnp.float32),
                "w_std": jax.ShapeDtypeStruct((config.w_dim,), jnp.float32)}

    tree, meta = load_model(path, CHECKPOINT_FORMAT, abstract)
    return LoadedGenerator(jax.device_get(tree["g_ema"]), GeneratorConfig(**meta["generator"]),
                           jnp.asarray(tree["w_avg"]), jnp.asarray(tree["w_std"]),
                           meta.get("info", {}))

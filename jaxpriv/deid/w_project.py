"""Project FFHQ-aligned faces into MobileStyleGAN's W space (paper 001, eq. 9).

``w* = argmin_w LPIPS(↓G(w), I) + λ_pix · mean((↓G(w) − I)²)``, with ``↓`` the mean of 4×4 pixel
blocks (the 1024² render at 256², where the target crop is taken) and LPIPS the VGG16 perceptual
distance (:func:`jaxpriv.deid.vgg16.lpips`: the paper's VGG16 features, weighted as LPIPS weighs
them). ``w`` is searched in standardised units ``u = (w − mean)/std`` (the generator's public
statistics, :func:`w_stats`) from ``u = 0`` (the mean face) by Adam for a fixed number of steps,
one jitted ``lax.scan``, ``vmap``-ped over the faces of a photo. Images: NHWC RGB in [-1, 1].
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpriv.deid import mobilestylegan as msg
from jaxpriv.deid import vgg16

PyTree = Any
RENDER_SIZE = 1024
STATS_SAMPLES = 10_000
STATS_SEED = 0


@dataclasses.dataclass(frozen=True)
class WProjectConfig:
    """Settings of the search for ``w*`` (eq. 9)."""

    steps: int = 3
    lr: float = 0.3  # Adam step, in std units of w
    lambda_pixel: float = 1.0
    loss_size: int = 256  # side of the images the loss compares


@functools.cache
def w_stats(n: int = STATS_SAMPLES, seed: int = STATS_SEED) -> tuple[jax.Array, jax.Array]:
    """The generator's public per-coordinate mean and std of ``w``: the mapping network on ``n``
    fixed standard-normal ``z`` drawn from ``jax.random.key(seed)`` (no data, deterministic)."""
    params = msg.load_params()
    z = jax.random.normal(jax.random.key(seed), (n, msg.STYLE_DIM), jnp.float32)
    w = jax.jit(msg.mapping)(params, z)
    return jnp.mean(w, 0), jnp.std(w, 0)


def downsample(images: jax.Array, size: int) -> jax.Array:
    """Mean of ``k×k`` pixel blocks, ``k = side/size`` (an integer)."""
    b, h, w, c = images.shape
    k = h // size
    if k * size != h:
        raise ValueError(f"{h} px is not a multiple of {size}")
    return images.reshape(b, size, k, size, k, c).mean((2, 4))


def to_uint8(images: jax.Array) -> np.ndarray:
    """[-1, 1] images → uint8."""
    return np.asarray(jnp.clip(jnp.round((images + 1.0) * 127.5), 0, 255)).astype(np.uint8)


def from_uint8(images: np.ndarray) -> jax.Array:
    """uint8 images → [-1, 1]."""
    return jnp.asarray(images, jnp.float32) / 127.5 - 1.0


@dataclasses.dataclass(frozen=True, eq=False)
class WProjector:
    """``project(targets)`` → ``(w*, loss per step)``; see :func:`make_w_projector`. The loss
    of step ``i`` is that of ``w`` after ``i`` steps."""

    fn: Callable[..., tuple[jax.Array, jax.Array]]
    args: tuple[Any, ...]  # the weights and statistics, passed (not closed over: no folding)
    config: WProjectConfig

    def __call__(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 FFHQ crops (B, loss_size, loss_size, 3) → w* (B, 512), losses (B, steps)."""
        w, losses = self.trace(targets)
        return w[:, -1], losses

    def trace(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As calling it, with ``w`` after 0, 1, …, steps steps: (B, steps + 1, 512)."""
        w, losses = self.fn(*self.args, from_uint8(targets))
        return np.asarray(w), np.asarray(losses)


def make_w_projector(config: WProjectConfig = WProjectConfig()) -> WProjector:
    """The jitted, vmapped projector of eq. 9 for MobileStyleGAN (weights from random-face)."""
    opt = optax.adam(config.lr)

    def project_one(params: PyTree, vgg: PyTree, heads: list[jax.Array], mean: jax.Array,
                    std: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
        t_feats = jax.lax.stop_gradient(vgg16.features(vgg, target[None]))

        def loss_fn(u: jax.Array) -> jax.Array:
            img = downsample(msg.synthesis(params, (mean + std * u)[None], RENDER_SIZE),
                             config.loss_size)
            percept = vgg16.lpips_from_features(vgg16.features(vgg, img), t_feats, heads)[0]
            return percept + config.lambda_pixel * jnp.mean((img[0] - target) ** 2)

        def step(carry: tuple[jax.Array, Any], _: None) -> tuple[tuple[jax.Array, Any],
                                                               jax.Array]:
            u, s = carry
            loss, g = jax.value_and_grad(loss_fn)(u)
            upd, s = opt.update(g, s, u)
            return (optax.apply_updates(u, upd), s), (loss, u)

        u0 = jnp.zeros_like(mean)
        (u, _), (losses, us) = jax.lax.scan(step, (u0, opt.init(u0)), None, length=config.steps)
        return mean + std * jnp.concatenate([us, u[None]]), losses

    fn = jax.jit(jax.vmap(project_one, in_axes=(None, None, None, None, None, 0)))
    return WProjector(fn, (msg.load_params(), *vgg16.load_lpips(), *w_stats()), config)


@functools.cache
def _render_fn(size: int) -> Callable[[PyTree, jax.Array], jax.Array]:
    return jax.jit(lambda p, w: msg.synthesis(p, w, size))


def render(w: np.ndarray | jax.Array, size: int = RENDER_SIZE) -> np.ndarray:
    """``G(w)`` for styles (B, 512) as uint8 (B, size, size, 3) (``size`` 1024 or 512)."""
    return to_uint8(_render_fn(size)(msg.load_params(), jnp.asarray(w, jnp.float32)))

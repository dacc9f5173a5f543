"""Training pieces for the face generator: state, losses, augmentation and the step. The loop
(checkpoints, data order, logging, sharded jit) is ``experiments/face_gan.py`` on top of the shared
:mod:`jaxpriv.train`.

Recipe (StyleGAN2 / StyleGAN2-ADA style, sized for a 2-core CPU):
non-saturating logistic loss; lazy R1 penalty on reals every ``r1_interval`` steps (weight
``γ/2 · interval``); Adam(lr, β1 = 0, β2 = 0.99) with StyleGAN2's lazy-regularisation correction
for D; EMA of the generator with a ramped half-life; differentiable augmentation (DiffAugment:
translation, colour, cutout — applied to reals and fakes alike, for D and for G) and x-flips of
the data.

The state is a plain dict pytree ``{step, g, d, g_ema, g_opt, d_opt}`` so orbax saves it as is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding

from jaxpriv.deid.generator import (
    GeneratorConfig,
    discriminate,
    generate,
    init_discriminator,
    init_generator,
)

State = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one GAN training run."""

    batch_size: int = 32
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    beta2: float = 0.99
    r1_gamma: float = 0.1
    r1_interval: int = 16
    ema_nimg: float = 10_000.0  # EMA half-life in images
    ema_rampup: float = 0.05  # half-life ≤ rampup · images seen so far
    augment: str = "translation,color,cutout"  # DiffAugment policy ("" = none)
    xflip: bool = True


def make_optimizers(tc: TrainConfig) -> tuple[optax.GradientTransformation,
                                              optax.GradientTransformation]:
    """Adam for G and D; D's lr and β2 corrected for lazy R1 (StyleGAN2 Appendix B)."""
    c = tc.r1_interval / (tc.r1_interval + 1)
    g_opt = optax.adam(tc.g_lr, b1=0.0, b2=tc.beta2, eps=1e-8)
    d_opt = optax.adam(tc.d_lr * c, b1=0.0, b2=tc.beta2**c, eps=1e-8)
    return g_opt, d_opt


def init_state(key: jax.Array, gc: GeneratorConfig, tc: TrainConfig) -> State:
    """Fresh training state (step 0)."""
    kg, kd = jax.random.split(key)
    g = init_generator(kg, gc)
    d = init_discriminator(kd, gc)
    g_opt, d_opt = make_optimizers(tc)
    return {"step": jnp.zeros((), jnp.int32), "g": g, "d": d,
            "g_ema": jax.tree_util.tree_map(jnp.copy, g),
            "g_opt": g_opt.init(g), "d_opt": d_opt.init(d)}


# ---------------------------------------------------------------- DiffAugment (own implementation)


def _translate(key: jax.Array, x: jax.Array, ratio: float = 0.125) -> jax.Array:
    """Shift each image by up to ``ratio``·size pixels (integer, zero fill)."""
    b, h, w, _ = x.shape
    ph, pw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shifts = jax.random.randint(key, (b, 2), -jnp.array([ph, pw]), jnp.array([ph, pw]) + 1)
    padded = jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))

    def one(img: jax.Array, s: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(img, (ph - s[0], pw - s[1], 0), (h, w, img.shape[-1]))

    return jax.vmap(one)(padded, shifts)


def _color(key: jax.Array, x: jax.Array) -> jax.Array:
    """Random brightness (±0.5), saturation (×[0, 2]) and contrast (×[0.5, 1.5]) on [-1, 1]
    images (the amounts are those of DiffAugment on [-1, 1] data)."""
    b = x.shape[0]
    k1, k2, k3 = jax.random.split(key, 3)
    x = x + (jax.random.uniform(k1, (b, 1, 1, 1)) - 0.5)
    mean = x.mean(axis=3, keepdims=True)
    x = (x - mean) * (jax.random.uniform(k2, (b, 1, 1, 1)) * 2.0) + mean
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return (x - mean) * (jax.random.uniform(k3, (b, 1, 1, 1)) + 0.5) + mean


def _cutout(key: jax.Array, x: jax.Array, ratio: float = 0.5) -> jax.Array:
    """Zero one random square of side ``ratio``·size per image."""
    b, h, w, _ = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    k1, k2 = jax.random.split(key)
    cy = jax.random.randint(k1, (b, 1, 1), 0, h + (1 - ch % 2))
    cx = jax.random.randint(k2, (b, 1, 1), 0, w + (1 - cw % 2))
    yy = jnp.arange(h)[None, :, None]
    xx = jnp.arange(w)[None, None, :]
    inside = (jnp.abs(yy - cy) < ch // 2 + 0.5) & (jnp.abs(xx - cx) < cw // 2 + 0.5)
    return x * (~inside)[..., None]


def diff_augment(key: jax.Array, x: jax.Array, policy: str) -> jax.Array:
    """Differentiable augmentation of NHWC [-1, 1] images with a comma-separated policy
    (``translation``, ``color``, ``cutout``)."""
    ops: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
        "color": _color, "translation": _translate, "cutout": _cutout}
    for i, name in enumerate(p for p in policy.split(",") if p):
        x = ops[name](jax.random.fold_in(key, i), x)
    return x


# ---------------------------------------------------------------- losses and the step


def ema_beta(step: jax.Array, tc: TrainConfig) -> jax.Array:
    """EMA decay for this step: half-life ``min(ema_nimg, rampup · images seen)``."""
    nimg = (step.astype(jnp.float32) + 1.0) * tc.batch_size
    half = jnp.minimum(tc.ema_nimg, tc.ema_rampup * nimg)
    return 0.5 ** (tc.batch_size / jnp.maximum(half, 1e-8))


def train_step(state: State, reals: jax.Array, key: jax.Array, *, gc: GeneratorConfig,
               tc: TrainConfig, do_r1: bool,
               batch_sharding: NamedSharding | None = None) -> tuple[State, dict[str, jax.Array]]:
    """One D update then one G update on ``reals`` (NHWC [-1, 1]); R1 if ``do_r1``.
    ``batch_sharding`` (if given) is imposed on the latent batches so fakes are computed
    data-parallel like the reals."""
    g_opt, d_opt = make_optimizers(tc)
    b = reals.shape[0]
    k_flip, k_zd, k_zg, k_ad, k_ar, k_ag = jax.random.split(key, 6)
    if tc.xflip:
        flip = jax.random.bernoulli(k_flip, 0.5, (b, 1, 1, 1))
        reals = jnp.where(flip, reals[:, :, ::-1], reals)

    def aug(k: jax.Array, x: jax.Array) -> jax.Array:
        return diff_augment(k, x, tc.augment) if tc.augment else x

    def latents(k: jax.Array) -> jax.Array:
        z = jax.random.normal(k, (b, gc.z_dim))
        return z if batch_sharding is None else jax.lax.with_sharding_constraint(z, batch_sharding)

    fakes = generate(state["g"], gc, latents(k_zd))
    fakes = jax.lax.stop_gradient(fakes)

    def d_loss(d: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        lf = discriminate(d, gc, aug(k_ad, fakes))
        lr = discriminate(d, gc, aug(k_ar, reals))
        loss = jax.nn.softplus(lf).mean() + jax.nn.softplus(-lr).mean()
        aux = {"d_real": lr.mean(), "d_fake": lf.mean(), "loss_d": loss}
        if do_r1:
            def real_score(x: jax.Array) -> jax.Array:
                return discriminate(d, gc, aug(k_ar, x)).sum()

            grad = jax.grad(real_score)(reals)
            r1 = jnp.sum(grad**2, axis=(1, 2, 3)).mean()
            loss = loss + r1 * (tc.r1_gamma / 2) * tc.r1_interval
            aux["r1"] = r1
        return loss, aux

    d_grads, d_aux = jax.grad(d_loss, has_aux=True)(state["d"])
    d_updates, d_opt_state = d_opt.update(d_grads, state["d_opt"], state["d"])
    d_new = optax.apply_updates(state["d"], d_updates)

    def g_loss(g: Any) -> jax.Array:
        f = generate(g, gc, latents(k_zg))
        return jax.nn.softplus(-discriminate(d_new, gc, aug(k_ag, f))).mean()

    lg, g_grads = jax.value_and_grad(g_loss)(state["g"])
    g_updates, g_opt_state = g_opt.update(g_grads, state["g_opt"], state["g"])
    g_new = optax.apply_updates(state["g"], g_updates)
    beta = ema_beta(state["step"], tc)
    g_ema = jax.tree_util.tree_map(lambda e, p: beta * e + (1 - beta) * p, state["g_ema"], g_new)
    metrics = {**d_aux, "loss_g": lg, "g_grad_norm": optax.tree.norm(g_grads),
               "d_grad_norm": optax.tree.norm(d_grads)}
    new = {"step": state["step"] + 1, "g": g_new, "d": d_new, "g_ema": g_ema,
           "g_opt": g_opt_state, "d_opt": d_opt_state}
    return new, metrics

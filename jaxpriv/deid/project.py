"""Project aligned faces into the generator's latent space (paper 001, eq. 9 / 18–19, Alg. 3).

``w* = argmin_w L_percept(G(w), I) + λ_mse/N · ‖G(w) − I‖²₂ (+ λ_id · ‖e(G(w)) − e(I)‖²₂)``

* ``L_percept`` (eq. 19) is ``Σ_j λ_j/N_j ‖F_j(I₁) − F_j(I₂)‖²₂``. The paper's F_j are VGG-16
  conv1_1, conv1_2, conv3_2, conv4_2; VGG weights cannot be had here, so F_j are the
  activations of the real, pre-trained dlib face ResNet at four depths of matching scale:
  ``affine0`` (conv 7×7/2, 72×72×32), ``block2`` (end of stage 1, 35×35×32), ``block6`` (end of
  stage 2, 17×17×64), ``block9`` (end of stage 3, 8×8×128); λ_j = 1. Both images are the
  generator-resolution chips upsampled (bilinear) to dlib's 150×150 input.
* the optional ``λ_id`` term (default 0, i.e. the paper's loss) pulls dlib's 128-d embedding of
  ``G(w)`` toward that of the original 150×150 chip.
* ``w`` lives in W (one ``w_dim`` vector for all layers: the code that gets the Laplace noise);
  it starts at the generator's mean ``w`` and is optimised with Adam (cosine-decayed lr) for a
  fixed number of steps inside one jitted ``lax.scan``, ``vmap``-ped over a batch of faces.

Images: generator-resolution targets are float32 [0, 1] NHWC (``from_uint8_unit``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpriv.deid.generator import LoadedGenerator, synthesis, to_unit

PERCEPT_LAYERS: tuple[str, ...] = ("affine0", "block2", "block6", "block9")
DLIB_SIZE = 150


@dataclasses.dataclass(frozen=True)
class ProjectConfig:
    """Settings of the latent search (eq. 18)."""

    steps: int = 150
    lr: float = 0.05
    lambda_mse: float = 1.0  # the paper's λ_mse
    lambda_id: float = 0.0  # extra dlib-embedding term (0 = the paper's loss)
    layers: tuple[str, ...] = PERCEPT_LAYERS
    layer_weights: tuple[float, ...] | None = None  # λ_j (default 1 each)


def resize_chips(chips: np.ndarray, size: int) -> np.ndarray:
    """uint8 chips ``(N, S, S, 3)`` → ``(N, size, size, 3)`` with OpenCV area averaging (the
    resampling the generator's training data went through)."""
    chips = np.asarray(chips)
    if chips.shape[1] == size:
        return chips
    return np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in chips])


def from_uint8_unit(chips: np.ndarray) -> jax.Array:
    """uint8 → float32 [0, 1]."""
    return jnp.asarray(chips, jnp.float32) / 255.0


def upsample_to_dlib(x01: jax.Array) -> jax.Array:
    """Bilinear resize of NHWC [0, 1] chips to dlib's 150×150."""
    b, _, _, c = x01.shape
    return jax.image.resize(x01, (b, DLIB_SIZE, DLIB_SIZE, c), "bilinear")


def perceptual_loss(fa: dict[str, jax.Array], fb: dict[str, jax.Array],
                    weights: dict[str, float]) -> jax.Array:
    """Eq. 19: ``Σ_j λ_j/N_j ‖F_j(a) − F_j(b)‖²`` per image (leading batch axis kept)."""
    total = 0.0
    for name, lam in weights.items():
        d = (fa[name] - fb[name]) ** 2
        total = total + lam * d.reshape(d.shape[0], -1).mean(axis=1)
    return total


@dataclasses.dataclass(frozen=True, eq=False)
class Projector:
    """A compiled projector for one generator: ``project(targets01, target_emb)`` →
    ``(w*, loss trace, final images)``; see :func:`make_projector`."""

    fn: Callable[..., tuple[jax.Array, jax.Array, jax.Array]]
    generator: LoadedGenerator
    config: ProjectConfig

    def __call__(self, targets: np.ndarray, target_emb: np.ndarray | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Project uint8 chips at the generator's resolution ``(B, R, R, 3)`` (dlib geometry).
        ``target_emb`` (B, 128) is needed when ``λ_id > 0``. Returns ``w*`` (B, w_dim),
        the loss per step (B, steps) and ``G(w*)`` as float [0, 1] (B, R, R, 3)."""
        x = from_uint8_unit(targets)
        emb = (jnp.zeros((x.shape[0], 128)) if target_emb is None
               else jnp.asarray(target_emb, jnp.float32))
        w, losses, imgs = self.fn(x, emb)
        return np.asarray(w), np.asarray(losses), np.asarray(imgs)


def make_projector(generator: LoadedGenerator, config: ProjectConfig = ProjectConfig(),
                   dlib_weights: str | None = None) -> Projector:
    """Build the jitted, vmapped projector of eq. 18 for ``generator``."""
    from jaxpriv.recognizers.dlib_resnet import feature_extractor

    variables, features = feature_extractor(config.layers, dlib_weights)
    lam = config.layer_weights or (1.0,) * len(config.layers)
    weights = dict(zip(config.layers, lam, strict=True))
    gen_params, gc, w_avg = generator.params, generator.config, generator.w_avg
    opt = optax.adam(optax.cosine_decay_schedule(config.lr, config.steps))

    def render(w: jax.Array) -> jax.Array:  # (w_dim,) → (R, R, 3) in [0, 1]
        return to_unit(synthesis(gen_params, gc, w[None]))[0]

    def project_one(target: jax.Array, target_emb: jax.Array,
                    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        t_feats, _ = features(variables, upsample_to_dlib(target[None]))
        t_feats = jax.lax.stop_gradient(t_feats)

        def loss_fn(w: jax.Array) -> jax.Array:
            img = render(w)
            feats, emb = features(variables, upsample_to_dlib(img[None]))
            loss = perceptual_loss(feats, t_feats, weights)[0]
            loss = loss + config.lambda_mse * jnp.mean((img - target) ** 2)
            if config.lambda_id > 0:
                loss = loss + config.lambda_id * jnp.sum((emb[0] - target_emb) ** 2)
            return loss

        def step(carry: tuple[jax.Array, Any], _: None) -> tuple[tuple[jax.Array, Any],
                                                               jax.Array]:
            w, s = carry
            loss, g = jax.value_and_grad(loss_fn)(w)
            upd, s = opt.update(g, s, w)
            return (optax.apply_updates(w, upd), s), loss

        w0 = w_avg.astype(jnp.float32)
        (w, _), losses = jax.lax.scan(step, (w0, opt.init(w0)), None, length=config.steps)
        return w, losses, render(w)

    fn = jax.jit(jax.vmap(project_one))
    return Projector(fn, generator, config)


@functools.lru_cache(maxsize=4)
def _render_fn(gc: Any) -> Callable[[Any, jax.Array], jax.Array]:
    return jax.jit(lambda p, w: to_unit(synthesis(p, gc, w)))


def render(generator: LoadedGenerator, w: np.ndarray | jax.Array) -> np.ndarray:
    """``G(w)`` for latents ``(B, w_dim)`` as uint8 chips ``(B, R, R, 3)``."""
    x = _render_fn(generator.config)(generator.params, jnp.asarray(w, jnp.float32))
    return np.asarray(jnp.round(x * 255.0)).astype(np.uint8)

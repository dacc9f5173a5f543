"""SMGG: the Sensitivity Map Generating GAN of SMNA (paper 000, Tables I–II, eq. 2–7).

Pure functions over explicit variables (Flax linen modules underneath):

- :func:`init` → ``{"params": {"generator", "discriminator"}, "batch_stats": {...}}``;
- :func:`generator_apply` — G, Table I: U-Net, 64×64×3 image → 64×64×1 map;
- :func:`discriminator_apply` — D, Table II: image ⊕ map 64×64×4 → 30×30 decision logits;
- :func:`discriminator_loss` (eq. 2–4), :func:`generator_loss` (eq. 5–7) and
  :func:`compute_losses`, whose gradient w.r.t. ``{"generator", "discriminator"}`` gives exactly
  ∇θg L_G and ∇θd L_D of Alg. 2 in one backward pass.

Units. Images go in as float32 in [0, 1] (HWC RGB; scaled to [−1, 1] inside both networks).
Maps are the *normalised* sensitivity maps of :func:`normalize_maps`. The default normalisation
``"alg3"`` does to each label what Alg. 3 does to G(x) before using it: centre on the per-map mean
(line 1) and divide by a norm (line 2; we use the mean absolute value), so
``y_n = (y − mean y) / mean|y − mean y|`` (mean |y_n| = 1; raw maps are dlib distance changes of
about ±0.05, with per-image scales varying ×2–3). Alg. 3 is invariant to a per-map positive scale
and shift of G(x), so nothing it uses is lost, and G(x) needs no conversion back: feed it straight
to :func:`jaxpriv.smna.noise.noise_delta`. The alternative ``"scale"`` multiplies raw
maps by a fixed ``map_scale`` (G(x) / map_scale is then a distance change). G's last layer
(Table I Conv12) has no activation, so its output is unbounded like the normalised maps.

Reading of the tables (where they leave room):
- every convolution is 4×4; "Conv2D" down-samples with stride 2 / SAME padding, except D's
  Conv2–Conv5 whose shapes (34→31→31→31, 33→30) force stride 1 with VALID (after the explicit
  zero padding) or SAME padding; "Conv2DTranspose" up-samples with stride 2 / SAME;
- Conv7…Conv11 outputs are concatenated with Conv5…Conv1 (the skip connections): that is why
  Table I lists 2×2×1024 after a 512-filter layer;
- layers without BatchNorm (G Conv1, Conv12; D Conv1, Conv5) carry a bias, the others do not;
  LeakyReLU slope 0.2; weights ~ N(0, 0.02) (pix2pix practice — not given in the paper);
- Table II lists no activation after D's Conv1 and we add none (as printed);
- no dropout (none listed); BatchNorm running averages with momentum 0.9 (``BN_MOMENTUM``) are
  used at inference (not batch statistics: a single face would zero the 1×1 bottleneck).

``width`` multiplies every channel count (except the 1-channel outputs) for lite variants; D may
use its own (``disc_width``): its three stride-1 convolutions at 31×31 are ~98 % of a step's FLOPs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxpriv.checkpoints import load_model, save_model
from jaxpriv.errors import JaxprivError

Variables = dict[str, Any]
MapNormalization = Literal["alg3", "scale"]

IMAGE_SIZE = 64
DECISION_SIZE = 30
GENERATOR_FEATURES = (64, 128, 256, 512, 512, 512)  # Table I, Conv1…Conv6
DISCRIMINATOR_FEATURES = (256, 512, 512, 512)  # Table II, Conv1…Conv4
LEAKY_SLOPE = 0.2
# Running-average rate of BatchNorm (new = m·old + (1 − m)·batch). 0.9 (PyTorch's default, used by
# pix2pix) rather than Flax/Keras' 0.99: with 0.99 the running statistics lagged the fast-moving
# generator so far that G in inference mode did much worse on its own training images than with
# batch statistics.
BN_MOMENTUM = 0.9
_INIT = nn.initializers.normal(0.02)


def scaled_features(base: Sequence[int], width: float) -> tuple[int, ...]:
    """Channel counts of a lite variant: ``round(c · width)``, at least 1."""
    return tuple(max(1, int(round(c * width))) for c in base)


class Generator(nn.Module):
    """Table I: Conv1–Conv6 down (stride 2), Conv7–Conv11 up + skip concat, Conv12 → 1 channel."""

    features: tuple[int, ...] = GENERATOR_FEATURES

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        def bn(name: str) -> nn.BatchNorm:
            return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=1e-5,
                                name=name)

        h = x * 2.0 - 1.0
        skips = []
        for i, f in enumerate(self.features):  # Conv1..Conv6
            h = nn.Conv(f, (4, 4), (2, 2), "SAME", use_bias=i == 0, kernel_init=_INIT,
                        name=f"conv{i + 1}")(h)
            if i > 0:
                h = bn(f"bn{i + 1}")(h)
            h = nn.leaky_relu(h, LEAKY_SLOPE)
            skips.append(h)
        up = self.features[-2::-1]  # Conv7..Conv11 mirror Conv5..Conv1
        for j, (f, skip) in enumerate(zip(up, skips[-2::-1], strict=True)):
            k = len(self.features) + 1 + j
            h = nn.ConvTranspose(f, (4, 4), (2, 2), "SAME", use_bias=False, kernel_init=_INIT,
                                 name=f"conv{k}")(h)
            h = nn.leaky_relu(bn(f"bn{k}")(h), LEAKY_SLOPE)
            h = jnp.concatenate([h, skip], axis=-1)
        k = 2 * len(self.features)
        return nn.ConvTranspose(1, (4, 4), (2, 2), "SAME", kernel_init=_INIT, name=f"conv{k}")(h)


class Discriminator(nn.Module):
    """Table II: PatchGAN-style; (image, map) 64×64×4 → 30×30×1 logits."""

    features: tuple[int, ...] = DISCRIMINATOR_FEATURES

    @nn.compact
    def __call__(self, x: jax.Array, m: jax.Array, train: bool) -> jax.Array:
        def bn(name: str) -> nn.BatchNorm:
            return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=1e-5,
                                name=name)

        pad = ((0, 0), (1, 1), (1, 1), (0, 0))
        f1, f2, f3, f4 = self.features
        h = jnp.concatenate([x * 2.0 - 1.0, m], axis=-1)
        h = nn.Conv(f1, (4, 4), (2, 2), "SAME", kernel_init=_INIT, name="conv1")(h)  # 32×32
        h = jnp.pad(h, pad)  # Padding1: 34×34
        h = nn.Conv(f2, (4, 4), (1, 1), "VALID", use_bias=False, kernel_init=_INIT,
                    name="conv2")(h)  # 31×31
        h = nn.leaky_relu(bn("bn2")(h), LEAKY_SLOPE)
        for i, f in ((3, f3), (4, f4)):
            h = nn.Conv(f, (4, 4), (1, 1), "SAME", use_bias=False, kernel_init=_INIT,
                        name=f"conv{i}")(h)
            h = nn.leaky_relu(bn(f"bn{i}")(h), LEAKY_SLOPE)
        h = jnp.pad(h, pad)  # Padding2: 33×33
        return nn.Conv(1, (4, 4), (1, 1), "VALID", kernel_init=_INIT, name="conv5")(h)  # 30×30


def _features(params: Variables, n: int) -> tuple[int, ...]:
    """Channel counts read back from the kernels (so variables are self-describing)."""
    return tuple(int(params[f"conv{i + 1}"]["kernel"].shape[-1]) for i in range(n))


def generator_apply(variables: Variables, x: jax.Array, train: bool = False,
                    ) -> tuple[jax.Array, Variables]:
    """G(x) (Table I). ``variables`` = ``{"params", "batch_stats"}`` of the generator; ``x`` float
    (N, 64, 64, 3) in [0, 1]. Returns the normalised map (N, 64, 64, 1) and the batch stats
    (updated from this batch when ``train``, else unchanged)."""
    module = Generator(_features(variables["params"], len(GENERATOR_FEATURES)))
    if not train:
        return module.apply(variables, x, False), variables["batch_stats"]
    y, upd = module.apply(variables, x, True, mutable=["batch_stats"])
    return y, upd["batch_stats"]


def discriminator_apply(variables: Variables, x: jax.Array, m: jax.Array, train: bool = False,
                        ) -> tuple[jax.Array, Variables]:
    """D(x, m) (Table II): float images (N, 64, 64, 3) in [0, 1] and normalised maps
    (N, 64, 64, 1) → logits (N, 30, 30, 1) (sigmoid = probability the map is ground truth) and
    batch stats."""
    module = Discriminator(_features(variables["params"], len(DISCRIMINATOR_FEATURES)))
    if not train:
        return module.apply(variables, x, m, False), variables["batch_stats"]
    y, upd = module.apply(variables, x, m, True, mutable=["batch_stats"])
    return y, upd["batch_stats"]


def init(key: jax.Array, width: float = 1.0, disc_width: float | None = None) -> Variables:
    """Fresh SMGG variables: ``{"params": {"generator", "discriminator"}, "batch_stats": {..}}``.

    ``width`` scales the channels of Tables I–II (1.0 = the paper); ``disc_width`` those of D
    (default ``width``)."""
    dw = width if disc_width is None else disc_width
    return _init(key, scaled_features(GENERATOR_FEATURES, width),
                 scaled_features(DISCRIMINATOR_FEATURES, dw))


def _init(key: jax.Array, g_features: tuple[int, ...], d_features: tuple[int, ...]) -> Variables:
    """The modules' initialisers (kernels ~ N(0, 0.02), biases 0, BatchNorm scale 1 / shift 0,
    running mean 0 / var 1) drawn as ONE normal vector: letting Flax draw each kernel costs one
    threefry compilation per parameter shape, slow on CPU even at small widths."""
    x = jax.ShapeDtypeStruct((1, IMAGE_SIZE, IMAGE_SIZE, 3), jnp.float32)
    m = jax.ShapeDtypeStruct((1, IMAGE_SIZE, IMAGE_SIZE, 1), jnp.float32)
    k0 = jax.random.key(0)
    g = jax.eval_shape(lambda x: Generator(g_features).init(k0, x, False), x)
    d = jax.eval_shape(lambda x, m: Discriminator(d_features).init(k0, x, m, False), x, m)
    shapes = {"params": {"generator": g["params"], "discriminator": d["params"]},
              "batch_stats": {"generator": g["batch_stats"], "discriminator": d["batch_stats"]}}
    paths, treedef = jax.tree_util.tree_flatten_with_path(shapes)
    kinds = [jax.tree_util.keystr(p[-1:]) for p, _ in paths]
    total = sum(s.size for (_, s), k in zip(paths, kinds, strict=True) if k == "['kernel']")
    flat = _normal(key, total)
    leaves, offset = [], 0
    for (_, s), k in zip(paths, kinds, strict=True):
        if k == "['kernel']":
            leaves.append(flat[offset:offset + s.size].reshape(s.shape))
            offset += s.size
        else:
            leaves.append(jnp.full(s.shape, 1.0 if k in ("['scale']", "['var']") else 0.0,
                                   s.dtype))
    return jax.tree_util.tree_unflatten(treedef, leaves)


@functools.partial(jax.jit, static_argnums=1)
def _normal(key: jax.Array, n: int) -> jax.Array:
    return 0.02 * jax.random.normal(key, (n,), jnp.float32)


def generator_variables(variables: Variables) -> Variables:
    """The generator's ``{"params", "batch_stats"}`` out of the full SMGG variables."""
    return {"params": variables["params"]["generator"],
            "batch_stats": variables["batch_stats"]["generator"]}


def count_params(tree: Any) -> int:
    """Number of scalars in a pytree of arrays."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(tree)))


def normalize_maps(maps: jax.Array, method: MapNormalization = "alg3",
                   scale: float = 20.0) -> jax.Array:
    """Raw sensitivity maps (..., 64, 64) (dlib distance changes) → training targets.

    ``"alg3"``: per map, subtract the mean and divide by the mean absolute deviation (Alg. 3
    line 1–2 applied to the label; mean |y_n| = 1). ``"scale"``: ``maps · scale``."""
    maps = jnp.asarray(maps, jnp.float32)
    if method == "scale":
        return maps * scale
    if method != "alg3":
        raise ValueError(f"unknown map normalisation {method!r}; use 'alg3' or 'scale'")
    c = maps - maps.mean(axis=(-2, -1), keepdims=True)
    return c / (jnp.abs(c).mean(axis=(-2, -1), keepdims=True) + 1e-12)


def _bce(logits: jax.Array, label: float) -> jax.Array:
    """Mean binary cross-entropy of sigmoid(logits) against a constant matrix (A = 1s, B = 0s)."""
    return optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, label)).mean()


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array,
                       ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Eq. 2–4: L_D = CE(D(x, y), A) + CE(D(x, G(x)), B). Returns (L_D, L_real, L_generated)."""
    l_real = _bce(real_logits, 1.0)
    l_gen = _bce(fake_logits, 0.0)
    return l_real + l_gen, l_real, l_gen


def l1_loss(fake: jax.Array, real: jax.Array) -> jax.Array:
    """Eq. 6: mean |G(x) − y|."""
    return jnp.abs(fake - real).mean()


def generator_loss(fake_logits: jax.Array, fake: jax.Array, real: jax.Array, lambda_l1: float,
                   ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Eq. 5–7: L_G = CE(D(x, G(x)), A) + λ·L1. Returns (L_G, L_GAN, L_L1)."""
    l_gan = _bce(fake_logits, 1.0)
    l_l1 = l1_loss(fake, real)
    return l_gan + lambda_l1 * l_l1, l_gan, l_l1


def compute_losses(params: Variables, batch_stats: Variables, x: jax.Array, y: jax.Array,
                   lambda_l1: float = 100.0) -> tuple[jax.Array, tuple[Variables, dict]]:
    """One Alg. 2 forward pass (lines 3–4) in training mode.

    ``params``/``batch_stats`` hold ``generator`` and ``discriminator``; ``x`` float
    (N, 64, 64, 3) in [0, 1]; ``y`` normalised maps (N, 64, 64, 1). Returns ``L_G + L_D`` with
    stop-gradients placed so that its gradient is ∇θg L_G for the generator and ∇θd L_D for the
    discriminator (lines 5–6 from one backward pass), plus (new batch stats, metrics)."""
    gv = {"params": params["generator"], "batch_stats": batch_stats["generator"]}
    fake, g_stats = generator_apply(gv, x, train=True)
    dv = {"params": params["discriminator"], "batch_stats": batch_stats["discriminator"]}
    real_logits, d_stats = discriminator_apply(dv, x, y, train=True)
    dv = {"params": dv["params"], "batch_stats": d_stats}
    fake_logits_d, d_stats = discriminator_apply(dv, x, jax.lax.stop_gradient(fake), train=True)
    frozen = {"params": jax.lax.stop_gradient(dv["params"]), "batch_stats": dv["batch_stats"]}
    fake_logits_g, _ = discriminator_apply(frozen, x, fake, train=True)  # same forward: CSE'd
    l_d, l_real, l_gen = discriminator_loss(real_logits, fake_logits_d)
    l_g, l_gan, l_l1 = generator_loss(fake_logits_g, fake, y, lambda_l1)
    metrics = {"loss_G": l_g, "loss_D": l_d, "loss_GAN": l_gan, "L1": l_l1,
               "loss_real": l_real, "loss_generated": l_gen}
    return l_g + l_d, ({"generator": g_stats, "discriminator": d_stats}, metrics)


# ---------------------------------------------------------------- inference checkpoints

CHECKPOINT_FORMAT = "jaxpriv.smgg.generator/2"  # /1 kept the arrays in generator/, not params/


def save_generator(directory: str | Path, params: Variables, batch_stats: Variables,
                   meta: dict[str, Any]) -> Path:
    """Write an inference checkpoint (:func:`jaxpriv.checkpoints.save_model`): ``params/`` =
    ``{"params", "batch_stats"}`` of G (layer names ``conv1``…``conv12``, ``bn2``…``bn11``) and
    ``config.json`` = ``meta`` plus ``format``; ``meta`` must name ``noise`` and
    ``map_normalization``."""
    meta = {"format": CHECKPOINT_FORMAT, "image_size": IMAGE_SIZE,
            "generator_params": count_params(params), **meta}
    return save_model(directory, {"params": params, "batch_stats": batch_stats}, meta)


def load_generator(directory: str | Path) -> tuple[Variables, dict[str, Any]]:
    """Read :func:`save_generator` output → (G's ``{"params", "batch_stats"}`` on the default
    device, config dict). Raises :class:`JaxprivError` naming what is missing."""
    directory = Path(directory)
    if not (directory / "config.json").is_file() or not (directory / "params").is_dir():
        raise JaxprivError(f"SMGG checkpoint {directory} not found (needs config.json and "
                           f"params/)")

    def abstract(meta: dict[str, Any]) -> Variables:
        return generator_variables(
            jax.eval_shape(lambda: init(jax.random.key(0), float(meta["width"]), 0.125)))

    return load_model(directory, CHECKPOINT_FORMAT, abstract)

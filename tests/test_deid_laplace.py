"""Laplace mechanism of paper 001 (eq. 10–12): the sampler is Laplace(b = Δf/ε), and the bounded
mode derives Δf = 2·C·dim and stays in its box."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxpriv.deid.laplace import (
    LatentMechanism,
    bounded_laplace_mechanism,
    bounded_sensitivity,
    clip_latent,
    laplace_mechanism,
    laplace_scale,
)


@pytest.mark.parametrize("sensitivity,epsilon", [(1.0, 1.0), (2.0, 0.5), (0.3, 4.0)])
def test_sampler_matches_laplace_cdf(sensitivity: float, epsilon: float) -> None:
    value = jnp.full((20000,), 3.0)
    out = np.asarray(laplace_mechanism(jax.random.key(0), value, sensitivity, epsilon))
    b = sensitivity / epsilon
    res = stats.kstest(out - 3.0, stats.laplace(scale=b).cdf)
    assert res.pvalue > 0.01, res
    # the wrong scale is rejected: the test has power
    assert stats.kstest(out - 3.0, stats.laplace(scale=1.5 * b).cdf).pvalue < 1e-6


def test_scale_is_sensitivity_over_epsilon() -> None:
    for df, eps in [(1.0, 1.0), (10.0, 2.0), (256.0, 100.0)]:
        assert float(laplace_scale(df, eps)) == pytest.approx(df / eps)
        noise = np.asarray(laplace_mechanism(jax.random.key(1), jnp.zeros(50000), df, eps))
        # E|X| = b and Var X = 2b² for Laplace(b)
        assert np.mean(np.abs(noise)) == pytest.approx(df / eps, rel=0.03)
        assert np.var(noise) == pytest.approx(2 * (df / eps) ** 2, rel=0.06)


def test_independent_keys_and_determinism() -> None:
    v = jnp.zeros(64)
    a = laplace_mechanism(jax.random.key(5), v, 1.0, 1.0)
    assert np.array_equal(a, laplace_mechanism(jax.random.key(5), v, 1.0, 1.0))
    assert not np.array_equal(a, laplace_mechanism(jax.random.key(6), v, 1.0, 1.0))


def test_bounded_mode_derives_sensitivity_and_stays_in_box() -> None:
    dim, clip, eps = 128, 0.5, 64.0
    assert bounded_sensitivity(clip, dim) == 2 * clip * dim
    mech = LatentMechanism("bounded", eps, dim, clip=clip)
    assert mech.delta_f == 128.0 and mech.scale == pytest.approx(2.0)
    assert "Δf = 2·C·dim = 128" in mech.describe() and "ε = 64" in mech.describe()
    assert "true ε-DP" in mech.describe()
    center = jnp.linspace(-1, 1, dim)
    scale = jnp.linspace(0.2, 1.5, dim)  # per-coordinate std: the box is ±C·std
    w = jax.random.normal(jax.random.key(2), (16, dim)) * 3
    out = np.asarray(jax.vmap(lambda k, x: mech(k, x, center, scale))(
        jax.random.split(jax.random.key(3), 16), w))
    assert np.all(np.abs(out - np.asarray(center)) <= clip * np.asarray(scale) + 1e-5)
    # in w units the noise of coordinate i has scale std_i·Δf/ε
    raw_w = bounded_laplace_mechanism(jax.random.key(6), jnp.zeros((4000, dim)), clip, eps,
                                      scale=scale, clip_output=False)
    ratio = np.mean(np.abs(np.asarray(raw_w)), 0) / (np.asarray(scale) * 2 * clip * dim / eps)
    assert np.allclose(ratio, 1.0, atol=0.1)
    # the noise before post-processing has scale 2·C·dim/ε
    raw = bounded_laplace_mechanism(jax.random.key(4), jnp.zeros((4000, dim)), clip, eps,
                                    clip_output=False)
    assert np.mean(np.abs(raw)) == pytest.approx(2 * clip * dim / eps, rel=0.03)


def test_clipping_bounds_the_l1_sensitivity() -> None:
    """Any two clipped latents differ by at most 2·C·dim in L1 (eq. 4)."""
    dim, clip = 32, 0.7
    a = clip_latent(jax.random.normal(jax.random.key(0), (500, dim)) * 10, clip)
    b = clip_latent(jax.random.normal(jax.random.key(1), (500, dim)) * 10, clip)
    assert float(jnp.max(jnp.sum(jnp.abs(a - b), -1))) <= bounded_sensitivity(clip, dim) + 1e-5


def test_paper_mode_and_bad_arguments() -> None:
    mech = LatentMechanism("paper", 2.0, 128, sensitivity=1.0)
    assert mech.delta_f == 1.0 and mech.scale == 0.5 and "nominal" in mech.describe()
    with pytest.raises(ValueError):
        LatentMechanism("nope", 1.0, 8)
    with pytest.raises(ValueError):
        LatentMechanism("paper", 0.0, 8)


def test_the_clip_comes_before_the_noise() -> None:
    """ε-DP needs the latent clipped into the box *before* the noise: a latent outside the box
    must then be released exactly like its projection onto the box (same key, same output). If
    only the noisy output were clipped, the far latent's release would differ (it sits nearer
    the far edge of the box) and Δf = 2·C·dim would not bound anything."""
    dim, clip, eps = 512, 2.0, 1024.0  # MobileStyleGAN's bounded default: b = 2 std
    center, scale = jnp.linspace(-1, 1, dim), jnp.linspace(0.2, 1.5, dim)
    mech = LatentMechanism("bounded", eps, dim, clip=clip, truncation=0.7)
    on_edge = center + clip * scale  # every coordinate at the top of the box
    far = center + 5 * clip * scale  # far outside it
    for seed in range(3):
        key = jax.random.key(seed)
        a, b = mech(key, on_edge, center, scale), mech(key, far, center, scale)
        # equal up to float rounding of (edge − centre)/scale (w is O(1); a difference the
        # noise makes is O(b·scale) = O(1))
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-5)
    # and inside the box the input does matter (the test is not vacuous)
    inside = mech(jax.random.key(0), center, center, scale)
    edge = np.asarray(mech(jax.random.key(0), on_edge, center, scale))
    assert np.abs(np.asarray(inside) - edge).max() > 0.1


@pytest.mark.parametrize("field,value", [("epsilon", 0.0), ("epsilon", -2.0),
                                         ("sensitivity", 0.0), ("sensitivity", -1.0),
                                         ("clip", -1.0), ("clip", 0.0), ("epsilon", math.inf)])
def test_mechanism_refuses_a_bad_budget(field: str, value: float) -> None:
    kw = {"epsilon": 1.0, "sensitivity": 1.0, "clip": 1.0, field: value}
    for mode in ("paper", "bounded"):
        with pytest.raises(ValueError, match=f"{field} must be a finite number > 0"):
            LatentMechanism(mode, kw["epsilon"], 8, kw["sensitivity"], kw["clip"])

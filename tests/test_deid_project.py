"""Latent projection (paper 001 eq. 18–19, Alg. 3) with dlib-ResNet perceptual features: the
loss goes down, faces are independent under vmap, and the features are dlib's."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv.deid.generator import (
    GeneratorConfig,
    LoadedGenerator,
    init_generator,
    synthesis,
    to_unit,
    w_statistics,
)
from jaxpriv.deid.project import PERCEPT_LAYERS, ProjectConfig, make_projector
from jaxpriv.recognizers import load_recognizer
from jaxpriv.recognizers.dlib_resnet import feature_extractor

TINY = GeneratorConfig(resolution=8, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64,
                       channel_max=16, d_channel_base=32, d_channel_max=8)


def test_feature_extractor_matches_embedding() -> None:
    variables, features = feature_extractor(PERCEPT_LAYERS)
    x = jax.random.uniform(jax.random.key(0), (1, 150, 150, 3))
    feats, emb = features(variables, x)
    assert [feats[k].shape[1:] for k in PERCEPT_LAYERS] == [
        (72, 72, 32), (35, 35, 32), (17, 17, 64), (8, 8, 128)]
    rec = load_recognizer("dlib_resnet")
    np.testing.assert_allclose(emb, rec.apply(rec.params, x), atol=1e-5)


def test_projection_reduces_its_loss() -> None:
    params = init_generator(jax.random.key(0), TINY)
    w_avg, w_std = w_statistics(params, TINY, jax.random.key(1), n=256)
    gen = LoadedGenerator(params, TINY, w_avg, w_std, {})
    # targets the generator can reach: two random latents (far from the mean start)
    w_true = w_avg + 3 * w_std * jax.random.normal(jax.random.key(2), (2, TINY.w_dim))
    targets = np.asarray(jnp.round(to_unit(synthesis(params, TINY, w_true)) * 255), np.uint8)
    proj = make_projector(gen, ProjectConfig(steps=25, lr=0.1))
    w, losses, imgs = proj(targets)
    assert w.shape == (2, TINY.w_dim) and losses.shape == (2, 25) and imgs.shape == (2, 8, 8, 3)
    assert np.all(np.isfinite(losses))
    assert np.all(losses[:, -1] < 0.7 * losses[:, 0]), losses[:, [0, -1]]
    # vmapped faces are independent: projecting one face alone gives the same result
    w1, losses1, _ = proj(targets[:1])
    np.testing.assert_allclose(losses1[0], losses[0], rtol=1e-3, atol=1e-6)

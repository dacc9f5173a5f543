"""Training pieces: soft XOR equals the real XOR, the superposed loss over two recognizers, and
sharded, resumable training on 2 simulated devices."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpriv.masktpl.model import TemplateSettings
from jaxpriv.masktpl.perturb import (
    RecognizerTerm,
    effective_bits,
    soft_xor,
    superposed_distance,
)
from jaxpriv.masktpl.train import generator_loss

from .conftest import ROOT
from .test_masktpl_xor import tiny_model


def test_soft_xor_is_xor_on_hard_bits() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    bits = rng.integers(0, 2, (3, 5, 7, 3, 4)).astype(np.float32)
    pad = (bits * 2 ** np.arange(4)).sum(-1).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(soft_xor(jnp.asarray(x), jnp.asarray(bits))),
                                  (x ^ pad).astype(np.float32))


def test_budget_bits() -> None:
    assert effective_bits(4, "ssim", 0.95) == 4
    assert [effective_bits(4, "linf", s) for s in (0, 1, 2, 3, 7, 15, 255)] == [0, 1, 1, 2, 3, 4, 4]
    with pytest.raises(ValueError):
        effective_bits(3, "l2", 1.0)


def test_superposition_of_two_dlib_instances() -> None:
    """The loss takes a list of recognizers with weights τ: here dlib's ResNet and a second dlib
    instance with seeded random changes to its weights (another recognizer of the same kind)."""
    from jaxpriv.recognizers import load_recognizer

    rec = load_recognizer("dlib_resnet")
    leaves, tree = jax.tree_util.tree_flatten(rec.params)
    keys = jax.random.split(jax.random.key(3), len(leaves))
    other = jax.tree_util.tree_unflatten(tree, [
        x * (1 + 0.2 * jax.random.normal(k, x.shape)) for x, k in zip(leaves, keys, strict=True)])
    terms = [RecognizerTerm("dlib", rec.apply, rec.params, 150, 0.7),
             RecognizerTerm("dlib_b", rec.apply, other, 150, 0.3)]
    chips = np.random.default_rng(1).integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    x01 = jnp.asarray(chips, jnp.float32) / 255.0
    clean = [t.apply(t.params, x01) for t in terms]
    model = tiny_model()

    def loss(gp):  # noqa: ANN001, ANN202
        return generator_loss(gp, model.template_params, jnp.asarray(chips),
                              jnp.array([3, 4], jnp.int32), clean, [t.params for t in terms],
                              jax.random.key(0), terms, TemplateSettings(), "ssim", 0.0, 1.0)

    (value, metrics), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(
        model.generator_params)
    d1, d2 = float(metrics["dist_dlib"]), float(metrics["dist_dlib_b"])
    assert d1 > 1e-3 and d2 > 1e-3 and abs(d1 - d2) > 1e-4  # two different recognizers
    assert float(value) == pytest.approx(-(0.7 * d1 + 0.3 * d2), rel=1e-4)  # σ = 0: no penalty
    g = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(grads)])
    assert np.all(np.isfinite(g)) and np.abs(g).max() > 0
    # and superposed_distance resizes for recognizers of another input size
    small = RecognizerTerm("small", lambda p, x: jnp.mean(x, (1, 2)) * p, 2.0, 112, 1.0)
    total, (d,) = superposed_distance([small], [2.0], x01, [jnp.zeros((2, 3))])
    assert total.shape == (2,) and float(d[0]) > 0


def test_sharded_training_resumes_exactly(tmp_path) -> None:
    """Template and generator steps jit over a 2-device mesh; a run interrupted after 2 steps and
    resumed to 4 equals an uninterrupted 4-step run."""
    script = textwrap.dedent(f"""
        import jax, jax.numpy as jnp, numpy as np
        from pathlib import Path
        from ml_collections import ConfigDict
        from jaxpriv.masktpl import train as T
        from jaxpriv.masktpl.model import TemplateSettings
        from jaxpriv.masktpl.perturb import RecognizerTerm
        assert jax.device_count() == 2
        rng = np.random.default_rng(0)
        chips = rng.integers(0, 256, (6, 150, 150, 3), dtype=np.uint8)
        targets = rng.uniform(size=(6, 64, 64)).astype(np.float32)
        cfg = ConfigDict(dict(seed=0, steps=4, batch=4, lr=1e-3, l2=1e-6, ckpt_every=2))
        root = Path(r"{tmp_path}")
        straight = T.train_template(chips, targets, cfg, root / "a")
        cfg.steps = 2
        T.train_template(chips, targets, cfg, root / "b")   # "interrupted" after 2 steps
        cfg.steps = 4
        resumed = T.train_template(chips, targets, cfg, root / "b")
        for x, y in zip(jax.tree_util.tree_leaves(straight), jax.tree_util.tree_leaves(resumed)):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        assert '"resumed_at": 2' in (root / "b" / "log.jsonl").read_text()
        def tiny(p, x):
            return jnp.mean(x * p, axis=(1, 2))
        terms = [RecognizerTerm("tiny", tiny, jnp.float32(2.0), 150, 1.0)]
        gcfg = ConfigDict(dict(seed=0, steps=2, batch=4, lr=2e-4, b1=0.5, budget="ssim",
                               sigma=0.9, budget_weight=1.0, k_choices=(1, 4), ckpt_every=1))
        tparams = jax.device_get(straight)
        g = T.train_generator(chips, tparams, terms, gcfg, TemplateSettings(), root / "g")
        assert (root / "g" / "generator" / "checkpoints" / "2").is_dir()
        assert (root / "g" / "generator" / "metrics.jsonl").read_text().count("\\n") == 2
        print("OK")
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=900)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-3000:]

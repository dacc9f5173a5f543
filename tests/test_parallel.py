"""Sharded embedding over 4 simulated CPU devices equals the single-device result."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

from .conftest import ROOT


def test_sharded_embed_matches_single_device(tmp_path) -> None:
    rng = np.random.default_rng(0)
    chips = rng.integers(0, 256, (10, 150, 150, 3), dtype=np.uint8)  # 10: not a multiple of 4
    np.save(tmp_path / "chips.npy", chips)
    script = textwrap.dedent(f"""
        import numpy as np, jax
        from jaxpriv.parallel import make_mesh, sharded_embed
        from jaxpriv.recognizers import load_recognizer
        assert jax.device_count() == 4, jax.devices()
        rec = load_recognizer("dlib_resnet")
        chips = np.load(r"{tmp_path / 'chips.npy'}")
        mesh = make_mesh()
        assert mesh.shape == {{"data": 4}}
        np.save(r"{tmp_path / 'sharded.npy'}", sharded_embed(rec, chips, mesh))
        np.save(r"{tmp_path / 'single.npy'}", rec.embed(chips))
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=ROOT)
    sharded, single = np.load(tmp_path / "sharded.npy"), np.load(tmp_path / "single.npy")
    assert sharded.shape == (10, 128)
    np.testing.assert_allclose(sharded, single, atol=1e-5)
    assert np.abs(single[0] - single[1]).max() > 1e-3  # rows differ: the comparison means something

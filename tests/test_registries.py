"""Registries refuse a taken name; one mesh builder (jax.make_mesh, all or local devices); one
power-of-two bucket for face counts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from jaxpriv import methods, parallel
from jaxpriv.recognizers import base

from .conftest import ROOT


def test_duplicate_method_name_raises():
    before = methods.get_method("blur")
    clash = methods.MethodSpec("blur", "another blur", lambda: None)
    with pytest.raises(ValueError, match="'blur' is already registered"):
        methods.register_method(clash)
    assert methods.get_method("blur") is before


def test_duplicate_recognizer_name_raises():
    base.available_recognizers()  # the built-in ones are registered
    before = base._REGISTRY["facenet"]
    with pytest.raises(ValueError, match="'facenet' is already registered"):
        base.register("facenet")(lambda **kw: None)
    assert base._REGISTRY["facenet"] is before


@pytest.mark.parametrize("n,want", [(0, 1), (1, 1), (2, 2), (3, 4), (4, 4), (5, 8), (33, 64)])
def test_bucket(n, want):
    assert parallel.bucket(n) == want


def test_one_mesh_builder_on_four_devices():
    script = textwrap.dedent("""
        import jax
        from jax.sharding import AxisType
        from jaxpriv.parallel import make_mesh
        assert jax.device_count() == 4
        for mesh, n in ((make_mesh(), 4), (make_mesh(2), 2), (make_mesh(local=True), 4)):
            assert mesh.shape == {"data": n}, mesh
            assert mesh.axis_types == (AxisType.Auto,), mesh.axis_types
        assert list(make_mesh(2).devices) == jax.devices()[:2]
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=ROOT, timeout=300)

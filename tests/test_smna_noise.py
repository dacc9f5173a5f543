"""SMNA noise addition (paper 000, Alg. 3) and the ``smna`` method on a real photo."""

from __future__ import annotations

import functools

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpriv.errors import JaxprivError
from jaxpriv.smna import noise

from .conftest import SAMPLES, rgb


def _maps(n: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth random G(x)-like maps (n, 64, 64, 1)."""
    rng = np.random.default_rng(seed)
    low = rng.normal(size=(n, 8, 8)).astype(np.float32)
    return np.stack([cv2.resize(m, (64, 64), interpolation=cv2.INTER_CUBIC) for m in low])[
        ..., None] * 0.05 + 0.01


@pytest.mark.parametrize("delta", [500.0, 1250.0])
def test_alg3_budget_is_delta(delta: float) -> None:
    g = _maps()
    out = noise.noise_delta(g, delta, "black", norm="l1")
    assert out.shape == (3, 64, 64)
    np.testing.assert_allclose(np.abs(out).sum((1, 2)), delta, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(noise.noise_map(g)).mean((1, 2)), 0, atol=1e-6)
    l2 = noise.noise_delta(g, delta, "white", norm="l2")
    np.testing.assert_allclose(np.sqrt((np.asarray(l2) ** 2).sum((1, 2))), delta, rtol=1e-5)
    # scale and shift of G(x) do not matter (Alg. 3 normalises them away)
    np.testing.assert_allclose(noise.noise_delta(7.0 * g - 3.0, delta, "black", norm="l1"), out,
                               rtol=1e-4, atol=1e-5)


def test_alg3_sign_convention() -> None:
    """Black noise moves pixels toward 0 where the map is above its mean (and only there) and
    brightens where below; white the reverse; 'literal' is Alg. 3 as printed (+ for both)."""
    g = _maps()
    m = np.asarray(noise.noise_map(g))
    black = np.asarray(noise.noise_delta(g, 1000.0, "black"))
    white = np.asarray(noise.noise_delta(g, 1000.0, "white"))
    assert (black[m > 0] < 0).all() and (black[m < 0] > 0).all()
    assert (white[m > 0] > 0).all() and (white[m < 0] < 0).all()
    np.testing.assert_array_equal(noise.noise_delta(g, 1000.0, "black", "literal"), -black)
    np.testing.assert_array_equal(noise.noise_delta(g, 1000.0, "white", "literal"), white)
    np.testing.assert_array_equal(noise.noise_delta(g, 1000.0, "black", "away"), -black)
    x = np.full((3, 64, 64, 3), 128, np.uint8)
    xb = np.asarray(noise.add_noise(x, g, 1000.0, "black"))
    assert (xb[m > 0] <= 128).all() and (xb[m > 0] < 128).any()  # never brighter where s > mean
    assert xb.min() >= 0 and xb.max() <= 255
    with pytest.raises(ValueError):
        noise.noise_delta(g, 1.0, "grey")  # type: ignore[arg-type]


def test_alg3_jit_vmap_and_degenerate_map() -> None:
    g = jnp.asarray(_maps(4))
    f = jax.jit(functools.partial(noise.noise_delta, noise="white"))
    batched = f(g, 800.0)
    mapped = jax.vmap(lambda gi: noise.noise_delta(gi, 800.0, "white"))(g)
    # jit of the batch vs vmap: differently compiled reductions; 1e-5 of the noise's scale (the
    # old atol 1e-6 was below float32 resolution of values up to ≈ 40)
    np.testing.assert_allclose(batched, mapped, rtol=0, atol=1e-5 * np.abs(mapped).max())
    flat = noise.noise_delta(jnp.ones((64, 64, 1)), 800.0, "black")
    assert np.all(np.asarray(flat) == 0)  # constant G(x): no noise, no NaN


def test_upsampled_delta_keeps_values() -> None:
    d = np.asarray(noise.noise_delta(_maps(1), 1250.0, "black"))
    up = np.asarray(noise.upsample_delta(jnp.asarray(d), 150))
    assert up.shape == (1, 150, 150)
    assert abs(up.max() - d.max()) < 0.1 * np.abs(d).max()
    assert np.abs(up).sum() == pytest.approx(np.abs(d).sum() * (150 / 64) ** 2, rel=0.05)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> str:
    """A width-0.125 generator after 3 training steps on synthetic maps, saved for the method."""
    from experiments.configs.smgg import get_config
    from experiments.smgg import create_state, synthetic_maps, train_step
    from jaxpriv.smna import smgg

    config = get_config()
    config.width, config.disc_width = 0.125, 0.125
    data = synthetic_maps(8, 2)
    y = np.asarray(smgg.normalize_maps(data["map_black"]))[..., None]
    state = create_state(config, jax.random.key(0))
    step = jax.jit(functools.partial(train_step, lambda_l1=100.0, flip=False))
    for _ in range(3):
        state, _ = step(state, {"image": data["image"], "map": y}, jax.random.key(1))
    path = tmp_path_factory.mktemp("ckpt") / "smgg_tiny_black"
    smgg.save_generator(path, state.params["generator"], state.batch_stats["generator"],
                        {"noise": "black", "width": 0.125, "map_normalization": "alg3"})
    return str(path)


def test_protect_changes_only_the_face(tiny_checkpoint: str) -> None:
    from jaxpriv.faces import detect_faces, extract_chips
    from jaxpriv.methods import get_method

    image = rgb(SAMPLES / "obama.jpg")
    faces = detect_faces(image)
    assert len(faces) == 1
    protect = get_method("smna").make(checkpoint=tiny_checkpoint, noise_level=1250.0)
    out = protect(image, faces, jax.random.key(0))
    assert out.shape == image.shape and out.dtype == np.uint8
    changed = np.any(out != image, axis=-1)
    assert changed.sum() > 1000
    _, transforms = extract_chips(image, faces)
    h, w = image.shape[:2]
    footprint = cv2.warpAffine(np.ones((150, 150), np.float32), transforms[0], (w, h),
                               flags=cv2.INTER_LINEAR, borderValue=0.0) > 0
    assert not (changed & ~footprint).any()  # nothing outside the face chip moved
    again = protect(image, faces, jax.random.key(1))
    np.testing.assert_array_equal(out, again)  # deterministic
    assert np.array_equal(protect(image, [], jax.random.key(0)), image)


def test_method_errors_name_the_checkpoint(tmp_path, tiny_checkpoint: str) -> None:
    from jaxpriv.methods import get_method

    with pytest.raises(JaxprivError, match="no SMGG checkpoint.*experiments/configs/smgg.py"):
        get_method("smna").make(checkpoint=str(tmp_path / "missing"))
    with pytest.raises(JaxprivError, match="trained on black"):
        get_method("smna").make(checkpoint=tiny_checkpoint, noise="white")


def test_cli_protect_changes_only_faces_and_copies_faceless(tmp_path, capsys) -> None:
    """`jaxpriv protect --method smna` with the shipped checkpoint on a bundled photo of two
    people and a photo without a face."""
    import json
    import shutil

    from jaxpriv.cli import main
    from jaxpriv.faces import detect_faces, extract_chips
    from jaxpriv.io import load_image

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(SAMPLES / "two_people.jpg", src / "two_people.jpg")
    cv2.imwrite(str(src / "wall.png"), np.full((120, 160, 3), 90, np.uint8))
    out = tmp_path / "out"
    rc = main(["protect", str(src), "-o", str(out), "--method", "smna", "--noise", "white",
               "--format", "png", "--json", str(tmp_path / "r.json")])
    assert rc == 0, capsys.readouterr()
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["protected"] == 1 and report["no_face"] == 1, report
    image, result = load_image(src / "two_people.jpg"), load_image(out / "two_people.png")
    faces = detect_faces(image)
    assert len(faces) == 2
    _, transforms = extract_chips(image, faces)
    h, w = image.shape[:2]
    footprint = np.zeros((h, w), bool)
    for t in transforms:
        footprint |= cv2.warpAffine(np.ones((150, 150), np.float32), t, (w, h),
                                    flags=cv2.INTER_LINEAR, borderValue=0.0) > 0
    changed = np.any(result != image, axis=-1)
    assert not (changed & ~footprint).any()  # nothing outside the two face chips moved
    assert changed[footprint].mean() > 0.2
    np.testing.assert_array_equal(load_image(out / "wall.png"), load_image(src / "wall.png"))
    assert (src / "two_people.jpg").read_bytes() == (SAMPLES / "two_people.jpg").read_bytes()

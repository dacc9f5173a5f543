"""Reversible XOR protection: exact restore (property test), whole photos, and every failure.

The exactness does not depend on training, so these tests use a randomly initialised mask model
(fast, no checkpoint needed)."""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face, detect_faces
from jaxpriv.io import load_image, save_image
from jaxpriv.masktpl import keys as K
from jaxpriv.masktpl import xor
from jaxpriv.masktpl.model import MaskModel, TemplateSettings, chip_pad
from jaxpriv.masktpl.perturb import GENERATOR, Z_DIM
from jaxpriv.masktpl.template import NET_SIZE, TEMPLATE_NET, keyed_template

from .conftest import SAMPLES

FAST = K.KdfParams(n=2**10, r=8, p=1)


@functools.lru_cache(maxsize=1)
def tiny_model() -> MaskModel:
    """Both networks at random initialisation (seeded)."""
    s = NET_SIZE
    t = TEMPLATE_NET.init(jax.random.key(1), jnp.zeros((1, s, s, 3)))["params"]
    g = GENERATOR.init(jax.random.key(2), jnp.zeros((1, s, s, 3)), jnp.zeros((1, s, s)),
                       jnp.zeros((1, Z_DIM)), jnp.zeros((1,)))["params"]
    # random-init logits are tiny; scale the output layer so the pad uses every bit plane
    g = jax.tree_util.tree_map(lambda x: x, g)
    g["out"]["kernel"] = g["out"]["kernel"] * 50.0
    return MaskModel(t, g, TemplateSettings(fraction=0.4, offset=4, jitter=0.15))


@functools.lru_cache(maxsize=1)
def two_people() -> tuple[np.ndarray, list[Face]]:
    image = load_image(SAMPLES / "two_people.jpg")
    return image, detect_faces(image)


def random_face(rng: np.random.Generator, h: int, w: int) -> Face:
    """A plausible face geometry anywhere in (or partly outside) an h×w image."""
    size = rng.uniform(20, 1.2 * max(h, w))
    cx, cy = rng.uniform(-0.2 * w, 1.2 * w), rng.uniform(-0.2 * h, 1.2 * h)
    angle = rng.uniform(-0.5, 0.5)
    template = np.array([[0.35, -0.1], [0.15, -0.1], [-0.35, -0.1], [-0.15, -0.1], [0.0, 0.2]])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    lm = (template @ rot.T) * size + [cx, cy] + rng.normal(0, 0.02 * size, (5, 2))
    return Face((cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2), lm)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), h=st.integers(24, 160), w=st.integers(24, 160),
       n_faces=st.integers(0, 3), k=st.integers(1, 4),
       password=st.binary(min_size=1, max_size=40))
def test_restore_of_protect_is_exact(seed: int, h: int, w: int, n_faces: int, k: int,
                                     password: bytes) -> None:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    faces = [random_face(rng, h, w) for _ in range(n_faces)]
    key = K.prng_key(K.derive_keys(password, rng.bytes(16), FAST).secret)
    protected, digests = xor.protect_image(image, faces, key, k, tiny_model())
    assert len(digests) == n_faces
    diff = np.abs(protected.astype(int) - image)
    assert diff.max() < 2**k  # only the k low bits change
    np.testing.assert_array_equal(xor.high_bits(protected, k), xor.high_bits(image, k))
    restored, digests2 = xor.restore_image(protected, faces, key, k, tiny_model())
    assert digests2 == digests
    np.testing.assert_array_equal(restored, image)


@pytest.mark.parametrize("k", [1, 4])
def test_two_people_photo_restores_exactly(k: int) -> None:
    image, faces = two_people()
    assert len(faces) == 2
    key = jax.random.key(7)
    protected, _ = xor.protect_image(image, faces, key, k, tiny_model())
    changed = np.any(protected != image, axis=-1)
    assert changed.mean() > 0.005  # the faces really changed ...
    for f in faces:  # ... and inside both of them
        x0, y0, x1, y1 = (int(v) for v in f.box)
        assert changed[y0:y1, x0:x1].mean() > 0.05
    assert not changed[:, :5].any() and not changed[-5:].any()  # far from faces: untouched
    np.testing.assert_array_equal(xor.restore_image(protected, faces, key, k, tiny_model())[0],
                                  image)
    # a different key does not restore
    other = xor.restore_image(protected, faces, jax.random.key(8), k, tiny_model())[0]
    assert not np.array_equal(other, image)


def test_place_pad_nearest_neighbour() -> None:
    pad = np.arange(5 * 5 * 3, dtype=np.uint8).reshape(5, 5, 3)
    ident = np.array([[1.0, 0, 2], [0, 1.0, 3]])  # chip (x, y) → image (x + 2, y + 3)
    out = xor.place_pad(pad, ident, (10, 9, 3))
    np.testing.assert_array_equal(out[3:8, 2:7], pad)
    assert out.sum() == pad.astype(int).sum()
    double = np.array([[2.0, 0, 0], [0, 2.0, 0]])  # chip pixel (u, v) covers image (2u, 2v) ±1
    big = xor.place_pad(pad, double, (12, 12, 3))
    np.testing.assert_array_equal(big[4, 6], pad[2, 3])
    np.testing.assert_array_equal(big[5, 7], pad[3, 4])  # 2.5 → 3, 3.5 → 4 (round half up)


def test_template_keyed_and_deterministic() -> None:
    image, faces = two_people()
    from jaxpriv.faces import extract_chips

    chip = extract_chips(xor.high_bits(image, 3), faces[:1])[0][0]
    pad_a, m_a = chip_pad(tiny_model(), chip, jax.random.key(1), 3)
    pad_b, m_b = chip_pad(tiny_model(), chip, jax.random.key(1), 3)
    pad_c, m_c = chip_pad(tiny_model(), chip, jax.random.key(2), 3)
    np.testing.assert_array_equal(pad_a, pad_b)
    np.testing.assert_array_equal(m_a, m_b)
    assert m_a.mean() == pytest.approx(0.4, abs=0.01)
    jaccard = (m_a & m_c).sum() / (m_a | m_c).sum()
    assert jaccard < 0.9  # another user's template differs ...
    assert jaccard > 0.1  # ... but both follow the same sensitivity map
    assert pad_a.max() < 8 and not pad_a[~m_a].any()  # P only inside M, k = 3 bits


def test_keyed_template_follows_scores() -> None:
    scores = jnp.tile(jnp.linspace(0, 1, 150)[None], (150, 1))  # sensitive on the right
    m = np.asarray(keyed_template(scores, jax.random.key(0), 0.3, 4, 0.15))
    assert m.mean() == pytest.approx(0.3, abs=0.005)
    assert m[:, :75].mean() < 0.01 and m[:, 120:].mean() > 0.9


# ------------------------------------------------------------------------------ files


@pytest.fixture
def protected_pair(tmp_path):  # noqa: ANN201
    out = tmp_path / "out" / "two_people.png"
    res = xor.protect_file(SAMPLES / "two_people.jpg", out, b"pw", 2, tiny_model(), FAST)
    return tmp_path, res


def test_file_roundtrip(protected_pair) -> None:  # noqa: ANN001
    tmp_path, res = protected_pair
    assert res.faces == 2 and res.key_file.name == "two_people.png.jpkey"
    restored = xor.restore_file(res.output, tmp_path / "r" / "x.png", b"pw", model=tiny_model())
    np.testing.assert_array_equal(load_image(restored), load_image(SAMPLES / "two_people.jpg"))


def test_wrong_password_writes_nothing(protected_pair) -> None:  # noqa: ANN001
    tmp_path, res = protected_pair
    with pytest.raises(K.KeyFileError, match="wrong password"):
        xor.restore_file(res.output, tmp_path / "r" / "x.png", b"pW", model=tiny_model())
    assert not (tmp_path / "r").exists()


def test_tampered_key_file(protected_pair) -> None:  # noqa: ANN001
    tmp_path, res = protected_pair
    data = bytearray(res.key_file.read_bytes())
    data[-20] ^= 0x10
    bad = tmp_path / "bad.jpkey"
    bad.write_bytes(bytes(data))
    with pytest.raises(K.KeyFileError):
        xor.restore_file(res.output, tmp_path / "r" / "x.png", b"pw", bad, tiny_model())
    assert not (tmp_path / "r").exists()


def test_edited_image_and_key_of_another_image(protected_pair) -> None:  # noqa: ANN001
    tmp_path, res = protected_pair
    pixels = load_image(res.output)
    pixels[10, 10, 0] ^= 1  # one low bit, far from the faces
    edited = save_image(tmp_path / "edited.png", pixels)
    with pytest.raises(JaxprivError, match="does not match its key file"):
        xor.restore_file(edited, tmp_path / "r" / "x.png", b"pw", res.key_file, tiny_model())
    other = xor.protect_file(SAMPLES / "obama.jpg", tmp_path / "o" / "obama.png", b"pw", 2,
                             tiny_model(), FAST)
    with pytest.raises(JaxprivError, match="does not match its key file"):
        xor.restore_file(res.output, tmp_path / "r" / "x.png", b"pw", other.key_file,
                         tiny_model())
    assert not (tmp_path / "r").exists()


def test_other_model_refused(protected_pair) -> None:  # noqa: ANN001
    tmp_path, res = protected_pair
    m = tiny_model()
    other = MaskModel(m.template_params, m.generator_params, TemplateSettings(fraction=0.3))
    with pytest.raises(JaxprivError, match="same model"):
        xor.restore_file(res.output, tmp_path / "r" / "x.png", b"pw", model=other)


def test_jpeg_refused_and_no_overwrite(protected_pair) -> None:  # noqa: ANN001
    tmp_path, res = protected_pair
    with pytest.raises(JaxprivError, match="PNG only"):
        xor.protect_file(SAMPLES / "obama.jpg", tmp_path / "o.jpg", b"pw", 2, tiny_model(), FAST)
    with pytest.raises(JaxprivError, match="PNG only"):
        xor.restore_file(res.output, tmp_path / "r.jpg", b"pw", model=tiny_model())
    before = res.output.read_bytes()
    with pytest.raises(JaxprivError, match="exists"):
        xor.protect_file(SAMPLES / "two_people.jpg", res.output, b"pw", 2, tiny_model(), FAST)
    assert res.output.read_bytes() == before
    assert not (tmp_path / "o.jpg").exists() and not (tmp_path / "r.jpg").exists()


def test_face_geometry_json_keeps_yunet_arcface_points() -> None:
    """The key file's face geometry round-trips exactly, YuNet's ArcFace points included (they
    used to be dropped on the way back); a face without them stays without; bad points are a
    key-file error."""
    lm = np.array([[10.5, 20.25], [30.0, 20.0], [12.0, 21.0], [28.0, 21.0], [20.0, 35.0]])
    arc = lm[[2, 3, 4, 0, 1]] + 0.125
    for face in (Face((1.0, 2.0, 50.5, 60.0), lm, 0.9, arc), Face((1.0, 2.0, 50.5, 60.0), lm)):
        back = xor.face_from_json(json.loads(json.dumps(xor.face_to_json(face))))
        assert back.box == face.box
        np.testing.assert_array_equal(back.landmarks, face.landmarks)
        if face.arcface_landmarks is None:
            assert back.arcface_landmarks is None
        else:
            np.testing.assert_array_equal(back.arcface_landmarks, face.arcface_landmarks)
    bad = xor.face_to_json(Face((1.0, 2.0, 50.5, 60.0), lm, 0.9, arc))
    bad["arcface_landmarks"] = bad["arcface_landmarks"][:4]
    with pytest.raises(K.KeyFileError, match="malformed face geometry"):
        xor.face_from_json(bad)

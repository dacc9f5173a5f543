"""SMNA Alg. 1 sensitivity maps: the vmapped/chunked map equals the literal per-pixel loop; chunk
sizes agree; the linearised map is the first-order term of the same change (small images)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxpriv.errors import JaxprivError

from .conftest import GLINT, rgb


@pytest.fixture(scope="module")
def face():
    """(recognizer, 150x150 dlib chip of a probe, embedding of the identity's reference chip)."""
    if not GLINT.is_dir():
        pytest.skip(f"glint faces not found at {GLINT}")
    from jaxpriv.faces import chips_from_aligned_crops
    from jaxpriv.recognizers import load_recognizer

    files = sorted((GLINT / "Barack_Obama").iterdir())[:2]
    chips = chips_from_aligned_crops(np.stack([rgb(f) for f in files]))
    rec = load_recognizer("dlib_resnet")
    return rec, chips[1], rec.embed(chips[:1])[0]


@pytest.mark.parametrize(("size", "color"), [(8, "black"), (12, "white")])
def test_exact_map_equals_literal_loop(face, size: int, color: str) -> None:
    from jaxpriv.smna.sensitivity import sensitivity_map, sensitivity_map_loop, to_smna_image

    rec, chip, ref = face
    image = to_smna_image(chip, size)
    loop = sensitivity_map_loop(rec, image, ref, color)
    exact = sensitivity_map(rec, image, ref, color, chunk=8)
    assert exact.shape == (size, size) and exact.dtype == np.float32
    np.testing.assert_allclose(exact, loop, atol=1e-5, rtol=0)
    assert np.abs(loop).max() > 1e-3  # pixels matter: the comparison means something


def test_chunk_sizes_agree_and_inputs(face) -> None:
    from jaxpriv.smna.sensitivity import sensitivity_map, to_smna_image

    rec, chip, ref = face
    image = to_smna_image(chip, 8)
    base = sensitivity_map(rec, image, ref, "black", chunk=8)
    odd = sensitivity_map(rec, image, ref, "black", chunk=3)  # 64 = 21*3 + 1: padded chunk
    # differently compiled chunks: ≈ 2e-7 apart here (map max 0.07), so 1e-4 of the map's scale
    np.testing.assert_allclose(odd, base, atol=1e-4 * np.abs(base).max(), rtol=0)
    as_float = sensitivity_map(rec, image.astype(np.float32) / 255.0, ref, 0.0, chunk=8)
    np.testing.assert_array_equal(as_float, base)
    with pytest.raises(JaxprivError):
        sensitivity_map(rec, image, ref, "grey")


def test_linear_map_is_first_order_change(face) -> None:
    from jaxpriv.smna.sensitivity import clean_distance, sensitivity_map, to_smna_image

    rec, chip, ref = face
    image = to_smna_image(chip, 8).astype(np.float32) / 255.0
    lin = sensitivity_map(rec, image, ref, "white", method="linear")
    d0 = clean_distance(rec, image, ref)
    t = 0.02  # move 2 % of the way to white: finite difference of the same directional change
    for flat in np.argsort(-np.abs(lin).ravel())[:3]:
        i, j = divmod(int(flat), 8)
        moved = image.copy()
        moved[i, j] += t * (1.0 - moved[i, j])
        fd = (clean_distance(rec, moved, ref) - d0) / t
        assert fd == pytest.approx(float(lin[i, j]), rel=0.1, abs=1e-4)


def test_to_smna_image_and_chip_resize() -> None:
    import jax.numpy as jnp

    from jaxpriv.smna.sensitivity import to_chip, to_smna_image

    rng = np.random.default_rng(0)
    chips = rng.integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    small = to_smna_image(chips)
    assert small.shape == (2, 64, 64, 3) and small.dtype == np.uint8
    np.testing.assert_array_equal(small[1], to_smna_image(chips[1]))
    flat = to_smna_image(np.full((150, 150, 3), 77, np.uint8))
    assert (flat == 77).all()
    up = to_chip(jnp.full((1, 64, 64, 3), 0.25, jnp.float32), 150)
    assert up.shape == (1, 150, 150, 3)
    np.testing.assert_allclose(np.asarray(up), 0.25, atol=1e-6)
    with pytest.raises(JaxprivError):
        to_smna_image(chips.astype(np.float32))

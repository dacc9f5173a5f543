"""Recognizer ensembles: spec parsing, each member's own chip warped from one working image, the
threshold-unit loss and its gradient."""

from __future__ import annotations

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpriv.errors import JaxprivError
from jaxpriv.faces import detect_faces, extract_chips
from jaxpriv.io import load_image
from jaxpriv.recognizers.ensemble import (
    WORK_MARGIN,
    check_spec,
    chip_affines,
    clean_embeddings,
    load_ensemble,
    parse_spec,
    working_chip,
)

from .conftest import SAMPLES


def test_parse_spec() -> None:
    assert parse_spec("dlib_resnet") == (("dlib_resnet", 1.0),)
    assert parse_spec(" dlib_resnet , sface:0.5") == (("dlib_resnet", 1.0), ("sface", 0.5))
    for bad, msg in (("dlib_resnet,", "empty recognizer name"), ("sface:0", "positive number"),
                     ("sface:x", "positive number"), ("sface,sface", "named twice")):
        with pytest.raises(JaxprivError, match=msg):
            parse_spec(bad)
    assert check_spec("dlib_resnet,sface") is None
    assert "unknown recognizer 'arcface'" in check_spec("dlib_resnet,arcface")
    with pytest.raises(JaxprivError, match="unknown recognizer 'arcface'"):
        load_ensemble("arcface")


@pytest.fixture(scope="module")
def small_face() -> tuple[np.ndarray, object]:
    """biden.jpg shrunk ×¼ (face ≈ 70 px): the chips upsample the photo, so neither dlib's
    pyramid nor OpenCV's unfiltered bilinear sampling aliases and both chips are bilinear views."""
    big = load_image(SAMPLES / "biden.jpg")
    image = cv2.resize(big, (big.shape[1] // 4, big.shape[0] // 4), interpolation=cv2.INTER_AREA)
    (face,) = detect_faces(image, detector="yunet")
    return image, face


def test_members_see_their_own_chips(small_face) -> None:
    image, face = small_face
    ens = load_ensemble("dlib_resnet,sface")
    assert ens.name == "dlib_resnet,sface"
    work, transform = working_chip(image, face)
    assert work.shape == (150 + 2 * WORK_MARGIN,) * 2 + (3,)
    affines = chip_affines(image, face, ens, transform)
    chips = ens.chips(jnp.asarray(work[None], jnp.float32), affines)
    dlib_chip = extract_chips(image, [face], "dlib150")[0][0].astype(np.float32)
    arc_chip = extract_chips(image, [face], "arcface112")[0][0].astype(np.float32)
    # dlib: the working chip is the dlib150 chip grown at the same pixel grid, so the member chip
    # is an integer-offset crop of it: equal up to float error in the composed affine.
    np.testing.assert_allclose(np.asarray(chips[0][0]), dlib_chip, atol=0.5)
    np.testing.assert_array_equal(work[WORK_MARGIN:-WORK_MARGIN, WORK_MARGIN:-WORK_MARGIN],
                                  dlib_chip.astype(np.uint8))
    # ArcFace: a second bilinear resampling (photo → working chip → crop) blurs by under half a
    # pixel's interpolation: measured mean |Δ| 0.8-1.2 grey levels on such faces, where moving
    # the crop by half a pixel gives 2.2-4.0. Tolerance: mean 1.5 levels.
    diff = np.abs(np.asarray(chips[1][0]) - arc_chip)
    assert diff.mean() <= 1.5
    shifted = affines.copy()
    shifted[1, :, 2] += 0.5
    off = np.abs(np.asarray(ens.chips(jnp.asarray(work[None], jnp.float32), shifted)[1][0])
                 - arc_chip)
    assert off.mean() > diff.mean() + 0.5  # the check can see half a pixel


def test_loss_in_threshold_units_and_gradient(small_face) -> None:
    image, face = small_face
    ens = load_ensemble("dlib_resnet,sface:0.5")
    work, transform = working_chip(image, face)
    affines = chip_affines(image, face, ens, transform)
    refs = clean_embeddings(ens, image, face)
    x = jnp.asarray(work[None], jnp.float32) / 255.0
    total, dists = ens.loss(ens.params, x, affines, refs)
    dlib_rec, sface_rec = ens.members
    expected = dists[0] / dlib_rec.threshold + 0.5 * dists[1] / sface_rec.threshold
    np.testing.assert_allclose(np.asarray(total), np.asarray(expected), rtol=1e-6)
    # the unedited working chip is its own identity for both members (distance well under each
    # threshold: the ArcFace view differs from extract_chips' by the resampling blur only)
    assert float(dists[0][0]) < 0.1 * dlib_rec.threshold
    assert float(dists[1][0]) < 0.3 * sface_rec.threshold

    def loss(params, v: jax.Array) -> jax.Array:  # noqa: ANN001
        return ens.loss(params, v, affines, refs)[0].sum()

    grad = np.asarray(jax.jit(jax.grad(loss, argnums=1))(ens.params, x))[0]
    assert np.all(np.isfinite(grad))
    # both members' chips pull on the working pixels: the forehead rows above the dlib150 chip
    # are seen by SFace only, the dlib chip's interior by both
    above = np.abs(grad[: WORK_MARGIN - 10, WORK_MARGIN:-WORK_MARGIN]).sum()
    inner = np.abs(grad[WORK_MARGIN:-WORK_MARGIN, WORK_MARGIN:-WORK_MARGIN]).sum()
    assert above > 0 and inner > 0

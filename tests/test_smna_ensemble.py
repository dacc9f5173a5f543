"""SMNA maps with a recognizer ensemble: the map of Σ τ_i·d_i/t_i is the τ-weighted sum of the
members' maps, each in units of its own threshold (Alg. 1 is linear in the distance)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxpriv.errors import JaxprivError

from .conftest import GLINT, rgb


@pytest.fixture(scope="module")
def inputs():
    """An 8×8 SMNA image of a real glint face (dlib chip, area-downsampled), each member's
    affine into it and each member's embedding of the identity's reference photo."""
    if not GLINT.is_dir():
        pytest.skip(f"glint faces not found at {GLINT}")
    from jaxpriv.faces import extract_chips
    from jaxpriv.faces.align import photo_from_aligned_crop
    from jaxpriv.recognizers.ensemble import chip_affines, clean_embeddings, load_ensemble
    from jaxpriv.smna.sensitivity import smna_transform, to_smna_image

    ens = load_ensemble("dlib_resnet,sface:0.5")
    files = sorted((GLINT / "Barack_Obama").iterdir())[:2]
    (ref_photo, ref_face), (photo, face) = (photo_from_aligned_crop(rgb(f)) for f in files)
    chips, transforms = extract_chips(photo, [face], "dlib150")
    image = to_smna_image(chips[0], 8)
    affines = chip_affines(photo, face, ens, smna_transform(transforms[0], 150, 8))
    refs = clean_embeddings(ens, ref_photo, ref_face)
    return ens, image[None], [r[None] for r in refs], affines[None]


@pytest.mark.parametrize("method", ["exact", "linear"])
def test_ensemble_map_is_weighted_sum_of_member_maps(inputs, method: str) -> None:
    from jaxpriv.recognizers.ensemble import Ensemble
    from jaxpriv.smna.sensitivity import sensitivity_maps

    ens, image, refs, affines = inputs
    total, d0 = sensitivity_maps(ens, image, refs, "black", method=method, affines=affines)
    expected = np.zeros_like(total)
    d_expected = np.zeros_like(d0)
    for i, (rec, tau) in enumerate(zip(ens.members, ens.taus, strict=True)):
        one = Ensemble((rec,), (1.0,))  # the member alone, seeing the same chip: its map and
        m, d = sensitivity_maps(one, image, [refs[i]], "black", method=method,  # distance are
                                affines=affines[:, i : i + 1])  # in units of its threshold
        assert np.abs(m).max() > 1e-3  # each member's pixels matter
        expected += tau * m
        d_expected += tau * d
    # float32 maps of distances ≈ 1 threshold unit; XLA reductions differ by ~1e-6 between
    # compilations: tolerance 2e-5 threshold units
    np.testing.assert_allclose(total, expected, atol=2e-5, rtol=0)
    np.testing.assert_allclose(d0, d_expected, atol=2e-5, rtol=0)


def test_ensemble_maps_need_refs_and_affines(inputs) -> None:
    from jaxpriv.smna.sensitivity import sensitivity_maps

    ens, image, refs, _ = inputs
    with pytest.raises(JaxprivError, match="needs 2 reference arrays"):
        sensitivity_maps(ens, image, refs, "black")


"""Face swap of paper 001 (§4.3): warped back with the inverse alignment, seamlessly cloned
inside the face mask, and nothing outside the mask changes."""

from __future__ import annotations

import numpy as np
import pytest

from jaxpriv.deid.blend import face_mask, scaled_transform, seamless_paste, swap_face
from jaxpriv.deid.project import resize_chips
from jaxpriv.faces import detect_faces, extract_chips

from .conftest import SAMPLES, rgb


@pytest.fixture(scope="module")
def two_people():
    image = rgb(SAMPLES / "two_people.jpg")
    faces = detect_faces(image)
    chips, transforms = extract_chips(image, faces)
    return image, faces, chips, transforms


def test_scaled_transform_maps_the_same_points() -> None:
    t150 = np.array([[2.0, 0.1, 30.0], [-0.1, 2.0, 40.0]])
    t64 = scaled_transform(t150, 64)
    # the centre of the 64-px chip and of the 150-px chip are the same image point
    c64 = t64 @ np.array([31.5, 31.5, 1.0])
    c150 = t150 @ np.array([74.5, 74.5, 1.0])
    assert np.allclose(c64, c150)


@pytest.mark.parametrize("mask", ["hull68", "ellipse"])
def test_swap_changes_only_the_face_region(two_people, mask: str) -> None:
    image, faces, chips, transforms = two_people
    rng = np.random.default_rng(0)
    out = image
    union = np.zeros(image.shape[:2], bool)
    for face, transform in zip(faces, transforms, strict=True):
        chip = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        out, region = swap_face(out, face, chip, transform, mask)
        union |= region
        x0, y0, x1, y1 = face.box
        ys, xs = np.nonzero(region)
        # the region is the face: around the detector box, well inside the photo
        assert region.sum() > 0.3 * (x1 - x0) * (y1 - y0)
        assert xs.min() > x0 - 0.5 * (x1 - x0) and xs.max() < x1 + 0.5 * (x1 - x0)
    assert np.array_equal(out[~union], image[~union])
    assert (out[union] != image[union]).any(-1).mean() > 0.5


def test_self_paste_is_nearly_identity(two_people) -> None:
    """Pasting the face's own (downsized) chip back changes the face only a little."""
    image, faces, chips, transforms = two_people
    small = resize_chips(chips, 64)
    out, region = swap_face(image, faces[0], small[0], transforms[0])
    diff = np.abs(out.astype(int) - image.astype(int))[region].mean()
    assert diff < 12.0
    assert np.array_equal(out[~region], image[~region])


def test_seamless_paste_at_the_border_and_empty_mask() -> None:
    image = np.full((40, 50, 3), 100, np.uint8)
    source = np.full_like(image, 200)
    mask = np.zeros((40, 50), bool)
    assert np.array_equal(seamless_paste(image, source, mask), image)
    mask[:10, :12] = True  # touches two image borders
    out = seamless_paste(image, source, mask)
    assert np.array_equal(out[~mask], image[~mask])


def test_ellipse_mask_inside_photo(two_people) -> None:
    image, faces, _, transforms = two_people
    m = face_mask(image, faces[0], transforms[0], "ellipse")
    assert m.shape == image.shape[:2] and m.any()
    with pytest.raises(ValueError):
        face_mask(image, faces[0], transforms[0], "square")

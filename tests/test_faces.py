"""Detection, dlib-exact chips, paste-back, and chips from pre-aligned crops."""

from __future__ import annotations

import cv2
import dlib
import numpy as np
import pytest

from jaxpriv.errors import JaxprivError
from jaxpriv.faces import (
    chip_mask,
    chips_from_aligned_crops,
    detect_faces,
    extract_chips,
    paste_chip,
    require_one_face,
)
from jaxpriv.recognizers import load_recognizer

from .conftest import GLINT, SCENES, rgb


@pytest.mark.parametrize("name", ["obama.jpg", "two_people.jpg", "obama-1080p.jpg",
                                  "obama-240p.jpg"])
def test_chips_identical_to_dlib(shared_data, dlib_reference, name: str) -> None:
    det, sp, _ = dlib_reference
    img = rgb(SCENES / name)
    faces = detect_faces(img)
    rects = sorted(det(img, 1), key=lambda r: r.left())
    assert len(faces) == len(rects) >= 1
    chips, transforms = extract_chips(img, faces)
    for chip, rect in zip(chips, rects, strict=True):
        ref = np.asarray(dlib.get_face_chip(img, sp(img, rect), 150, 0.25))
        np.testing.assert_array_equal(chip, ref)
    assert transforms.shape == (len(faces), 2, 3)


def test_transform_maps_chip_to_image(shared_data) -> None:
    """Chip pixels sampled through the affine land on the same image content."""
    img = rgb(SCENES / "obama-240p.jpg")  # small face: no pyramid downsampling in dlib
    chips, transforms = extract_chips(img)
    t = transforms[0]
    ys, xs = np.mgrid[40:110:7, 40:110:7]
    pts = t @ np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    sampled = img[np.rint(pts[1]).astype(int), np.rint(pts[0]).astype(int)].astype(float)
    chip_vals = chips[0][ys.ravel(), xs.ravel()].astype(float)
    assert np.abs(sampled - chip_vals).mean() < 12  # nearest-neighbour vs bilinear sampling


def test_paste_back_is_local_and_exact(shared_data) -> None:
    img = rgb(SCENES / "two_people.jpg")
    original = img.copy()
    chips, transforms = extract_chips(img)
    same = paste_chip(img, chips[0], transforms[0], reference=chips[0])
    np.testing.assert_array_equal(same, img)  # unedited chip: image bit-identical
    edited = chips[0].copy()
    edited[50:100, 50:100] = 0
    out = paste_chip(img, edited, transforms[0], reference=chips[0])
    changed = np.argwhere(np.any(out != img, axis=-1))
    corners = transforms[0] @ np.array([[50, 99, 50, 99], [50, 50, 99, 99], [1, 1, 1, 1]])
    assert len(changed) > 0
    for axis, coord in ((1, corners[0]), (0, corners[1])):  # (x, y) inside the edited square
        lo, hi = changed[:, axis].min(), changed[:, axis].max()
        assert coord.min() - 2 <= lo <= hi <= coord.max() + 2
    np.testing.assert_array_equal(img, original)  # input untouched


def test_paste_matches_a_full_frame_warp(shared_data) -> None:
    """paste_chip works in the chip's footprint only; a whole-image cv2 warp of the same change
    gives the same photo (up to OpenCV's 1/32-px interpolation grid, which moves with the
    window's origin)."""
    img = rgb(SCENES / "two_people.jpg")
    chips, transforms = extract_chips(img)
    rng = np.random.default_rng(0)
    edited = np.clip(chips[1] + rng.normal(0, 20, chips[1].shape), 0, 255).astype(np.float32)
    out = paste_chip(img, edited, transforms[1], reference=chips[1])
    h, w = img.shape[:2]
    warped = cv2.warpAffine(edited - chips[1], transforms[1], (w, h), flags=cv2.INTER_LINEAR)
    weight = cv2.warpAffine(chip_mask(150), transforms[1], (w, h), flags=cv2.INTER_LINEAR)
    weight = weight[..., None]
    full = np.where(weight > 0, np.clip(np.rint(img + weight * warped), 0, 255), img)
    diff = np.abs(out.astype(int) - full)
    assert (out != img).any(-1).sum() > 5000
    assert diff.max() <= 6 and (diff > 0).mean() < 0.005


def test_no_face_and_bad_input() -> None:
    blank = np.full((200, 200, 3), 127, np.uint8)
    assert detect_faces(blank) == []
    with pytest.raises(JaxprivError, match="blank.png: no face found"):
        require_one_face(blank, "blank.png")
    with pytest.raises(JaxprivError, match="uint8 RGB"):
        detect_faces(np.zeros((10, 10), np.uint8))


def test_aligned_crops_give_valid_chips(shared_data) -> None:
    """Pre-aligned 112×112 glint crops: same person < 0.6 ≤ different people."""
    names = sorted(p.name for p in GLINT.iterdir())[:4]
    crops = [[rgb(p) for p in sorted((GLINT / n).glob("*.png"))[:2]] for n in names]
    assert crops[0][0].shape == (112, 112, 3)
    chips = chips_from_aligned_crops(np.stack([c for pair in crops for c in pair]))
    assert chips.shape == (8, 150, 150, 3)
    emb = load_recognizer("dlib_resnet").embed(chips).reshape(4, 2, -1)
    same = np.linalg.norm(emb[:, 0] - emb[:, 1], axis=-1)
    diff = [np.linalg.norm(emb[i, 0] - emb[j, 0]) for i in range(4) for j in range(i + 1, 4)]
    assert same.max() < 0.6 <= min(diff), (same, diff)

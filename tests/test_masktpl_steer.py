"""The steered pad (issue 20.1): it moves the face away from its identity for the recognizers of
the superposition, each seeing its own aligned chip, inside the template and the k-bit box, and
the key file restores it exactly."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from jaxpriv.cli import main
from jaxpriv.faces import detect_faces, extract_chips
from jaxpriv.io import load_image
from jaxpriv.masktpl import steer, xor
from jaxpriv.recognizers.ensemble import chip_affines, load_ensemble, warp

from .conftest import SAMPLES
from .test_masktpl_xor import tiny_model


@functools.lru_cache(maxsize=1)
def obama() -> tuple[np.ndarray, list]:
    image = load_image(SAMPLES / "obama.jpg")
    return image, detect_faces(image)


def test_each_member_sees_its_own_chip_of_the_working_crop() -> None:
    """The working image is a crop of the photo at an offset; the members' chips warped from it
    are their own aligned chips (SFace: ArcFace-112, not a resized dlib chip). Bilinear warp vs
    dlib's / OpenCV's own sampling: mean difference within a few grey levels of 255."""
    image, faces = obama()
    ens = load_ensemble("dlib_resnet,sface")
    mask = np.zeros(image.shape[:2], bool)
    y0, y1, x0, x1 = steer.working_box(image, faces[0], ens, mask)
    assert (y1 - y0, x1 - x0) < image.shape[:2]  # a crop, not the photo
    crop = image[y0:y1, x0:x1].astype(np.float32)[None] / 255.0
    shift = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]])
    affines = chip_affines(image, faces[0], ens, shift)
    for i, rec in enumerate(ens.members):
        want = extract_chips(image, faces[:1], rec)[0][0].astype(np.float32)
        got = np.asarray(warp(crop, affines[i][None], rec.input_size))[0] * 255.0
        assert got.shape == want.shape
        assert np.abs(got - want).mean() < 6.0, rec.name


def test_steering_moves_away_inside_template_and_box() -> None:
    """A few steps against dlib push the protected face away from its clean embedding more than
    the generator's pad does; only the k low bits of template pixels change; the sealed pad
    restores the original exactly."""
    image, faces = obama()
    k = 3
    rec = load_ensemble("dlib_resnet").members[0]
    pad, mask = xor.face_pads(tiny_model(), image, faces, jax.random.key(0), k)[0]
    steered, rel = steer.steer_face(image, faces[0], mask, image, k,
                                    load_ensemble("dlib_resnet"), steps=3, margin=9.0)
    changed = np.any(steered != image, axis=-1)
    assert changed.any() and not changed[~mask].any()
    np.testing.assert_array_equal(xor.high_bits(steered, k), xor.high_bits(image, k))

    def shift(x: np.ndarray) -> float:
        e = rec.embed(extract_chips(x, faces[:1], rec)[0])
        e0 = rec.embed(extract_chips(image, faces[:1], rec)[0])
        return float(np.linalg.norm(e - e0))

    assert shift(steered) > 1.5 * shift(image ^ pad)
    assert rel[0] > 0.1
    stored = xor.decode_pad(xor.encode_pad(image ^ steered, k), image.shape, k)
    np.testing.assert_array_equal(xor.restore_image(steered, stored), image)


def test_unknown_recognizer_is_a_one_line_error(tmp_path, capsys) -> None:  # noqa: ANN001
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery staple\n")
    rc = main(["protect", "--method", "mask", "--recognizer", "dlib_resnet,nosuch",
               "--password-file", str(pw), str(SAMPLES / "obama.jpg"), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "nosuch" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("steps", [-1])
def test_steps_checked(steps: int) -> None:
    from jaxpriv.errors import JaxprivError
    from jaxpriv.methods import get_method

    with pytest.raises(JaxprivError, match="--steps"):
        get_method("mask").make(steps=steps)


def test_faces_of_another_size_share_one_compilation() -> None:
    """Two faces whose working crops differ in size but fall in one bucket: the step loop is
    traced and compiled once (issue 20: a compile per crop size cost minutes per face)."""
    import cv2

    image, faces = obama()
    ens = load_ensemble("dlib_resnet")
    small = cv2.resize(image, None, fx=0.85, fy=0.85, interpolation=cv2.INTER_AREA)
    photos = [(image, faces[0]), (small, detect_faces(small)[0])]
    sides = []
    for photo, face in photos:
        y0, y1, x0, x1 = steer.working_box(photo, face, ens, np.zeros(photo.shape[:2], bool))
        sides.append(max(y1 - y0, x1 - x0))
    assert sides[0] != sides[1] and steer.bucket(sides[0]) == steer.bucket(sides[1])
    before = steer._steer._cache_size()
    for photo, face in photos:
        mask = np.zeros(photo.shape[:2], bool)
        mask[int(face.box[1]):int(face.box[3]), int(face.box[0]):int(face.box[2])] = True
        out, rel = steer.steer_face(photo, face, mask, photo, 2, ens, steps=1, margin=9.25)
        assert np.all(np.abs(out.astype(int) - photo) < 4) and len(rel) == 1
    assert steer._steer._cache_size() == before + 1

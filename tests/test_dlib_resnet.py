"""dlib ResNet port: parity with dlib-bin's own descriptors, and a parser that fails cleanly."""

from __future__ import annotations

import dlib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxpriv.errors import JaxprivError
from jaxpriv.faces import chips_from_aligned_crops
from jaxpriv.recognizers import load_recognizer
from jaxpriv.recognizers.dlib_resnet import DatFormatError, default_dat_path, load_dat, parse_dat

from .conftest import GLINT, SCENES, SHARED, rgb


@pytest.fixture(scope="module")
def dat_bytes() -> bytes:
    return default_dat_path().read_bytes()


def _reference_chips(dlib_reference) -> list[np.ndarray]:
    """≥ 20 chips from mixed sources, cut by dlib itself (get_face_chip)."""
    det, sp, _ = dlib_reference
    chips = []
    photos = [SCENES / n for n in ("obama.jpg", "obama2.jpg", "biden.jpg", "two_people.jpg",
                                   "obama-240p.jpg", "alex-lacamoire.png")]
    photos += sorted((SHARED / "scenes" / "dlib").glob("*.jpg"))[:3]
    for p in photos:
        img = rgb(p)
        for r in det(img, 1):
            chips.append(np.asarray(dlib.get_face_chip(img, sp(img, r), 150, 0.25)))
    names = sorted(p.name for p in GLINT.iterdir())[:8]
    glint = [sorted((GLINT / name).glob("*.png"))[0] for name in names]
    chips += list(chips_from_aligned_crops(np.stack([rgb(p) for p in glint])))
    return chips


def test_parity_with_dlib(shared_data, dlib_reference) -> None:
    _, _, fr = dlib_reference
    chips = np.stack(_reference_chips(dlib_reference))
    assert len(chips) >= 20
    ref = np.stack([np.asarray(fr.compute_face_descriptor(c)) for c in chips])
    ours = load_recognizer("dlib_resnet").embed(chips)
    assert ours.shape == (len(chips), 128) and ours.dtype == np.float32
    err = np.abs(ours - ref).max()
    assert err <= 1e-4, err
    # the check is not vacuous: descriptors differ from face to face by far more than that
    assert np.abs(ref[0] - ref[1]).max() > 0.01


def test_recognizer_interface() -> None:
    rec = load_recognizer("dlib_resnet")
    assert (rec.name, rec.input_size, rec.threshold) == ("dlib_resnet", 150, 0.6)
    with pytest.raises(JaxprivError, match="shape"):
        rec.embed(np.zeros((1, 112, 112, 3), np.uint8))
    with pytest.raises(JaxprivError, match="uint8"):
        rec.embed(np.zeros((1, 150, 150, 3), np.float32))
    with pytest.raises(JaxprivError, match="unknown recognizer 'vgg'"):
        load_recognizer("vgg")


def test_parser_follows_structure(dat_bytes: bytes) -> None:
    net = parse_dat(dat_bytes)
    kinds = [layer.kind for layer in net.layers]
    assert kinds[:4] == ["con_4", "affine_", "relu_", "max_pool_2"] and kinds[-1] == "fc_2"
    assert kinds.count("con_4") == 29 and kinds.count("add_prev_") == 14
    assert net.input_mean == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert net.layers[0].arrays["kernel"].shape == (7, 7, 3, 32)


@pytest.mark.parametrize("cut", [0, 1, 30, 334, 20_000, 22_466_000])
def test_truncated_file_names_offset(dat_bytes: bytes, cut: int) -> None:
    with pytest.raises(DatFormatError, match=r"at byte \d+"):
        parse_dat(dat_bytes[:cut])


def test_corrupted_file_names_offset(dat_bytes: bytes, tmp_path) -> None:
    bad = bytearray(dat_bytes)
    bad[334 + 2 : 334 + 7] = b"XXX_4"  # the first layer's name
    with pytest.raises(DatFormatError, match=r"at byte 334: unknown layer type 'XXX_4'"):
        parse_dat(bytes(bad))
    path = tmp_path / "model.dat"
    path.write_bytes(dat_bytes[:-10])
    with pytest.raises(DatFormatError, match=r"model.dat: .*at byte \d+"):
        load_dat(path)
    with pytest.raises(JaxprivError, match="cannot read"):
        load_dat(tmp_path / "missing.dat")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_header_fails_cleanly(dat_bytes: bytes, data) -> None:
    """Random edits in the structural part of the file: a clean error or a valid parse."""
    head = bytearray(dat_bytes[:25_000])
    for _ in range(data.draw(st.integers(1, 4))):
        head[data.draw(st.integers(0, len(head) - 1))] = data.draw(st.integers(0, 255))
    try:
        parse_dat(bytes(head) + dat_bytes[25_000:])
    except DatFormatError as e:
        assert "at byte" in str(e)

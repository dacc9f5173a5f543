"""Licence plates (paper 001 §5.3.2, Table A1): annotations, code mapping, Laplace noise, wrap,
rendering, warp, and `jaxpriv protect --plates`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxpriv.deid import plates as P
from jaxpriv.deid.plates.render import CN_BLUE, CN_WHITE, LATIN_BACKGROUND, LATIN_INK
from jaxpriv.errors import JaxprivError

from .conftest import SHARED

CCPD = SHARED / "plates" / "ccpd" / "annotated"
# a real CCPD file name (shared/data/plates/ccpd/annotated, MIT)
NAME = ("0283908045977-91_84-150&476_476&577-482&585_148&572_139&473_473&486"
        "-0_0_6_24_16_27_27-79-25.jpg")


def test_parse_ccpd_name() -> None:
    p = P.parse_ccpd_name(NAME)
    assert p.text == "皖AG0S33"  # 皖 = provinces[0], A = alphabets[0], ads 6 24 16 27 27
    assert p.box == (150, 476, 476, 577)
    # file order is RB, LB, LT, RT; stored TL, TR, BR, BL
    np.testing.assert_array_equal(p.corners, [[139, 473], [473, 486], [482, 585], [148, 572]])
    # an "O" entry (last index of a list) means no character
    short = NAME.replace("0_0_6_24_16_27_27", "12_1_1_2_3_4_34")
    assert P.parse_ccpd_name(short).text == "京BBCDE"
    for bad in ("photo.jpg", NAME.replace("0_0_6", "0_0_99"), NAME.replace("&476_", "_"),
                NAME.replace("0_0_6", "-1_0_6")):
        with pytest.raises(JaxprivError, match="not a CCPD"):
            P.parse_ccpd_name(bad)


def test_read_openalpr(tmp_path: Path) -> None:
    txt = tmp_path / "car.txt"
    txt.write_text("car.jpg\t10\t20\t100\t50\tAB12CD\n")
    ((name, plate),) = P.read_openalpr(txt)
    assert name == "car.jpg" and plate.text == "AB12CD" and plate.box == (10, 20, 110, 70)
    np.testing.assert_array_equal(plate.corners, [[10, 20], [110, 20], [110, 70], [10, 70]])
    txt.write_text("car.jpg 10 20\n")
    with pytest.raises(JaxprivError, match="tab-separated"):
        P.read_openalpr(txt)


def test_code_mapping_round_trip() -> None:
    # the paper's example (§5.3.2): "Beijing A132B3" -> 00 10 01 03 02 11 03
    assert P.encode_plate("京A132B3") == (0, 10, 1, 3, 2, 11, 3)
    assert len(P.PROVINCES) == 31 and len(set(P.PROVINCES)) == 31
    assert P.PROVINCES[11] == "皖" and P.PROVINCES[4] == "晋" and P.PROVINCES[12] == "陕"
    assert set(P.PROVINCES) == set(P.CCPD_PROVINCES[:31])  # Table A1 = CCPD's, other order
    for code, prov in enumerate(P.PROVINCES):
        text = f"{prov}A12345"
        assert P.encode_plate(text)[0] == code
        assert P.decode_plate(P.encode_plate(text), "cn") == text
    for i, letter in enumerate(P.CN_LETTERS):
        text = f"京{letter}{letter}0{letter}9{letter}"
        codes = P.encode_plate(text)
        assert codes[1] == codes[2] == codes[4] == codes[6] == 10 + i
        assert P.decode_plate(codes, "cn") == text
    for d in P.DIGITS:
        text = f"京A{d}{d}{d}{d}{d}"
        assert P.encode_plate(text)[2:] == (int(d),) * 5
        assert P.decode_plate(P.encode_plate(text), "cn") == text
    latin = P.DIGITS + P.LATIN_LETTERS
    assert P.encode_plate(latin) == tuple(range(36))
    assert P.decode_plate(range(36), "latin") == latin
    assert P.encode_plate("ab-12 c") == P.encode_plate("AB12C")
    for bad in ("京I12345", "京A12O45", "警A12345", "AB#1", ""):
        with pytest.raises(JaxprivError):
            P.encode_plate(bad)


def test_wrap_is_cyclic_per_position() -> None:
    ranges = P.code_ranges("京A12345")
    assert ranges.tolist() == [[0, 30], [10, 33]] + [[0, 33]] * 5
    got = P.wrap_codes(np.array([31.2, 34, -1, 33.6, -0.6, 68, 17.4]), ranges)
    assert got.tolist() == [0, 10, 33, 0, 33, 0, 17]
    assert P.wrap_codes(np.array([-1.0, 9.0]), ranges[:2]).tolist() == [30, 33]
    assert P.code_ranges("AB12").tolist() == [[10, 35], [10, 35], [0, 9], [0, 9]]


_cn_plate = st.builds(
    lambda p, a, rest: p + a + "".join(rest),
    st.sampled_from(P.PROVINCES), st.sampled_from(P.CN_LETTERS),
    st.lists(st.sampled_from(P.DIGITS + P.CN_LETTERS), min_size=5, max_size=6))
_latin_plate = st.text(P.DIGITS + P.LATIN_LETTERS, min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(text=st.one_of(_cn_plate, _latin_plate), seed=st.integers(0, 2**31 - 1),
       epsilon=st.floats(0.01, 100.0))
def test_every_synthetic_plate_is_valid(text: str, seed: int, epsilon: float) -> None:
    new = P.perturb_plate(text, jax.random.key(seed), epsilon)
    scheme = P.plate_scheme(text)
    assert P.plate_scheme(new) == scheme and P.is_valid_plate(new, scheme)
    assert len(new) == len(text)
    if scheme == "latin":  # each position keeps its class
        assert [c.isdigit() for c in new] == [c.isdigit() for c in text]


def test_laplace_scale_is_sensitivity_over_epsilon() -> None:
    key = jax.random.key(3)
    for eps, df in [(1.0, 1.0), (0.5, 1.0), (4.0, 2.0)]:
        x = np.asarray(P.code_noise(key, 40000, eps, df), np.float64)
        ref = np.asarray(jax.random.laplace(key, (40000,)), np.float64) * df / eps
        np.testing.assert_allclose(x, ref, rtol=1e-6)
        assert np.mean(np.abs(x)) == pytest.approx(df / eps, rel=0.03)  # E|Lap(b)| = b
    with pytest.raises(JaxprivError):
        P.code_noise(key, 3, 0.0)
    # small ε changes almost every character, large ε almost none
    texts = [P.perturb_plate("京A12345", jax.random.key(i), 0.05) for i in range(20)]
    assert np.mean([P.edit_distance("京A12345", t) for t in texts]) > 5
    texts = [P.perturb_plate("京A12345", jax.random.key(i), 50.0) for i in range(20)]
    assert all(t == "京A12345" for t in texts)


def test_edit_distance() -> None:
    assert P.edit_distance("京A12345", "京A12345") == 0
    assert P.edit_distance("京A12345", "沪A12354") == 3
    assert P.edit_distance("ABC", "") == 3 and P.edit_distance("", "AB") == 2
    assert P.edit_distance("KITTEN", "SITTING") == 3


def _near_segment(img: np.ndarray, a: tuple, b: tuple, tol: float) -> np.ndarray:
    """Per pixel: is its colour within ``tol`` of the segment between colours a and b?"""
    x = img.reshape(-1, 3).astype(np.float64)
    a_, d = np.asarray(a, np.float64), np.subtract(b, a).astype(np.float64)
    t = np.clip((x - a_) @ d / (d @ d), 0, 1)
    return np.linalg.norm(x - (a_ + t[:, None] * d), axis=1) <= tol


def test_render_size_and_colours() -> None:
    img = P.render_plate("京A132B3", (220, 70))
    assert img.shape == (70, 220, 3) and img.dtype == np.uint8
    px = img.reshape(-1, 3).astype(int)
    blue = np.all(np.abs(px - CN_BLUE) <= 6, axis=1).mean()
    white = np.all(np.abs(px - CN_WHITE) <= 12, axis=1).mean()
    assert blue > 0.5 and white > 0.12  # blue background, white glyphs and frame
    assert _near_segment(img, CN_BLUE, CN_WHITE, 8).all()  # nothing but blue/white blends
    assert P.render_plate("京A132B3").shape == (140, 440, 3)
    latin = P.render_plate("AB12CD", (120, 60))
    assert latin.shape == (60, 120, 3)
    assert _near_segment(latin, LATIN_BACKGROUND, LATIN_INK, 8).all()
    assert (latin.mean(-1) < 100).mean() > 0.08  # dark glyphs on a light plate
    assert P.font_path().suffix == ".otf" and "site-packages" in str(P.font_path())


@pytest.mark.parametrize("harmonize", [False, True])
def test_warp_changes_only_pixels_inside_the_quadrilateral(harmonize: bool) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    for corners in ([[30.3, 40.2], [120.7, 30.1], [128.4, 70.6], [35.5, 85.9]],
                    [[-20, 90], [60, 95], [58, 140], [-22, 130]]):  # partly outside the image
        corners = np.asarray(corners, np.float64)
        out = P.paste_plate(image, P.render_plate("京A132B3", (90, 30)), corners, harmonize)
        changed = np.any(out != image, axis=-1)
        ys, xs = np.nonzero(changed)
        dist = [cv2.pointPolygonTest(corners.astype(np.float32), (float(x), float(y)), True)
                for x, y in zip(xs, ys, strict=True)]
        assert min(dist) >= -1.0  # every changed pixel is in the quad (up to its edge pixels)
        inside = P.plate_mask(image.shape, corners)
        assert changed[inside].mean() > 0.9


def test_deidentify_plates_is_keyed_and_local(shared_data: Path) -> None:
    from jaxpriv.io import load_image

    image = load_image(CCPD / NAME)
    plate = P.parse_ccpd_name(NAME)
    a, texts_a = P.deidentify_plates_with_texts(image, [plate], jax.random.key(1), 1.0)
    b = P.deidentify_plates(image, [plate], jax.random.key(1), 1.0)
    np.testing.assert_array_equal(a, b)
    texts = {P.deidentify_plates_with_texts(image, [plate], jax.random.key(k), 0.5)[1][0]
             for k in range(6)}
    assert len(texts) > 1 and all(P.is_valid_plate(t, "cn") for t in texts)
    outside = ~P.plate_mask(image.shape, plate.corners)
    np.testing.assert_array_equal(a[outside], image[outside])
    assert np.array_equal(P.deidentify_plates(image, [], jax.random.key(0), 1.0), image)


def test_plate_source_json(tmp_path: Path) -> None:
    image = np.full((60, 100, 3), 90, np.uint8)
    (tmp_path / "a.png").write_bytes(b"")  # only its path matters to the lookup
    spec = tmp_path / "plates.json"
    corners = [[10, 10], [80, 12], [80, 40], [10, 38]]
    spec.write_text(json.dumps([{"image": "a.png", "corners": corners, "text": "AB123"}]))
    apply = P.plate_source(str(spec), epsilon=2.0)
    out, n = apply(tmp_path / "a.png", image, jax.random.key(0))
    assert n == 1 and not np.array_equal(out, image)
    out, n = apply(tmp_path / "other.png", image, jax.random.key(0))
    assert n == 0 and np.array_equal(out, image)
    spec.write_text(json.dumps([{"image": "a.png", "corners": corners[:3], "text": "AB1"}]))
    with pytest.raises(JaxprivError, match="entry 0"):
        P.plate_source(str(spec))
    spec.write_text(json.dumps([{"image": "a.png", "corners": [[0, 0], [1e9, 0], [1e9, 9],
                                                                 [0, 9]], "text": "AB1"}]))
    with pytest.raises(JaxprivError, match="within"):
        P.plate_source(str(spec))
    with pytest.raises(JaxprivError, match="not a CCPD"):
        P.plate_source("ccpd-names")(tmp_path / "a.png", image, jax.random.key(0))


def test_cli_plates_only(tmp_path: Path, shared_data: Path) -> None:
    from jaxpriv.io import load_image

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(CCPD / NAME, src / NAME)
    out_dir = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "jaxpriv.cli", "protect", str(src), "-o",
                          str(out_dir), "--method", "none", "--plates", "ccpd-names",
                          "--format", "png", "--json", str(tmp_path / "run.json")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = out_dir / "0001.png"  # a neutral name: the CCPD name encodes the plate (issue 15.2)
    assert out.is_file() and "1 protected" in res.stdout
    assert json.loads((tmp_path / "run.json").read_text())["files"][0]["plates"] == 1
    before, after = load_image(src / NAME), load_image(out)
    inside = P.plate_mask(before.shape, P.parse_ccpd_name(NAME).corners)
    np.testing.assert_array_equal(after[~inside], before[~inside])
    assert np.any(after != before, axis=-1)[inside].mean() > 0.5


def test_ccpd_names_outputs_get_neutral_names(tmp_path: Path) -> None:
    """Issue 15.2: with ``--plates ccpd-names`` the output kept the input's name, from which
    :func:`parse_ccpd_name` returned the original plate. Outputs are now ``<index>.<ext>`` in
    input order (no subfolders); only the ``--json`` report maps inputs to outputs."""
    from jaxpriv.cli import main

    other = NAME.replace("0_0_6_24_16_27_27", "12_1_1_2_3_4_33")  # 京BBCDE9
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    image = np.full((600, 500, 3), 120, np.uint8)  # the plate corners of NAME lie inside
    for path in (src / NAME, src / "sub" / other):
        cv2.imwrite(str(path), image)
    out, report = tmp_path / "out", tmp_path / "r.json"
    assert main(["protect", str(src), "-o", str(out), "--method", "none", "--plates",
                 "ccpd-names", "--seed", "3", "--json", str(report)]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert written == ["0001.jpg", "0002.jpg"]
    for rel in written:
        with pytest.raises(JaxprivError, match="not a CCPD"):
            P.parse_ccpd_name(rel)
        for text in (P.parse_ccpd_name(NAME).text, P.parse_ccpd_name(other).text):
            assert text not in rel and text[1:] not in rel
    files = json.loads(report.read_text())["files"]
    assert [(f["input"], f["output"], f["plates"]) for f in files] == [
        (str(src / NAME), str(out / "0001.jpg"), 1),
        (str(src / "sub" / other), str(out / "0002.jpg"), 1)]

"""`jaxpriv protect` with the baselines: region-only changes, naming, summaries, determinism."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

from jaxpriv.baselines import dppix, dppix_scale, face_region
from jaxpriv.faces import Face, detect_faces
from jaxpriv.io import load_image
from jaxpriv.methods import get_method, method_names
from jaxpriv.protect import protect_files

from .conftest import SAMPLES


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jaxpriv.cli", *args], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("method", ["blur", "mosaic", "solid", "dppix"])
def test_only_face_regions_change(method: str) -> None:
    image = load_image(SAMPLES / "two_people.jpg")
    faces = detect_faces(image)
    assert len(faces) == 2
    out = get_method(method).make()(image, faces, jax.random.key(0))
    inside = np.zeros(image.shape[:2], bool)
    for f in faces:
        y0, y1, x0, x1 = face_region(f, image.shape, 0.25)
        inside[y0:y1, x0:x1] = True
    changed = np.any(out != image, axis=-1)
    assert changed[inside].mean() > 0.3  # the faces really changed
    assert not changed[~inside].any()  # nothing else did


def test_dppix_laplace_scale() -> None:
    """On a flat grey region the output minus the grey level is the Laplace noise itself."""
    image = np.full((400, 400, 3), 128, np.uint8)
    face = Face((100.0, 100.0, 299.0, 299.0), np.zeros((5, 2)))
    cell, m, eps = 4, 1, 20.0  # scale 3·255/(16·20) ≈ 2.4 (3 channels): no clipping at 128
    out = dppix(cell=cell, m=m, epsilon=eps, margin=0.0)(image, [face], jax.random.key(1))
    noise = out[100:300:cell, 100:300:cell].astype(float) - 128  # one value per cell
    scale = dppix_scale(200, 200, cell, m, eps)
    assert scale == pytest.approx(3 * 255 / (16 * 20))
    # E|Laplace(b)| = b; values are rounded to integers, which adds ≈ 1/12 variance only
    assert np.abs(noise).mean() == pytest.approx(scale, rel=0.1)
    assert noise.var() == pytest.approx(2 * scale**2 + 1 / 12, rel=0.15)


def test_cli_protect_folder(tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(SAMPLES / "obama.jpg", src / "obama.jpg")
    shutil.copy(SAMPLES / "biden.jpg", src / "sub" / "biden.jpg")
    Image.new("RGB", (64, 48), (10, 200, 30)).save(src / "grass.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    res = run("protect", "--method", "blur", str(src), "-o", str(out), "--json",
              str(tmp_path / "r.json"))
    assert res.returncode == 1  # one file failed, the rest went on
    assert "2 protected, 1 without a face (written unchanged), 1 failed" in res.stdout
    assert "broken.jpg" in res.stderr and "Traceback" not in res.stderr
    assert (out / "obama.jpg").is_file() and (out / "sub" / "biden.jpg").is_file()
    np.testing.assert_array_equal(load_image(out / "grass.png"), load_image(src / "grass.png"))
    report = json.loads((tmp_path / "r.json").read_text())
    assert (report["protected"], report["no_face"], report["failed"]) == (2, 1, 1)
    assert report["detector"] == "yunet"  # the summary says what found (or missed) the faces
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before
    again = run("protect", "--method", "blur", str(src / "obama.jpg"), "-o", str(out))
    assert again.returncode == 1 and "exists (use --overwrite)" in again.stderr


def test_cli_same_seed_same_bytes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        res = run("protect", "--method", "dppix", str(SAMPLES / "obama.jpg"), "-o",
                  str(tmp_path / name), "--seed", "7", "--format", "png")
        assert res.returncode == 0, res.stderr
    png = {d: (tmp_path / d / "obama.png").read_bytes() for d in ("a", "b")}
    assert png["a"] == png["b"]
    res = run("protect", "--method", "dppix", str(SAMPLES / "obama.jpg"), "-o",
              str(tmp_path / "c"), "--seed", "8", "--format", "png")
    assert (tmp_path / "c" / "obama.png").read_bytes() != png["a"]


def test_cli_option_errors(tmp_path: Path) -> None:
    res = run("protect", "--method", "mosaic", "--epsilon", "1", str(SAMPLES / "obama.jpg"),
              "-o", str(tmp_path))
    assert res.returncode == 2 and "--epsilon not an option of --method mosaic" in res.stderr
    assert {"none", "blur", "mosaic", "solid", "dppix"} <= set(method_names())


@pytest.mark.parametrize("seed", ["-1", str(2**64), "abc"])
def test_cli_bad_seed_is_a_clear_error(tmp_path: Path, seed: str) -> None:
    res = run("protect", "--method", "dppix", str(SAMPLES / "obama.jpg"), "-o",
              str(tmp_path / "out"), "--seed", seed)
    assert res.returncode == 2 and "--seed" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()


def test_run_key_keeps_all_64_bits_and_matches_jax_below_2_32() -> None:
    from jaxpriv.protect import run_key

    def draw(k: jax.Array) -> float:
        return float(jax.random.normal(k))

    assert draw(run_key(12345)) == draw(jax.random.key(12345))
    assert draw(run_key(2**32 + 7)) != draw(run_key(7))


def test_same_name_same_seed_different_photos_get_different_noise(tmp_path: Path) -> None:
    """Issue 15.4: the key hashed only the relative name, so two different photos saved under the
    same name with a reused seed got the same noise (the difference of the outputs cancels it).
    Here the photos differ in one corner pixel only: their faces must get different noise."""
    from jaxpriv.cli import main

    with Image.open(SAMPLES / "obama.jpg") as im:
        pixels = np.asarray(im.convert("RGB").resize((im.width // 2, im.height // 2)))
    other = pixels.copy()
    other[0, 0] ^= 0xFF
    for name, arr in (("a", pixels), ("b", other)):
        (tmp_path / name).mkdir()
        Image.fromarray(arr).save(tmp_path / name / "photo.png")
        assert main(["protect", "--method", "dppix", str(tmp_path / name / "photo.png"), "-o",
                     str(tmp_path / f"out_{name}"), "--seed", "7"]) == 0
    a, b = (load_image(tmp_path / f"out_{n}" / "photo.png") for n in ("a", "b"))
    (face,) = detect_faces(pixels)
    y0, y1, x0, x1 = face_region(face, pixels.shape, 0.0)
    assert np.any(a != pixels, axis=-1)[y0:y1, x0:x1].mean() > 0.5  # the face was noised
    assert np.any(a != b, axis=-1)[y0:y1, x0:x1].mean() > 0.5  # ... with different noise


def test_image_key_is_a_hash_of_seed_content_and_name() -> None:
    """Issue 15.4: two names with equal ``crc32 & 0x7FFFFFFF`` (found by brute force over random
    names) got the same key; the SHA-256 key separates them, all 64 seed bits, and content."""
    import hashlib
    import zlib

    from jaxpriv.protect import image_key

    a, b = "IMG_1fdc0ee9.jpg", "IMG_5fb19e8e.jpg"
    assert zlib.crc32(a.encode()) & 0x7FFFFFFF == zlib.crc32(b.encode()) & 0x7FFFFFFF

    def words(key: jax.Array) -> tuple[int, ...]:
        return tuple(np.asarray(jax.random.key_data(key)).tolist())

    assert words(image_key(7, a)) != words(image_key(7, b))
    digest = [hashlib.sha256(x).digest() for x in (b"photo 1", b"photo 2")]
    keys = {words(image_key(7, a)), words(image_key(7, b)), words(image_key(2**32 + 7, a)),
            words(image_key(7, a, digest[0])), words(image_key(7, a, digest[1]))}
    assert len(keys) == 5
    assert words(image_key(7, a, digest[0])) == words(image_key(7, a, digest[0]))  # reproducible
    assert all(len(k) == 2 for k in keys)  # a full threefry key: 64 bits of the digest


def test_default_detector_protects_small_background_faces(shared_data, tmp_path: Path) -> None:
    """A missed face is an unprotected face. ``scenes/dlib/2008_002079.jpg`` (375×500) has 10
    hand-checked faces (``experiments/labels/scene_faces.json``), 4 of them 10–16 px in the
    background: protect's default detector (YuNet) finds and changes every one; dlib's HOG
    (the old default, still ``--detector hog``) misses some."""
    name = "scenes/dlib/2008_002079.jpg"
    labels = json.loads((Path(__file__).parents[1] / "experiments" / "labels"
                         / "scene_faces.json").read_text())["photos"][name]["faces"]
    photo = shared_data / name
    original = load_image(photo)
    solid = get_method("solid").make()
    found = {}
    for detector in ("yunet", "hog"):
        out_dir = tmp_path / detector
        kw = {} if detector == "yunet" else {"detector": "hog"}
        summary = protect_files([str(photo)], out_dir, solid, "solid", seed=0, **kw)
        out = load_image(out_dir / photo.name)
        found[detector] = sum(
            np.abs(out[t:b + 1, l:r + 1].astype(float) - original[t:b + 1, l:r + 1]).mean() > 8
            for l, t, r, b in labels)  # noqa: E741
        assert summary.files[0].faces >= found[detector]
    assert found["yunet"] == len(labels) == 10
    assert found["hog"] < len(labels)


def test_detector_flag_on_every_command_that_detects() -> None:
    """``--detector`` (default yunet, hog kept) on protect (photos and videos), demo and eval."""
    from jaxpriv.cli import _video_inputs, build_parser

    parser = build_parser()
    for argv in (["protect", "x.jpg", "-o", "o", "--method", "blur"], ["demo"],
                 ["eval", "--method", "blur", "--data", "d"]):
        assert parser.parse_args(argv).detector == "yunet"
        assert parser.parse_args([*argv, "--detector", "hog"]).detector == "hog"
    args = parser.parse_args(["protect", "x.mp4", "-o", "o", "--method", "blur", "--detector",
                              "hog"])
    assert _video_inputs(args)[1].detector == "hog"
    res = run("protect", "x.jpg", "-o", "o", "--method", "blur", "--detector", "cnn")
    assert res.returncode == 2 and "invalid choice: 'cnn'" in res.stderr


def test_check_identity_reports_without_changing_outputs(tmp_path: Path) -> None:
    """--check-identity counts faces still matching the original: all of them for `none`, none
    for `solid`; the protected files are the same bytes with and without the check."""
    from jaxpriv.recognizers import shared_recognizer

    dlib = [shared_recognizer("dlib_resnet")]
    photo = [str(SAMPLES / "two_people.jpg")]
    kept = protect_files(photo, tmp_path / "none", get_method("none").make(), "none", seed=3,
                         check=dlib)
    assert kept.files[0].still_recognised == {"dlib_resnet": 2}
    assert "dlib_resnet 2/2" in kept.line()
    hidden = protect_files(photo, tmp_path / "solid", get_method("solid").make(), "solid",
                           seed=3, check=dlib)
    assert hidden.files[0].still_recognised == {"dlib_resnet": 0}
    plain = protect_files(photo, tmp_path / "plain", get_method("solid").make(), "solid", seed=3)
    assert plain.files[0].still_recognised is None
    assert "still_recognised" not in plain.as_dict()["files"][0]
    assert hidden.as_dict()["files"][0]["still_recognised"] == {"dlib_resnet": 0}
    assert ((tmp_path / "plain" / "two_people.jpg").read_bytes()
            == (tmp_path / "solid" / "two_people.jpg").read_bytes())


@pytest.mark.parametrize("names", ["", "nosuch"])
def test_check_identity_bad_names_are_one_line_errors(tmp_path: Path, names: str) -> None:
    r = run("protect", str(SAMPLES / "obama.jpg"), "-o", str(tmp_path), "--method", "blur",
            "--check-identity", names)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "jaxpriv: error:" in r.stderr and not list(tmp_path.iterdir())

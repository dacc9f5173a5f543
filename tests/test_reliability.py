"""Issue 7, end to end: metadata leaks through `jaxpriv protect`, a hostile folder, fuzzed key
files, 1 vs 4 devices, kill -9 and resume (map generation, training), secrets on the command line.

Every file is generated here (nothing checked in); the photos come from jaxpriv/samples.
Lower-level cases live in test_io.py (single hostile files, save without metadata),
test_masktpl_keys.py (key-file format), test_protect.py (folder summary, same seed).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms

from jaxpriv.cli import main
from jaxpriv.errors import JaxprivError
from jaxpriv.masktpl import keys as K

from ._tiny_runs import FACES, face_crop
from .conftest import ROOT, SAMPLES
from .test_io import _bomb_png, _jpeg_markers, adobe_rgb_like_icc

OBAMA_BOX = (349, 142, 617, 409)  # dlib HOG box of the face in samples/obama.jpg


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _obama(scale: float) -> tuple[np.ndarray, bytes]:
    """samples/obama.jpg resized by ``scale`` (uint8 RGB) and its ICC profile."""
    with Image.open(SAMPLES / "obama.jpg") as im:
        icc = im.info["icc_profile"]
        size = (round(im.width * scale), round(im.height * scale))
        return np.asarray(im.convert("RGB").resize(size, Image.BILINEAR)), icc


# --------------------------------------------------------------------------- 1. metadata


def _exif_with_gps_makernote_thumbnail(thumb: bytes) -> bytes:
    """EXIF built by Pillow (IFD0, GPS IFD 0x8825, Exif IFD with a MakerNote), then an IFD1 that
    points at ``thumb`` (a JPEG) linked in by hand: Pillow does not write IFD1."""
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0110] = "Model X"
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(
        {1: "N", 2: (52.0, 31.0, 7.0), 3: "E", 4: (13.0, 24.0, 1.0)})
    exif.get_ifd(ExifTags.IFD.Exif).update(
        {0x927C: b"MAKERNOTE-SERIAL-123456", 0x9003: "2024:01:02 03:04:05"})
    tiff = bytearray(exif.tobytes()[6:])  # drop b"Exif\0\0"
    bo = "<" if tiff[:2] == b"II" else ">"
    (ifd0,) = struct.unpack(bo + "I", tiff[4:8])
    (count,) = struct.unpack(bo + "H", tiff[ifd0:ifd0 + 2])
    next_at = ifd0 + 2 + 12 * count
    assert struct.unpack(bo + "I", tiff[next_at:next_at + 4]) == (0,)
    if len(tiff) % 2:
        tiff += b"\x00"
    ifd1_at = len(tiff)
    thumb_at = ifd1_at + 2 + 3 * 12 + 4
    ifd1 = struct.pack(bo + "H", 3)
    for tag, typ, value in ((0x0103, 3, struct.pack(bo + "HH", 6, 0)),  # JPEG compression
                            (0x0201, 4, struct.pack(bo + "I", thumb_at)),
                            (0x0202, 4, struct.pack(bo + "I", len(thumb)))):
        ifd1 += struct.pack(bo + "HHI", tag, typ, 1) + value
    ifd1 += struct.pack(bo + "I", 0)
    tiff[next_at:next_at + 4] = struct.pack(bo + "I", ifd1_at)
    return b"Exif\x00\x00" + bytes(tiff) + ifd1 + thumb


def _with_iptc(jpeg: bytes, caption: bytes) -> bytes:
    """Insert an APP13 "Photoshop 3.0" segment with an IPTC caption after the JFIF APP0."""
    iptc = b"\x1c\x02\x78" + struct.pack(">H", len(caption)) + caption
    iptc += b"\x00" * (len(iptc) % 2)
    payload = (b"Photoshop 3.0\x00" + b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00"
               + struct.pack(">I", len(iptc)) + iptc)
    app13 = b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload
    assert jpeg[2:4] == b"\xff\xe0"  # APP0 (JFIF) first
    end_app0 = 4 + struct.unpack(">H", jpeg[4:6])[0]
    return jpeg[:end_app0] + app13 + jpeg[end_app0:]


def test_protect_strips_gps_thumbnail_xmp_iptc_icc(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    pixels, icc = _obama(0.5)
    left, top, right, bottom = (round(v * 0.5) for v in OBAMA_BOX)
    face_thumb = _encode(Image.fromarray(pixels[top:bottom, left:right]).resize((64, 64)), "JPEG")
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
           b'22-rdf-syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
           b'exif:GPSLatitude="52,31.12N"/></rdf:RDF></x:xmpmeta>')
    data = _encode(Image.fromarray(pixels), "JPEG", quality=92, icc_profile=icc, xmp=xmp,
                   exif=_exif_with_gps_makernote_thumbnail(face_thumb), comment=b"shot at home")
    data = _with_iptc(data, b"Barack at home, 52.52N 13.40E")
    src = tmp_path / "in" / "dirty.jpg"
    src.parent.mkdir()
    src.write_bytes(data)

    # the input really carries all of it
    with Image.open(src) as im:
        exif = im.getexif()
        assert exif[0x010F] == "SpyCam"
        assert exif.get_ifd(ExifTags.IFD.GPSInfo)[2] == (52.0, 31.0, 7.0)
        assert exif.get_ifd(ExifTags.IFD.Exif)[0x927C] == b"MAKERNOTE-SERIAL-123456"
        ifd1 = exif.get_ifd(ExifTags.IFD.IFD1)
        assert ifd1[0x0202] == len(face_thumb)
        assert {"exif", "xmp", "comment", "icc_profile", "photoshop"} <= set(im.info)
        assert im.info["photoshop"][0x0404].startswith(b"\x1c\x02\x78")
    assert data.count(b"\xff\xd8") == 2 and face_thumb in data  # the face, as a thumbnail

    out, report = tmp_path / "out", tmp_path / "r.json"
    rc = main(["protect", "--method", "blur", str(src), "-o", str(out), "--json", str(report)])
    stdout, stderr = capsys.readouterr()
    assert rc == 0, stderr
    assert stdout == f"1 protected, 0 without a face (written unchanged), 0 failed -> {out}\n"
    assert json.loads(report.read_text())["files"] == [
        {"input": str(src), "output": str(out / "dirty.jpg"), "status": "protected", "faces": 1,
         "reason": None, "video": None, "plates": 0}]
    assert src.read_bytes() == data  # input untouched
    assert sorted(p.name for p in out.iterdir()) == ["dirty.jpg"]  # no temp files

    result = (out / "dirty.jpg").read_bytes()
    for secret in (b"Exif", b"http://ns.adobe.com/xap", b"xmpmeta", b"Photoshop 3.0", b"8BIM",
                   b"SpyCam", b"MAKERNOTE", b"shot at home", b"Barack at home", b"52,31"):
        assert secret not in result, secret
    assert result.count(b"\xff\xd8") == 1  # no embedded JPEG thumbnail
    markers = _jpeg_markers(result)
    # JFIF only: since issue 15.9 not even the ICC profile survives (it is an sRGB one here, so
    # the conversion to sRGB on load leaves the pixels as they are)
    assert [m for m in markers if 0xE0 <= m <= 0xEF or m == 0xFE] == [0xE0]
    assert icc[128:] not in result
    with Image.open(out / "dirty.jpg") as im:
        assert len(im.getexif()) == 0
        assert not {"exif", "xmp", "comment", "photoshop", "adobe", "icc_profile"} & set(im.info)
        protected = np.asarray(im.convert("RGB"))
    assert protected.shape == pixels.shape
    diff = np.abs(protected.astype(int) - pixels)
    assert diff[top:bottom, left:right].mean() > 10  # the face was blurred ...
    assert diff[:40, :40].mean() < 3  # ... the rest only re-encoded


def test_protect_converts_a_device_icc_profile_to_srgb_and_drops_it(tmp_path: Path) -> None:
    """Issue 15.9: a profile that names the device (description, maker, model, date) is applied
    to the pixels (littlecms, to sRGB) and never written."""
    icc = adobe_rgb_like_icc("SECRET-CAMERA-1234", "SECRET-MAKER", "SECRET-MODEL")
    y, x = np.mgrid[0:48, 0:64]
    pixels = np.stack([x * 4, y * 5, 255 - x * 2], -1).astype(np.uint8)  # smooth and colourful
    src = tmp_path / "in" / "tagged.jpg"
    src.parent.mkdir()
    src.write_bytes(_encode(Image.fromarray(pixels), "JPEG", quality=95, icc_profile=icc))
    assert b"SECRET-CAMERA-1234" in src.read_bytes()
    with Image.open(src) as im:
        stored = im.convert("RGB")
    expected = np.asarray(ImageCms.profileToProfile(
        stored, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"),
        outputMode="RGB")).astype(int)
    assert np.abs(expected - np.asarray(stored)).mean() > 5  # the profile matters here

    for fmt in ("jpg", "png"):
        out = tmp_path / fmt
        rc = main(["protect", "--method", "none", str(src), "-o", str(out), "--format", fmt])
        assert rc == 0
        data = (out / f"tagged.{fmt}").read_bytes()
        for secret in (b"SECRET", icc[128:], b"SCRT"):
            assert secret not in data, (fmt, secret)
        with Image.open(out / f"tagged.{fmt}") as im:
            assert "icc_profile" not in im.info
            result = np.asarray(im.convert("RGB")).astype(int)
        if fmt == "png":  # lossless: littlecms' own conversion, up to 8-bit rounding
            assert np.abs(result - expected).max() <= 1
    assert _jpeg_markers((tmp_path / "jpg" / "tagged.jpg").read_bytes()).count(0xE2) == 0


# --------------------------------------------------------------------------- 2. hostile folder


def _crowd() -> np.ndarray:
    """30 faces: 6x5 tiles of 100x100 px face crops of the bundled samples."""
    tiles = [np.asarray(Image.fromarray(face_crop(photo, box, mirror=k % 2 == 1))
                        .resize((100, 100), Image.BILINEAR))
             for k, (_, photo, box) in enumerate(FACES)]
    grid = np.zeros((500, 600, 3), np.uint8)
    for i in range(30):
        r, c = divmod(i, 6)
        grid[100 * r:100 * r + 100, 100 * c:100 * c + 100] = tiles[i % len(tiles)]
    return grid


def _huge_jpeg_header() -> bytes:
    """A valid little JPEG whose SOF0 header claims 20000x20000 pixels."""
    data = bytearray(_encode(Image.new("RGB", (16, 16), (90, 90, 90)), "JPEG"))
    i = data.index(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", 20000, 20000)
    return bytes(data)


def test_hostile_folder_through_cli(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from jaxpriv.faces import detect_faces

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    jpg, png = _encode(Image.fromarray(noise), "JPEG"), _encode(Image.fromarray(noise), "PNG")
    (src / "cut.jpg").write_bytes(jpg[: len(jpg) // 2])
    (src / "cut.png").write_bytes(png[: len(png) // 2])
    (src / "empty.jpg").write_bytes(b"")
    (src / "text.jpg").write_bytes(b"hello, I am not a picture\n" * 10)
    (src / "bomb.png").write_bytes(_bomb_png(20000, 20000))
    (src / "huge.jpg").write_bytes(_huge_jpeg_header())
    (src / "evil\x1b[2J\nname.jpg").write_bytes(b"not an image either")
    Image.new("RGB", (1, 1), (12, 34, 56)).save(src / "tiny.png")
    red, blue = Image.new("RGB", (16, 16), (255, 0, 0)), Image.new("RGB", (16, 16), (0, 0, 255))
    red.save(src / "anim.gif", save_all=True, append_images=[blue], duration=100, loop=0)
    deep = (np.arange(24 * 32, dtype=np.uint16).reshape(24, 32) * 85).astype(np.uint16)
    Image.fromarray(deep).save(src / "sub" / "deep16.png")
    Image.new("CMYK", (32, 24), (0, 255, 255, 0)).save(src / "cmyk.jpg", quality=95)
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((1, 0), 1)
    pal.save(src / "pal.png", transparency=0)
    upright, _ = _obama(0.4)
    stored = np.rot90(upright, k=1)  # stored sideways; EXIF orientation 6 turns it upright
    # HOG (frontal only) finds it only if EXIF is applied; YuNet finds faces turned sideways too
    assert detect_faces(np.ascontiguousarray(stored), detector="hog") == []
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(stored)).save(src / "rotated.jpg", quality=95,
                                                       exif=exif)
    crowd = _crowd()
    Image.fromarray(crowd).save(src / "crowd.png")
    yy, xx = np.mgrid[0:120, 0:160]
    landscape = np.stack([xx, yy * 2, (xx + yy) % 256], axis=2).astype(np.uint8)
    Image.fromarray(landscape).save(src / "noface.png")
    Image.new("RGB", (40, 30), (1, 2, 3)).save(src / "odd\x1b[31mname\n.png")
    before = _snapshot(src)

    out, report = tmp_path / "out", tmp_path / "summary.json"
    start = time.perf_counter()
    rc = main(["protect", "--method", "blur", str(src), "-o", str(out), "--json", str(report),
               "--detector", "hog"])  # HOG: the EXIF check above and the crowd's 30 faces
    seconds = time.perf_counter() - start
    stdout, stderr = capsys.readouterr()
    assert rc == 1  # some files failed, the others were done
    assert seconds < 60, seconds  # nothing hangs (about 3 s here)
    assert stdout == f"2 protected, 7 without a face (written unchanged), 7 failed -> {out}\n"

    def failed(name: str, why: str) -> dict:
        return {"output": None, "status": "failed", "faces": 0, "why": f"{src}/{name}: {why}"}

    def done(output: str, status: str, faces: int) -> dict:
        return {"output": str(out / output), "status": status, "faces": faces, "why": None}

    expected = {
        "cut.jpg": failed("cut.jpg", "truncated image file"),
        "cut.png": failed("cut.png", "truncated image file"),
        "empty.jpg": failed("empty.jpg", "empty file (0 bytes)"),
        "text.jpg": failed("text.jpg", "not an image (cannot identify image file)"),
        "bomb.png": failed("bomb.png", "image too large (400 MP > limit 179 MP)"),
        "huge.jpg": failed("huge.jpg", "image too large (400 MP > limit 179 MP)"),
        "evil\x1b[2J\nname.jpg": failed("evil\\x1b[2J\\nname.jpg",
                                        "not an image (cannot identify image file)"),
        "tiny.png": done("tiny.png", "no_face", 0),
        "anim.gif": done("anim.png", "no_face", 0),  # GIF is not written: PNG
        "sub/deep16.png": done("sub/deep16.png", "no_face", 0),
        "cmyk.jpg": done("cmyk.jpg", "no_face", 0),
        "pal.png": done("pal.png", "no_face", 0),
        "noface.png": done("noface.png", "no_face", 0),
        "odd\x1b[31mname\n.png": done("odd\x1b[31mname\n.png", "no_face", 0),
        "rotated.jpg": done("rotated.jpg", "protected", 1),
        "crowd.png": done("crowd.png", "protected", 30),
    }
    summary = json.loads(report.read_text())
    assert (summary["method"], summary["seed"]) == ("blur", None)  # no --seed: not recorded
    assert (summary["protected"], summary["no_face"], summary["failed"]) == (2, 7, 7)
    got = {Path(f["input"]).relative_to(src).as_posix():
           {"output": f["output"], "status": f["status"], "faces": f["faces"], "why": f["reason"]}
           for f in summary["files"]}
    assert got == expected
    assert all(f["video"] is None and f["plates"] == 0 for f in summary["files"])

    # one line per failure on stderr, control characters of the name escaped, no traceback
    lines = stderr.splitlines()
    failures = [v["why"] for v in expected.values() if v["status"] == "failed"]
    assert sorted(x for x in lines if x.startswith("failed: ")) == sorted(
        f"failed: {w}" for w in failures)
    assert f"no face: {src}/odd\\x1b[31mname\\n.png (written unchanged to " \
           f"{out}/odd\\x1b[31mname\\n.png)" in lines
    assert sum(x.startswith("no face: ") for x in lines) == 7  # (stderr also has tqdm's bar)
    assert "Traceback" not in stderr and "\x1b" not in stderr

    # outputs: exactly the expected files, no temp files, no metadata; inputs untouched
    assert _snapshot(src) == before
    written = sorted(_snapshot(out))
    assert written == sorted(v["output"][len(str(out)) + 1:] for v in expected.values()
                             if v["output"])

    def px(name: str) -> np.ndarray:
        with Image.open(out / name) as im:
            assert not {"exif", "xmp", "comment", "transparency"} & set(im.info), name
            return np.asarray(im)

    assert px("tiny.png").tolist() == [[[12, 34, 56]]]
    np.testing.assert_array_equal(px("anim.png"), np.asarray(red))  # first frame
    scaled = ((deep.astype(np.uint32) + 128) // 257).astype(np.uint8)
    np.testing.assert_array_equal(px("sub/deep16.png"), np.repeat(scaled[:, :, None], 3, 2))
    assert np.abs(px("cmyk.jpg").astype(int) - (255, 0, 0)).max() <= 3
    assert px("pal.png").tolist() == [[[255, 255, 255], [0, 0, 255]]]  # transparent -> white
    np.testing.assert_array_equal(px("noface.png"), landscape)  # copied unchanged (pixels)

    rotated = px("rotated.jpg").astype(int)
    assert rotated.shape == upright.shape  # written upright, orientation tag dropped
    left, top, right, bottom = (round(v * 0.4) for v in OBAMA_BOX)
    assert np.abs(rotated - upright)[top:bottom, left:right].mean() > 10  # face blurred
    assert np.abs(rotated - upright)[:30, :30].mean() < 4

    blurred = px("crowd.png").astype(int)
    for i in range(30):  # every one of the 30 faces changed
        r, c = divmod(i, 6)
        tile = (slice(100 * r + 25, 100 * r + 75), slice(100 * c + 25, 100 * c + 75))
        assert np.abs(blurred[tile] - crowd[tile]).mean() > 5, i


# --------------------------------------------------------------------------- 3. key-file fuzz

FAST = K.KdfParams(n=2**10, r=8, p=1)  # cheap scrypt for fuzzing (the default is 2^15)
PASSWORD = b"correct horse"


def _valid_key_file() -> bytes:
    salt = b"s" * 16
    payload = {"bits": 3, "image_shape": [4, 5, 3], "faces": []}
    return K.seal(payload, K.derive_keys(PASSWORD, salt, FAST), salt, FAST)


VALID = _valid_key_file()


def _only_clean_errors(data: bytes) -> None:
    """Opening ``data`` either fails with a KeyFileError (a JaxprivError) or, only for the
    untouched file, succeeds; any other exception fails the test."""
    try:
        payload, _ = K.unseal(data, PASSWORD)
    except K.KeyFileError as e:
        assert isinstance(e, JaxprivError) and str(e) and "\n" not in str(e)
        return
    assert data == VALID and payload["bits"] == 3


def _header_file(header: object, tail: bytes) -> bytes:
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return K.MAGIC + struct.pack(">I", len(raw)) + raw + tail


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)
HEADER_VALUES = st.one_of(JSON, st.sampled_from([1024, 2**20, 2**40, -8, 0, 1.5, "1024", True]))
HEADERS = st.fixed_dictionaries(
    {}, optional={"kdf": st.sampled_from(["scrypt", "argon2", ""]) | JSON,
                  "n": HEADER_VALUES, "r": HEADER_VALUES, "p": HEADER_VALUES,
                  "salt": st.sampled_from(["c2FsdHNhbHRzYWx0c2FsdA==", "", "!!", "AAAA"]) | JSON,
                  "nonce": st.sampled_from(["AAAAAAAAAAAAAAAA", "AAAA", "%%"]) | JSON})
FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.one_of(st.binary(max_size=300),
                 st.binary(max_size=300).map(lambda b: K.MAGIC + b),
                 st.builds(_header_file, HEADERS, st.binary(max_size=64)),
                 st.builds(_header_file, st.binary(max_size=80), st.binary(max_size=64))))
@example(_header_file(b"[" * 2000 + b"]" * 2000, b"x" * 16))  # nesting: RecursionError
@example(_header_file(b"{" * 1500, b"x" * 16))
@example(K.MAGIC + struct.pack(">I", 2**32 - 1) + b"{}")  # header length beyond the file
def test_fuzz_key_file_random_bytes(data: bytes) -> None:
    _only_clean_errors(data)


def test_every_truncation_of_a_key_file_is_refused() -> None:
    for n in range(len(VALID)):  # exhaustive: every prefix
        with pytest.raises(K.KeyFileError):
            K.unseal(VALID[:n], PASSWORD)
    assert K.unseal(VALID, PASSWORD)[0]["image_shape"] == [4, 5, 3]


@FUZZ
@given(st.integers(0, len(VALID) - 1), st.integers(1, 255))
def test_fuzz_key_file_single_byte_changes(position: int, xor: int) -> None:
    data = bytearray(VALID)
    data[position] ^= xor
    with pytest.raises(K.KeyFileError):  # authenticated: any change is refused, cleanly
        K.unseal(bytes(data), PASSWORD)


# --------------------------------------------------------------------------- 4. determinism

_DETERMINISM_SCRIPT = """
import json, sys, jax
from jaxpriv.cli import main
inp, out = sys.argv[1], sys.argv[2]
runs = {"blur": ["--seed", "5"], "dppix": ["--seed", "5"], "dppix_seed0": ["--seed", "0"],
        "dppix_big": ["--seed", str(2**32 + 5)], "dppix_noseed": []}
for name, extra in runs.items():
    method = name.split("_")[0]
    rc = main(["protect", "--method", method, inp, "-o", f"{out}/{name}",
               "--json", f"{out}/{name}.json", *extra])
    assert rc == 0, (name, rc)
print("DEVICES", jax.device_count())
"""


def test_same_seed_same_bytes_on_one_and_four_devices(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    pixels, icc = _obama(0.4)
    Image.fromarray(pixels).save(src / "obama.png", icc_profile=icc)
    with Image.open(SAMPLES / "two_people.jpg") as im:
        im.resize((563, 330), Image.BILINEAR).save(src / "two.jpg", quality=92)
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"}
    outs = {}
    for devices in (1, 4):
        out = tmp_path / f"out{devices}"
        flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"} if devices == 4 else {}
        res = subprocess.run([sys.executable, "-c", _DETERMINISM_SCRIPT, str(src), str(out)],
                             env=env | flags, cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, res.stderr
        assert f"DEVICES {devices}\n" in res.stdout
        outs[devices] = {k: v.replace(str(out).encode(), b"OUT") for k, v in
                         _snapshot(out).items()}  # reports name the output folder
    one, four = outs[1], outs[4]
    images = [k for k in one if not k.endswith(".json")]
    assert sorted(images) == sorted(f"{run}/{name}" for run in
                                    ("blur", "dppix", "dppix_seed0", "dppix_big", "dppix_noseed")
                                    for name in ("obama.png", "two.jpg"))
    fixed = {k: v for k, v in one.items() if not k.startswith("dppix_noseed")}
    # every output byte (and every report) of a given seed is equal on 1 and 4 devices
    assert fixed == {k: v for k, v in four.items() if not k.startswith("dppix_noseed")}
    for name in ("obama.png", "two.jpg"):
        assert one[f"dppix/{name}"] != one[f"dppix_seed0/{name}"]  # the seed matters
        assert one[f"dppix/{name}"] != one[f"dppix_big/{name}"]  # all 64 bits of it
        # no --seed: fresh OS randomness, different in each run, never a fixed default
        assert one[f"dppix_noseed/{name}"] not in (one[f"dppix_seed0/{name}"],
                                                    four[f"dppix_noseed/{name}"])
    assert json.loads(one["dppix_noseed.json"])["seed"] is None  # not recorded
    report = json.loads(one["dppix.json"])
    assert (report["seed"], report["protected"]) == (5, 2)
    assert [f["faces"] for f in report["files"]] == [1, 2]


# --------------------------------------------------------------------------- 5. kill -9, resume


def _tiny_env(cache: Path) -> dict[str, str]:
    """Environment of the tiny runs: CPU, 1 device, a shared persistent compilation cache (the
    uninterrupted run compiles; the killed and resumed runs reuse its executables)."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return env | {"JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(cache),
                  "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                  "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def _tiny(env: dict[str, str], *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "tests._tiny_runs", *args], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return res.stdout


def _kill_when(env: dict[str, str], ready, *args: str) -> None:  # noqa: ANN001
    """Start a tiny run, SIGKILL it as soon as ``ready()``; it must still have been running."""
    proc = subprocess.Popen([sys.executable, "-m", "tests._tiny_runs", *args], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not ready():
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "timed out waiting for the first result"
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _visible(folder: Path) -> dict[str, bytes]:
    return {k: v for k, v in _snapshot(folder).items()
            if not any(part.startswith(".") for part in k.split("/"))}


def test_kill9_during_map_generation_then_resume(tmp_path: Path) -> None:
    env = _tiny_env(tmp_path / "jax_cache")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    summary = json.loads(_tiny(env, "maps", str(straight)).splitlines()[-1])
    assert summary["shards_written"] == 4 and summary["complete"]
    reference = _visible(straight)
    shards = sorted(k for k in reference if k.endswith(".npz"))
    assert shards == ["test/shard-00000.npz", "test/shard-00001.npz",
                      "train/shard-00000.npz", "train/shard-00001.npz"]

    _kill_when(env, lambda: (killed / "train" / "shard-00000.npz").exists(), "maps", str(killed))
    left = sorted(k for k in _visible(killed) if k.endswith(".npz"))
    assert "train/shard-00000.npz" in left and len(left) < 4  # stopped part way
    for k in left:  # whatever was written before the kill is complete and final
        assert _visible(killed)[k] == reference[k]

    resumed = json.loads(_tiny(env, "maps", str(killed)).splitlines()[-1])
    assert resumed["shards_skipped"] == len(left) and resumed["complete"]
    assert resumed["shards_written"] == 4 - len(left)
    assert _visible(killed) == reference  # every shard and the manifest, byte for byte


def test_kill9_during_training_then_resume(tmp_path: Path) -> None:
    env = _tiny_env(tmp_path / "jax_cache")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    steps = "10"
    _tiny(env, "smgg", str(straight), steps)

    def after_checkpoint_mid_interval() -> bool:  # step 2 saved and step 3 done: work is lost
        logged = killed / "metrics.jsonl"
        return (killed / "checkpoints" / "2").is_dir() and logged.exists() and any(
            json.loads(line)["step"] >= 3 for line in logged.read_text().splitlines()
            if line.endswith("}"))

    _kill_when(env, after_checkpoint_mid_interval, "smgg", str(killed), steps)
    assert not (killed / "final.npz").exists()
    saved = sorted(int(p.name) for p in (killed / "checkpoints").iterdir() if p.name.isdigit())
    assert 2 in saved and max(saved) < 10

    _tiny(env, "smgg", str(killed), steps)
    with np.load(straight / "final.npz") as a, np.load(killed / "final.npz") as b:
        assert sorted(a.files) == sorted(b.files) and len(a.files) > 100
        assert int(b["['step']"]) == 10
        for k in a.files:  # params, batch stats and Adam state, bit for bit
            np.testing.assert_array_equal(b[k], a[k], err_msg=k)

    def steps_logged(workdir: Path) -> list[tuple[int, str, float]]:
        return [(m["step"], m["split"], m["L1"]) for m in
                map(json.loads, (workdir / "metrics.jsonl").read_text().splitlines())]

    assert steps_logged(killed) == steps_logged(straight)  # lines after step 2 were dropped


# --------------------------------------------------------------------------- 6. secrets

SECRET = "tr0ub4dor&3 correct"


def test_password_never_on_command_line_output_or_report(
        tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    from jaxpriv.masktpl.model import MODEL_ENV, default_model_dir

    monkeypatch.delenv(MODEL_ENV, raising=False)
    assert default_model_dir().is_dir()  # the shipped model (ckpt/mask_perturb_dlib) loads in ~1 s
    pw = tmp_path / "pw"
    pw.write_text(SECRET + "\n")
    src = tmp_path / "in"
    src.mkdir()
    pixels, _ = _obama(0.4)
    Image.fromarray(pixels).save(src / "face.png")
    Image.new("RGB", (40, 30), (20, 90, 200)).save(src / "sky.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")

    # no --password option: refused without echoing the value (it used to be taken as an
    # abbreviation of --password-file and printed back in "password file not found")
    for cmd in (["protect", "--method", "mask", str(src), "-o", str(tmp_path / "o")],
                ["restore", str(src / "face.png"), "-o", str(tmp_path / "o")]):
        for flag in (["--password", SECRET], [f"--password={SECRET}"]):
            with pytest.raises(SystemExit) as info:
                main([*cmd, *flag])
            stdout, stderr = capsys.readouterr()
            assert info.value.code == 2 and SECRET not in stdout + stderr
            assert "--password is not accepted" in stderr and "--password-file" in stderr
        with pytest.raises(SystemExit):
            main([cmd[0], "--help"])
        assert "--password-file" in capsys.readouterr().out
    from jaxpriv.cli import build_parser

    for name in ("protect", "restore"):
        sub = build_parser()._subparsers._group_actions[0].choices[name]  # noqa: SLF001
        visible = [a for a in sub._actions if a.help != argparse.SUPPRESS]  # noqa: SLF001
        shown = [s for a in visible for s in a.option_strings]
        assert "--password-file" in shown and "--password" not in shown
    assert not (tmp_path / "o").exists()

    out, report = tmp_path / "out", tmp_path / "r.json"
    rc = main(["protect", "--method", "mask", "--bits", "2", "--password-file", str(pw), str(src),
               "-o", str(out), "--json", str(report)])
    stdout, stderr = capsys.readouterr()
    assert rc == 1  # broken.png failed; the rest was done
    assert SECRET not in stdout + stderr
    text = report.read_text()
    assert SECRET not in text
    summary = json.loads(text)
    assert summary["seed"] is None  # the mask's randomness is password + salt, not --seed
    assert (summary["method"], summary["protected"], summary["no_face"], summary["failed"]) == (
        "mask", 1, 1, 1)
    assert {Path(f["input"]).name: (f["status"], f["faces"]) for f in summary["files"]} == {
        "broken.png": ("failed", 0), "face.png": ("protected", 1), "sky.png": ("no_face", 0)}
    for name in ("face.png", "sky.png"):
        key = out / f"{name}.jpkey"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600  # not group/world readable
        data = key.read_bytes()
        assert SECRET.encode() not in data and data.startswith(K.MAGIC)
        assert SECRET.encode() not in (out / name).read_bytes()


# --------------------------------------------------------------------------- 7. never overwrite


def test_protect_json_never_replaces_an_input_or_existing_file(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Issue 15.5: ``--json`` pointed at an input photo replaced the photo (exit 0); it is now
    refused before any work, like an existing report without --overwrite."""
    src = tmp_path / "in"
    src.mkdir()
    photo = src / "grass.png"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(photo)
    before = photo.read_bytes()
    out = tmp_path / "out"
    for flags in ([], ["--overwrite"]):
        rc = main(["protect", "--method", "none", str(src), "-o", str(out), "--json", str(photo),
                   *flags])
        assert rc == 2 and "is one of the input files" in capsys.readouterr().err
        assert photo.read_bytes() == before and not out.exists()
    report = tmp_path / "r.json"
    report.write_text("keep me")
    rc = main(["protect", "--method", "none", str(photo), "-o", str(out), "--json", str(report)])
    assert rc == 2 and "exists (use --overwrite)" in capsys.readouterr().err
    assert report.read_text() == "keep me" and not out.exists()  # refused before any work
    rc = main(["protect", "--method", "none", str(photo), "-o", str(out), "--json", str(report),
               "--overwrite"])
    assert rc == 0 and json.loads(report.read_text())["no_face"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "r.json"]  # no temp files


def test_embed_never_replaces_its_row_names_file(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Issue 15.5: ``embed`` wrote ``<out>.txt`` whatever was there; now an existing one is
    refused (exit 2) before any embedding, and nothing is written."""
    names = tmp_path / "emb.txt"
    names.write_text("my notes\n")
    rc = main(["embed", str(SAMPLES / "obama.jpg"), "--out", str(tmp_path / "emb.npy")])
    assert rc == 2 and "emb.txt: exists (use --overwrite)" in capsys.readouterr().err
    assert names.read_text() == "my notes\n" and not (tmp_path / "emb.npy").exists()
    photo = tmp_path / "photo.txt"  # a JPEG under an odd name, given explicitly: an input
    photo.write_bytes((SAMPLES / "obama.jpg").read_bytes())
    rc = main(["embed", str(photo), "--out", str(tmp_path / "photo.npy"), "--overwrite"])
    assert rc == 2 and "photo.txt: is one of the input files" in capsys.readouterr().err
    assert photo.read_bytes() == (SAMPLES / "obama.jpg").read_bytes()
    assert not (tmp_path / "photo.npy").exists()

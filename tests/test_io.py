"""Tests for jaxpriv.io; every odd or hostile file is generated here (nothing checked in)."""

from __future__ import annotations

import io
import os
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile, PngImagePlugin

from jaxpriv import io as jio
from jaxpriv.errors import JaxprivError

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


# --------------------------------------------------------------------------- helpers


def _noise(h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    kinds, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        kinds.append(data[i + 4 : i + 8])
        i += 12 + length
    return kinds


def _jpeg_markers(data: bytes) -> list[int]:
    """Markers of the JPEG header segments, up to the start of scan."""
    assert data[:2] == b"\xff\xd8"
    markers, i = [], 2
    while data[i] == 0xFF:
        marker = data[i + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    return markers


def _exif_gps_thumbnail(thumb: bytes) -> bytes:
    """A little-endian EXIF block: IFD0 (Make, GPS pointer) -> IFD1 (JPEG thumbnail), GPS IFD."""

    def ifd(entries: list[tuple[int, int, int, bytes]], next_offset: int) -> bytes:
        out = struct.pack("<H", len(entries))
        for tag, typ, count, value in entries:
            out += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\x00")
        return out + struct.pack("<I", next_offset)

    gps_at, rationals_at, ifd1_at = 38, 68, 92
    thumb_at = ifd1_at + 2 + 3 * 12 + 4
    ifd0 = ifd([(0x010F, 2, 4, b"Cam\x00"), (0x8825, 4, 1, struct.pack("<I", gps_at))], ifd1_at)
    gps = ifd([(1, 2, 2, b"N\x00"), (2, 5, 3, struct.pack("<I", rationals_at))], 0)
    rationals = struct.pack("<6I", 52, 1, 31, 1, 7, 1)
    ifd1 = ifd(
        [
            (0x0103, 3, 1, struct.pack("<H", 6)),
            (0x0201, 4, 1, struct.pack("<I", thumb_at)),
            (0x0202, 4, 1, struct.pack("<I", len(thumb))),
        ],
        0,
    )
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd0 + gps + rationals + ifd1
    assert len(tiff) == thumb_at
    return b"Exif\x00\x00" + tiff + thumb


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def _text_description(text: str) -> bytes:
    """ICC v2 textDescriptionType: ASCII, an empty Unicode part, an empty ScriptCode part."""
    ascii_ = text.encode("ascii") + b"\0"
    return (b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_ + struct.pack(">II", 0, 0)
            + struct.pack(">HB", 0, 0) + b"\0" * 67)


def adobe_rgb_like_icc(description: str, maker: str, model: str) -> bytes:
    """An ICC v2.1 RGB display profile with Adobe RGB (1998) primaries (D50-adapted colorants)
    and gamma 2.2, whose description, device manufacturer and model tags and header carry
    the given texts and a creation date: what a camera or scanner might embed."""
    gamma = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    tags = [(b"desc", _text_description(description)), (b"dmnd", _text_description(maker)),
            (b"dmdd", _text_description(model)), (b"cprt", b"text\0\0\0\0" + b"none\0\0\0\0"),
            (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
            (b"rXYZ", _xyz(0.6097, 0.3111, 0.0195)), (b"gXYZ", _xyz(0.2053, 0.6257, 0.0609)),
            (b"bXYZ", _xyz(0.1492, 0.0632, 0.7446)),
            (b"rTRC", gamma), (b"gTRC", gamma), (b"bTRC", gamma)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"\0\0\0\0" + struct.pack(">I", 0x02100000) + b"mntr"
              + b"RGB XYZ " + struct.pack(">6H", 2019, 5, 4, 3, 2, 1) + b"acsp" + b"APPL"
              + b"\0\0\0\0" + b"SCRT" + b"C123" + b"\0" * 8 + b"\0\0\0\0"
              + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"SCRT" + b"\0" * 16 + b"\0" * 28)
    assert len(header) == 128
    return header + table + body


def _raises(path: Path, phrase: str, **kw: object) -> str:
    with pytest.raises(JaxprivError) as info:
        jio.load_image(path, **kw)
    msg = str(info.value)
    assert path.name in msg and phrase in msg and "\n" not in msg, msg
    return msg


# --------------------------------------------------------------------------- load: refused


def test_truncated_jpeg_and_png(tmp_path: Path) -> None:
    for fmt, ext in (("JPEG", "jpg"), ("PNG", "png")):
        data = _encode(Image.fromarray(_noise()), fmt)
        path = _write(tmp_path / f"cut.{ext}", data[: len(data) // 2])
        _raises(path, "truncated image file")


def test_truncated_refused_even_if_pillow_told_to_accept(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = _encode(Image.fromarray(_noise()), "JPEG")
    _raises(_write(tmp_path / "cut.jpg", data[:-300]), "truncated image file")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is restored


def test_zero_bytes(tmp_path: Path) -> None:
    msg = _raises(_write(tmp_path / "empty.jpg", b""), "empty file (0 bytes)")
    assert msg == f"{tmp_path / 'empty.jpg'}: empty file (0 bytes)"


def test_text_named_jpg(tmp_path: Path) -> None:
    path = _write(tmp_path / "photo.jpg", b"hello, I am not a picture\n" * 10)
    msg = _raises(path, "not an image (cannot identify image file)")
    assert msg == f"{path}: not an image (cannot identify image file)"


def test_missing_directory_and_fifo(tmp_path: Path) -> None:
    _raises(tmp_path / "nope.png", "no such file")
    (tmp_path / "dir.png").mkdir()
    _raises(tmp_path / "dir.png", "is a directory")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.png")
        _raises(tmp_path / "pipe.png", "not a regular file")  # and does not block


def _bomb_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def test_decompression_bomb_header_is_refused_fast(tmp_path: Path) -> None:
    path = _write(tmp_path / "bomb.png", _bomb_png(20000, 20000))
    start = time.perf_counter()
    msg = _raises(path, "image too large")
    assert time.perf_counter() - start < 1.0
    assert "400 MP" in msg and "limit 179 MP" in msg, msg


def test_bomb_caught_by_own_limit_when_pillow_limit_disabled(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    path = _write(tmp_path / "bomb.png", _bomb_png(20000, 20000))
    start = time.perf_counter()
    msg = _raises(path, "image too large (20000x20000 = 400 MP > limit 179 MP)")
    assert time.perf_counter() - start < 1.0, msg


def test_real_image_over_lowered_limit(tmp_path: Path, monkeypatch) -> None:
    path = _write(tmp_path / "big.png", _encode(Image.fromarray(_noise(200, 300)), "PNG"))
    monkeypatch.setattr(jio.read, "MAX_PIXELS", 50_000)
    _raises(path, "image too large (300x200 = 60000 px > limit 50000 px)")
    monkeypatch.setattr(jio.read, "MAX_PIXELS", 60_000)
    assert jio.load_image(path).shape == (200, 300, 3)
    _raises(path, "limit 59999 px", max_pixels=59_999)


def test_pillow_bomb_warning_and_error_become_jaxpriv(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    warn_size = _write(tmp_path / "warn.png", _encode(Image.new("RGB", (40, 40)), "PNG"))
    error_size = _write(tmp_path / "error.png", _encode(Image.new("RGB", (50, 50)), "PNG"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert jio.load_image(warn_size).shape == (40, 40, 3)  # our limit rules; no warning
        _raises(error_size, "image too large (2500 px > limit 2000 px)")


# --------------------------------------------------------------------------- load: odd files


def _load_one(tmp_path: Path, name: str, data: bytes) -> np.ndarray:
    arr = jio.load_image(_write(tmp_path / name, data))
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    assert arr.flags.c_contiguous and arr.flags.writeable
    return arr


def test_one_pixel(tmp_path: Path) -> None:
    arr = _load_one(tmp_path, "dot.png", _encode(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG"))
    assert arr.tolist() == [[[1, 2, 3]]]


@pytest.mark.parametrize(("fmt", "ext", "kw"), [
    ("GIF", "gif", {}),
    ("PNG", "png", {}),
    ("WEBP", "webp", {"lossless": True}),
])  # fmt: skip
def test_animated_gives_first_frame(tmp_path: Path, fmt: str, ext: str, kw: dict) -> None:
    frames = [Image.new("RGB", (4, 4), c) for c in (RED, GREEN, BLUE)]
    data = _encode(frames[0], fmt, save_all=True, append_images=frames[1:], **kw)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    arr = _load_one(tmp_path, f"anim.{ext}", data)
    assert (arr == RED).all()


def test_16bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 65535, 32768, 65406], [257, 128, 129, 65407]], dtype=np.uint16)
    data = _encode(Image.fromarray(values), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    arr = _load_one(tmp_path, "deep.png", data)
    assert arr[:, :, 0].tolist() == [[0, 255, 128, 254], [1, 0, 1, 255]]
    assert (arr[:, :, 0] == arr[:, :, 2]).all()


def test_16bit_big_endian_tiff(tmp_path: Path) -> None:
    raw = np.array([[65535, 257, 0]], dtype=">u2").tobytes()
    data = _encode(Image.frombytes("I;16B", (3, 1), raw), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "I;16B"
    assert _load_one(tmp_path, "be.tif", data)[0, :, 1].tolist() == [255, 1, 0]


def test_32bit_int_and_float(tmp_path: Path) -> None:
    as16 = Image.fromarray(np.array([[0, 65535, 257]], dtype=np.int32))
    assert _load_one(tmp_path, "i.tif", _encode(as16, "TIFF"))[0, :, 0].tolist() == [0, 255, 1]
    wide = Image.fromarray(np.array([[-100, 0, 155]], dtype=np.int32))
    assert _load_one(tmp_path, "w.tif", _encode(wide, "TIFF"))[0, :, 0].tolist() == [0, 100, 255]
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0, np.nan]], dtype=np.float32))
    assert _load_one(tmp_path, "f.tif", _encode(unit, "TIFF"))[0, :, 0].tolist() == [0, 128, 255, 0]
    hdr = Image.fromarray(np.array([[2.0, 4.0, 6.0]], dtype=np.float32))
    assert _load_one(tmp_path, "h.tif", _encode(hdr, "TIFF"))[0, :, 0].tolist() == [0, 128, 255]


def test_cmyk(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))
    jpg = _load_one(tmp_path, "cmyk.jpg", _encode(cmyk, "JPEG", quality=95))
    assert np.abs(jpg.astype(int) - RED).max() <= 2
    tif = _load_one(
        tmp_path, "cmyk.tif", _encode(Image.new("CMYK", (2, 2), (0, 0, 255, 0)), "TIFF")
    )
    assert (tif == (255, 255, 0)).all()


def test_lab_and_ycbcr(tmp_path: Path) -> None:
    lab = _load_one(tmp_path, "lab.tif", _encode(Image.new("LAB", (2, 2), (128, 128, 128)), "TIFF"))
    r, g, b = lab[0, 0].tolist()
    assert r == g == b and 110 <= r <= 130
    ycc = Image.new("YCbCr", (2, 2), (128, 128, 128))
    assert (_load_one(tmp_path, "ycc.jpg", _encode(ycc, "JPEG", quality=100)) == 128).all()


def test_palette_with_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (2, 1))
    pal.putpalette([*RED, *BLUE] + [0] * 762)
    pal.putpixel((1, 0), 1)
    arr = _load_one(tmp_path, "pal.png", _encode(pal, "PNG", transparency=0))
    assert arr.tolist() == [[list(WHITE), list(BLUE)]]  # transparent red -> white


def test_rgba_la_and_colour_key_composited_on_white(tmp_path: Path) -> None:
    rgba = np.array([[[200, 100, 0, 255], [0, 0, 0, 128], [10, 20, 30, 0]]], dtype=np.uint8)
    arr = _load_one(tmp_path, "rgba.png", _encode(Image.fromarray(rgba), "PNG"))
    assert arr.tolist() == [[[200, 100, 0], [127, 127, 127], [255, 255, 255]]]
    la = Image.fromarray(np.array([[[100, 255], [0, 0]]], dtype=np.uint8), mode="LA")
    assert _load_one(tmp_path, "la.png", _encode(la, "PNG")).tolist() == [
        [[100, 100, 100], [255, 255, 255]]
    ]
    keyed = Image.new("RGB", (1, 1), (10, 20, 30))
    arr = _load_one(tmp_path, "key.png", _encode(keyed, "PNG", transparency=(10, 20, 30)))
    assert arr.tolist() == [[list(WHITE)]]


def test_grayscale_and_bilevel(tmp_path: Path) -> None:
    gray = Image.fromarray(np.array([[0, 77, 255]], dtype=np.uint8))
    arr = _load_one(tmp_path, "gray.png", _encode(gray, "PNG"))
    assert arr.tolist() == [[[0, 0, 0], [77, 77, 77], [255, 255, 255]]]
    bw = Image.new("1", (2, 1), 1)
    assert (_load_one(tmp_path, "bw.png", _encode(bw, "PNG")) == 255).all()


def test_exif_orientation_applied(tmp_path: Path) -> None:
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:6, :6] = RED  # top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    arr = _load_one(tmp_path, "rot.jpg", _encode(Image.fromarray(stored), "JPEG", exif=exif))
    assert arr.shape == (40, 20, 3)
    assert arr[:4, -4:, 0].min() > 200 and arr[:4, -4:, 1:].max() < 60  # now top-right
    assert arr[:4, :4].max() < 60


def test_icc_profile_converted_to_srgb_on_load(tmp_path: Path) -> None:
    """Issue 15.9: the pixels are converted from their RGB profile to sRGB with littlecms (the
    profile is then not needed, so no writer can copy it); sRGB, non-RGB, broken and absent
    profiles leave the stored pixels as they are."""
    pixels = _noise(16, 16)
    icc = adobe_rgb_like_icc("SECRET-CAMERA-1234", "SECRET-MAKER", "SECRET-MODEL")
    tagged = _write(tmp_path / "adobe.png", _encode(Image.fromarray(pixels), "PNG",
                                                    icc_profile=icc))
    expected = ImageCms.profileToProfile(
        Image.fromarray(pixels), ImageCms.ImageCmsProfile(io.BytesIO(icc)),
        ImageCms.createProfile("sRGB"), outputMode="RGB")
    loaded = jio.load_image(tagged)
    diff = np.abs(loaded.astype(int) - np.asarray(expected))
    assert diff.max() <= 1  # littlecms' own conversion, up to 8-bit rounding
    assert np.abs(loaded.astype(int) - pixels).mean() > 5  # and it really changed the colours
    lab_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    broken = icc[:16] + b"RGB " + b"\xff" * 300  # an RGB header, then garbage
    with pytest.raises(OSError):
        ImageCms.ImageCmsProfile(io.BytesIO(broken))  # littlecms refuses it ...
    for name, profile in (("srgb", _srgb_icc()), ("lab", lab_icc), ("broken", broken),
                          ("none", None)):
        kw = {"icc_profile": profile} if profile else {}
        path = _write(tmp_path / f"{name}.png", _encode(Image.fromarray(pixels), "PNG", **kw))
        # ... so it is ignored, as browsers do, rather than refusing the photo
        np.testing.assert_array_equal(jio.load_image(path), pixels, err_msg=name)


# --------------------------------------------------------------------------- save


def _dirty_jpeg(tmp_path: Path) -> Path:
    thumb = _encode(Image.new("RGB", (8, 8), GREEN), "JPEG")
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><GPSLatitude>52,31N</GPSLatitude></x:xmpmeta>'
    data = _encode(
        Image.fromarray(_noise(32, 48)),
        "JPEG",
        exif=_exif_gps_thumbnail(thumb),
        xmp=xmp,
        comment=b"secret comment",
        icc_profile=_srgb_icc(),
    )
    # The source really carries everything we want stripped.
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)[1] == "N"
    assert data.count(b"\xff\xd8") == 2 and b"http://ns.adobe.com/xap" in data
    return _write(tmp_path / "dirty.jpg", data)


def test_save_drops_all_metadata_from_jpeg(tmp_path: Path) -> None:
    arr = jio.load_image(_dirty_jpeg(tmp_path))
    out = jio.save_image(tmp_path / "clean.jpg", arr)
    data = out.read_bytes()
    with Image.open(out) as im:
        assert len(im.getexif()) == 0
        assert not {"exif", "xmp", "comment", "icc_profile"} & set(im.info)
    assert b"Exif" not in data and b"http://ns.adobe.com/xap" not in data
    assert b"secret" not in data and data.count(b"\xff\xd8") == 1  # no embedded thumbnail
    assert [m for m in _jpeg_markers(data) if 0xE1 <= m <= 0xEF or m == 0xFE] == []


def test_save_drops_png_text_and_exif_chunks(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at home")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta/>")
    exif = Image.Exif()
    exif[0x010F] = "Cam"
    src = Image.fromarray(_noise(8, 8))
    path = _write(tmp_path / "dirty.png", _encode(src, "PNG", pnginfo=info, exif=exif))
    assert {b"tEXt", b"iTXt", b"eXIf"} <= set(_png_chunks(path.read_bytes()))
    out = jio.save_image(tmp_path / "clean.png", jio.load_image(path))
    assert set(_png_chunks(out.read_bytes())) == {b"IHDR", b"IDAT", b"IEND"}
    np.testing.assert_array_equal(jio.load_image(out), np.asarray(src))


@pytest.mark.parametrize("ext", [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".PNG"])
def test_save_formats_round_trip_without_metadata(tmp_path: Path, ext: str) -> None:
    yy, xx = np.mgrid[0:16, 0:24]
    arr = np.stack([xx * 10, yy * 15, xx * 5 + yy * 5], axis=2).astype(np.uint8)  # smooth
    out = jio.save_image(tmp_path / f"x{ext}", arr)
    data = out.read_bytes()
    assert b"Exif" not in data and b"xmp" not in data.lower()
    with Image.open(out) as im:
        assert im.size == (24, 16)
        exif = im.getexif()
        assert 0x8825 not in exif and 0x8769 not in exif and 0x02BC not in exif
    back = jio.load_image(out)
    lossless = ext.lower() in (".png", ".bmp", ".tif", ".tiff")
    assert (back == arr).all() if lossless else np.abs(back.astype(int) - arr).mean() < 4


def test_save_grayscale(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = jio.save_image(tmp_path / "g.png", gray)
    with Image.open(out) as im:
        assert im.mode == "L"
    np.testing.assert_array_equal(jio.load_image(out)[:, :, 0], gray)


def test_overwrite_refused_then_allowed(tmp_path: Path) -> None:
    target = _write(tmp_path / "out.png", b"original bytes")
    with pytest.raises(JaxprivError) as info:
        jio.save_image(target, _noise(4, 4))
    assert str(info.value) == f"{target}: exists (use --overwrite)"
    assert target.read_bytes() == b"original bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    jio.save_image(target, _noise(4, 4), overwrite=True)
    assert jio.load_image(target).shape == (4, 4, 3)


def test_atomic_write_leaves_no_temp_files(tmp_path: Path, monkeypatch) -> None:
    out = jio.save_image(tmp_path / "sub" / "deeper" / "a.jpg", _noise(8, 8))
    assert os.listdir(out.parent) == ["a.jpg"]  # parents created, no temp file left

    def broken_save(self: Image.Image, fp: object, *args: object, **kw: object) -> None:
        fp.write(b"partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(JaxprivError, match=r"b\.png: cannot write \(disk full\)"):
        jio.save_image(tmp_path / "b.png", _noise(8, 8))
    with pytest.raises(JaxprivError, match="cannot write"):
        jio.save_image(out, _noise(8, 8), overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["sub"]
    assert os.listdir(out.parent) == ["a.jpg"] and jio.load_image(out).shape == (8, 8, 3)


def test_no_icc_profile_is_ever_written(tmp_path: Path) -> None:
    """Issue 15.9: a profile can name the device; load + save of a tagged photo writes none, in
    every output format (the pixels are sRGB, which readers assume for untagged files)."""
    icc = adobe_rgb_like_icc("SECRET-CAMERA-1234", "SECRET-MAKER", "SECRET-MODEL")
    src = _write(tmp_path / "tagged.jpg", _encode(Image.fromarray(_noise(8, 8)), "JPEG",
                                                  icc_profile=icc))
    assert b"SECRET-CAMERA-1234" in src.read_bytes()
    for ext in (".png", ".jpg", ".webp", ".tif", ".bmp"):
        out = jio.save_image(tmp_path / f"copy{ext}", jio.load_image(src))
        data = out.read_bytes()
        assert b"SECRET" not in data and icc[128:] not in data, ext
        with Image.open(out) as im:
            assert not im.info.get("icc_profile"), ext


def test_save_rejects_bad_arrays_formats_and_quality(tmp_path: Path) -> None:
    bad_arrays = [
        np.zeros((4, 4, 3), np.float32),
        np.zeros((4, 4, 4), np.uint8),
        np.zeros((0, 4, 3), np.uint8),
        np.zeros((4,), np.uint8),
        [[0, 0]],
    ]
    for bad in bad_arrays:
        with pytest.raises(JaxprivError, match=r"out\.png: cannot save .*expected uint8 HxWx3"):
            jio.save_image(tmp_path / "out.png", bad)  # type: ignore[arg-type]
    with pytest.raises(JaxprivError, match=r"out\.gif: unsupported output format \.gif \(use"):
        jio.save_image(tmp_path / "out.gif", _noise(4, 4))
    with pytest.raises(JaxprivError, match=r"quality must be an integer 1\.\.100, got 0"):
        jio.save_image(tmp_path / "out.jpg", _noise(4, 4), quality=0)
    (tmp_path / "d.png").mkdir()
    with pytest.raises(JaxprivError, match=r"d\.png: is a directory"):
        jio.save_image(tmp_path / "d.png", _noise(4, 4), overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["d.png"]


def test_ensure_not_input(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.png", _encode(Image.new("RGB", (2, 2)), "PNG"))
    (tmp_path / "sub").mkdir()
    for same in (src, tmp_path / "sub" / ".." / "in.png"):
        with pytest.raises(JaxprivError, match="is one of the input files"):
            jio.ensure_not_input(same, [tmp_path / "other.png", src])
    link = tmp_path / "link.png"
    link.symlink_to(src)
    with pytest.raises(JaxprivError, match=r"link\.png: is one of the input files"):
        jio.ensure_not_input(link, [src])
    jio.ensure_not_input(tmp_path / "new.png", [src])
    jio.ensure_not_input(_write(tmp_path / "b.png", b"x"), [src, tmp_path / "missing.png"])


def test_write_bytes_atomic_never_replaces_an_input_or_existing_file(tmp_path: Path) -> None:
    """Issue 15.5: the one writer of user-facing files (reports, embeddings, images)."""
    src = _write(tmp_path / "in.jpg", b"the original photo")
    with pytest.raises(JaxprivError, match=r"in\.jpg: is one of the input files"):
        jio.write_text_atomic(src, "{}", overwrite=True, inputs=[src])
    with pytest.raises(JaxprivError, match=r"in\.jpg: exists \(use --overwrite\)"):
        jio.write_bytes_atomic(src, b"{}")
    assert src.read_bytes() == b"the original photo"
    out = jio.write_text_atomic(tmp_path / "sub" / "r.json", "{}", inputs=[src])
    assert out.read_text() == "{}"
    jio.write_bytes_atomic(out, b"[]", overwrite=True, inputs=[src])
    assert out.read_bytes() == b"[]" and os.listdir(out.parent) == ["r.json"]  # no temp files
    with pytest.raises(JaxprivError, match="is a directory"):
        jio.write_bytes_atomic(tmp_path / "sub", b"x", overwrite=True)
    key = jio.write_bytes_atomic(tmp_path / "k.jpkey", b"k", mode=0o600)
    assert key.stat().st_mode & 0o077 == 0


# --------------------------------------------------------------------------- paths


def test_output_path(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert jio.output_path("photos/a.JPG", None, out) == out / "a.JPG"
    assert jio.output_path("photos/a.jpg", None, out, "png") == out / "a.png"
    assert jio.output_path("photos/x/y/a.b.jpg", "photos", out, ".webp") == out / "x/y/a.b.webp"
    assert jio.output_path("./photos/x/a.gif", "photos", out) == out / "x/a.png"
    assert jio.output_path("photos/a.tiff", "photos/", out) == out / "a.tiff"
    with pytest.raises(JaxprivError, match=r"a\.heic: unsupported output format \.heic"):
        jio.output_path("a.jpg", None, out, "heic")
    with pytest.raises(JaxprivError, match="not inside"):
        jio.output_path("elsewhere/a.jpg", "photos", out)


def test_iter_images(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for rel in ("b.jpg", "a.PNG", "notes.txt", ".hidden.jpg", "z/c.webp", "z/y/d.TIFF",
                ".cache/e.jpg", "m/f.jpeg"):  # fmt: skip
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    single = _write(tmp_path / "odd.name", b"x")
    found = jio.iter_images([root, single, root / "b.jpg"])
    rel = [p.relative_to(tmp_path).as_posix() for p in found]
    assert rel == [
        "photos/a.PNG",
        "photos/b.jpg",
        "photos/m/f.jpeg",
        "photos/z/c.webp",
        "photos/z/y/d.TIFF",
        "odd.name",
    ]
    assert jio.iter_images(str(root / "b.jpg")) == [root / "b.jpg"]
    with pytest.raises(JaxprivError, match=r"missing\.jpg: no such file or directory"):
        jio.iter_images([root, tmp_path / "missing.jpg"])
    (tmp_path / "empty").mkdir()
    assert jio.iter_images([tmp_path / "empty"]) == []


def test_outputs_pair_with_inputs(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for rel in ("a.png", "s/b.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (3, 2), BLUE).save(root / rel)
    out_dir = tmp_path / "out"
    for src in jio.iter_images([root]):
        dst = jio.output_path(src, root, out_dir, "jpg")
        jio.ensure_not_input(dst, [src])
        jio.save_image(dst, jio.load_image(src))
    written = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file())
    assert written == ["a.jpg", "s/b.jpg"]

"""Reading image files safely.

``load_image`` always yields a uint8 ``(H, W, 3)`` sRGB array:

* EXIF orientation is applied, so the array is the picture as a viewer shows it (an unreadable
  EXIF block is ignored rather than refused).
* Transparency (RGBA, LA, PA, palette or colour-key ``tRNS``) is composited onto white, so pixels
  hidden under fully transparent areas never reach the pipeline; the output has no alpha.
* 16-bit data (``I;16*``, and ``I`` when it holds values in 0..65535) is scaled with rounding
  (65535 -> 255, 257 -> 1); other ``I`` data and float ``F`` data are scaled from 0..1 when they
  lie there, otherwise stretched from their min..max. Non-finite floats become 0.
* An embedded RGB ICC profile is applied: the pixels are converted to sRGB with littlecms
  (Pillow's ``ImageCms``), so the profile itself, which can name the camera maker, model and
  dates, is never needed again. A profile littlecms cannot parse is ignored (the pixels are taken
  as sRGB, as web browsers do); non-RGB profiles are ignored too.
* CMYK, YCbCr, LAB, HSV, palette, bilevel and grayscale images are converted to RGB by Pillow
  (CMYK without colour management).
* Animated or multi-page files (GIF, APNG, WebP, TIFF) give their first frame only.
* Refused, with one line naming the file: missing paths, folders, non-regular files, empty
  files, non-images, truncated or corrupt data (decoded fully, with Pillow's
  ``LOAD_TRUNCATED_IMAGES`` forced off while decoding) and images whose header declares more
  than ``MAX_PIXELS`` pixels (checked before any pixel is decoded).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from jaxpriv.errors import JaxprivError
from jaxpriv.io.messages import reason, shown

PathLike = str | os.PathLike[str]

MAX_PIXELS = 178_956_970
"""Largest image (width x height) ``load_image`` decodes; Pillow's own hard limit by default."""

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def load_image(path: PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as a uint8 ``(H, W, 3)`` sRGB array (see the module docstring).

    ``max_pixels`` defaults to ``MAX_PIXELS`` (read at call time).
    """
    path = Path(path)
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    _check_input_file(path)
    with _strict_decoding(), warnings.catch_warnings():
        # Our explicit limit below replaces Pillow's warning; its hard error is still caught.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Exception as e:  # hostile files raise anything
            raise _decode_error(path, e, limit) from e
        with im:
            width, height = im.size
            if width * height > limit:
                raise JaxprivError(
                    f"{shown(path)}: image too large ({width}x{height} = "
                    f"{_pixels(width * height)} > limit {_pixels(limit)})"
                )
            try:
                im.load()
            except Exception as e:
                raise _decode_error(path, e, limit) from e
            icc = im.info.get("icc_profile")
            pixels = _to_rgb(_exif_transpose(im), path)
    return _to_srgb(pixels, icc)


def _check_input_file(path: Path) -> None:
    name = shown(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise JaxprivError(f"{name}: no such file") from None
    except PermissionError:
        raise JaxprivError(f"{name}: permission denied") from None
    except OSError as e:
        raise JaxprivError(f"{name}: cannot read ({reason(e)})") from e
    if path.is_dir():
        raise JaxprivError(f"{name}: is a directory, not an image file")
    if not path.is_file():
        raise JaxprivError(f"{name}: not a regular file")
    if st.st_size == 0:
        raise JaxprivError(f"{name}: empty file (0 bytes)")


def _decode_error(path: Path, e: BaseException, limit: int) -> JaxprivError:
    name = shown(path)
    if isinstance(e, JaxprivError):
        return e
    if isinstance(e, UnidentifiedImageError):
        return JaxprivError(f"{name}: not an image (cannot identify image file)")
    if isinstance(e, Image.DecompressionBombError):
        m = re.search(r"\((\d+) pixels\)", str(e))
        size = _pixels(int(m.group(1))) if m else "too many pixels"
        pil_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0) or limit
        return JaxprivError(
            f"{name}: image too large ({size} > limit {_pixels(min(limit, pil_limit))})"
        )
    if isinstance(e, PermissionError):
        return JaxprivError(f"{name}: permission denied")
    if isinstance(e, EOFError) or "truncated" in str(e).lower():
        return JaxprivError(f"{name}: truncated image file")
    if isinstance(e, MemoryError):
        return JaxprivError(f"{name}: not enough memory to decode the image")
    return JaxprivError(f"{name}: corrupt image ({reason(e)})")


def _exif_transpose(im: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # malformed EXIF: keep the stored orientation
        return im


_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.lru_cache(maxsize=8)
def _srgb_transform(icc: bytes) -> ImageCms.ImageCmsTransform | None:
    """littlecms transform from an RGB profile to sRGB (Pillow's default intent); ``None`` for a
    profile littlecms cannot parse or use."""
    try:
        return ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB,
                                       "RGB", "RGB")
    except (OSError, ValueError, ImageCms.PyCMSError):
        return None


def _to_srgb(pixels: np.ndarray, icc: object) -> np.ndarray:
    """Convert RGB pixels from their embedded RGB ICC profile to sRGB (module docstring)."""
    if not isinstance(icc, bytes) or icc[16:20] != b"RGB ":
        return pixels
    transform = _srgb_transform(icc)
    if transform is None:
        return pixels
    return np.asarray(ImageCms.applyTransform(Image.fromarray(pixels), transform))


def _to_rgb(im: Image.Image, path: Path) -> np.ndarray:
    mode = im.mode
    if mode in _SIXTEEN_BIT_MODES:
        gray = _scale_16bit(np.asarray(im))
    elif mode == "I":
        a = np.asarray(im)
        gray = _scale_16bit(a) if a.min() >= 0 and a.max() <= 65535 else _stretch(a)
    elif mode == "F":
        a = np.asarray(im).astype(np.float64)
        finite = np.isfinite(a)
        a[~finite] = 0.0
        if a.min() >= 0.0 and a.max() <= 1.0:
            gray = np.rint(a * 255.0).astype(np.uint8)
        else:
            gray = _stretch(a)
            gray[~finite] = 0
    elif mode in _ALPHA_MODES or "transparency" in im.info:
        return _composite_on_white(np.asarray(im.convert("RGBA")))
    elif mode == "RGB":
        return np.array(im)
    else:
        try:
            return np.array(im.convert("RGB"))
        except ValueError as e:
            raise JaxprivError(f"{shown(path)}: unsupported image mode {mode}") from e
    return np.repeat(gray[:, :, None], 3, axis=2)


def _scale_16bit(a: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (257 maps exactly to 1)."""
    return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _stretch(a: np.ndarray) -> np.ndarray:
    """Linearly map min..max to 0..255 (a constant image becomes 0)."""
    a = a.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.rint((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    rgb = rgba[:, :, :3].astype(np.uint16)
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    return ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def _pixels(n: int) -> str:
    if n < 100_000:
        return f"{n} px"
    return f"{n / 1e6:.1f}".removesuffix(".0") + " MP"


_strict_lock = threading.Lock()
_strict_users = 0
_saved_truncated_flag = False


@contextlib.contextmanager
def _strict_decoding() -> Iterator[None]:
    """Force ``ImageFile.LOAD_TRUNCATED_IMAGES`` off while any load runs; restore it after."""
    global _strict_users, _saved_truncated_flag
    with _strict_lock:
        if _strict_users == 0:
            _saved_truncated_flag = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = False
        _strict_users += 1
    try:
        yield
    finally:
        with _strict_lock:
            _strict_users -= 1
            if _strict_users == 0:
                ImageFile.LOAD_TRUNCATED_IMAGES = _saved_truncated_flag

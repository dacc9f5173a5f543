"""Reading and writing image files safely.

Reading (``load_image``) always yields a uint8 ``(H, W, 3)`` sRGB array:

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

Writing: every file jaxpriv writes for a user goes through ``write_bytes_atomic`` (or
``write_text_atomic``): it never replaces an existing file unless asked, never writes over an
input, and writes a hidden temp file in the same folder that is renamed into place.
``save_image`` encodes an array with no metadata at all (no EXIF, XMP, text, ICC profile: the
pixels are sRGB, which readers assume for untagged files) and writes it that way.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import secrets
import threading
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from jaxpriv.errors import JaxprivError

PathLike = str | os.PathLike[str]

MAX_PIXELS = 178_956_970
"""Largest image (width x height) ``load_image`` decodes; Pillow's own hard limit by default."""

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".webp", ".bmp", ".dib",
        ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm",
    }
)  # fmt: skip
"""File extensions (lower case) that ``iter_images`` picks up inside folders."""

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})
"""Video file extensions (lower case) that ``iter_media`` also picks up inside folders."""

OUTPUT_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
"""Output extension (lower case) -> Pillow format used by ``save_image``."""

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
                    f"{_name(path)}: image too large ({width}x{height} = "
                    f"{_pixels(width * height)} > limit {_pixels(limit)})"
                )
            try:
                im.load()
            except Exception as e:
                raise _decode_error(path, e, limit) from e
            icc = im.info.get("icc_profile")
            pixels = _to_rgb(_exif_transpose(im), path)
    return _to_srgb(pixels, icc)


def save_image(
    path: PathLike,
    image: np.ndarray,
    *,
    overwrite: bool = False,
    inputs: Iterable[PathLike] = (),
    quality: int = 95,
) -> Path:
    """Write a uint8 ``(H, W, 3)`` RGB or ``(H, W)`` gray array; the format comes from the suffix.

    Encodes a fresh image (no metadata of any kind, no ICC profile: the pixels are sRGB) and
    writes it with ``write_bytes_atomic`` (never over an existing file unless ``overwrite``, never
    over one of ``inputs``). ``quality`` (1..100) applies to JPEG (4:4:4 chroma) and WebP.
    Returns the path.
    """
    path = Path(path)
    fmt = _output_format(path)
    pixels = _check_array(path, image)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise JaxprivError(f"{_name(path)}: quality must be an integer 1..100, got {quality!r}")
    inputs = list(inputs)
    check_writable(path, overwrite=overwrite, inputs=inputs)

    params: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = quality
    if fmt == "JPEG":
        params["subsampling"] = 0
    if fmt == "TIFF":
        params["compression"] = "tiff_lzw"
    buf = io.BytesIO()
    try:  # a fresh image: no EXIF, XMP, ICC, text chunks or thumbnails
        Image.fromarray(pixels).save(buf, format=fmt, **params)
    except (OSError, ValueError) as e:
        raise JaxprivError(f"{_name(path)}: cannot write ({_reason(e)})") from e
    return write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite, inputs=inputs)


def check_writable(
    path: PathLike, *, overwrite: bool = False, inputs: Iterable[PathLike] = ()
) -> Path:
    """Raise ``JaxprivError`` unless ``path`` may be written: not a folder, not one of
    ``inputs`` (even with ``overwrite``), and not an existing file unless ``overwrite``. Call it
    before long work to fail fast; ``write_bytes_atomic`` checks again when it writes."""
    path = Path(path)
    if path.is_dir():
        raise JaxprivError(f"{_name(path)}: is a directory")
    ensure_not_input(path, inputs)
    if path.exists() and not overwrite:
        raise JaxprivError(f"{_name(path)}: exists (use --overwrite)")
    return path


def write_bytes_atomic(
    path: PathLike,
    data: bytes,
    *,
    overwrite: bool = False,
    inputs: Iterable[PathLike] = (),
    mode: int = 0o666,
) -> Path:
    """Write ``data`` to ``path``: the one way jaxpriv writes a user-facing file.

    ``check_writable`` first; then a hidden temp file in the same folder (created exclusively
    with ``mode``, less the umask; missing parent folders are created), fsync'd and renamed into
    place. Without ``overwrite`` the rename is a hard link, which fails if a file appeared
    meanwhile. Returns the path.
    """
    path = Path(path)
    check_writable(path, overwrite=overwrite, inputs=inputs)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        with os.fdopen(os.open(tmp, flags, mode), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _move_into_place(tmp, path, overwrite)
    except OSError as e:
        raise JaxprivError(f"{_name(path)}: cannot write ({_reason(e)})") from e
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(
    path: PathLike, text: str, *, overwrite: bool = False, inputs: Iterable[PathLike] = ()
) -> Path:
    """``write_bytes_atomic`` of ``text`` encoded as UTF-8."""
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite, inputs=inputs)


def ensure_not_input(output: PathLike, inputs: Iterable[PathLike]) -> None:
    """Raise ``JaxprivError`` if ``output`` is the same file as one of ``inputs``.

    Compares files, not spellings (symlinks, hard links, ``..`` and case-insensitive file
    systems are all caught). ``write_bytes_atomic`` calls it, even with ``overwrite=True``.
    """
    out = Path(output)
    if not out.exists():
        return
    for inp in inputs:
        with contextlib.suppress(OSError):
            if os.path.samefile(out, inp):
                raise JaxprivError(f"{_name(out)}: is one of the input files; refusing to write it")


def output_path(
    input_path: PathLike,
    input_root: PathLike | None,
    out_dir: PathLike,
    ext: str | None = None,
) -> Path:
    """Return ``out_dir / <subfolders of input_path below input_root> / <stem><ext>``.

    ``input_root`` is the folder given on the command line (``None`` for a single file, which
    goes straight into ``out_dir``). ``ext`` (``"png"`` or ``".png"``) defaults to the input's
    suffix, or ``.png`` when that is not a format ``save_image`` writes (e.g. ``.gif``).
    """
    inp = Path(input_path)
    rel = Path(inp.name)
    if input_root is not None:
        root = Path(input_root)
        try:
            rel = inp.relative_to(root)
        except ValueError:
            try:
                rel = inp.resolve().relative_to(root.resolve())
            except ValueError:
                raise JaxprivError(f"{_name(inp)}: not inside {_name(root)}") from None
    if ext is None:
        suffix = inp.suffix if inp.suffix.lower() in OUTPUT_FORMATS else ".png"
    else:
        suffix = ext if ext.startswith(".") else f".{ext}"
    out = Path(out_dir) / rel.parent / f"{rel.stem}{suffix}"
    _output_format(out)
    return out


def iter_images(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Expand files and folders into a list of image files.

    Files named explicitly are kept whatever their suffix. Folders are searched recursively
    (symlinked folders are not followed) for ``IMAGE_EXTENSIONS`` (any case), skipping hidden
    files and folders; each folder's files come sorted. Duplicates are dropped, order is kept.
    A missing path raises ``JaxprivError``; an empty folder contributes nothing.
    """
    return _iter_files(paths, IMAGE_EXTENSIONS)


def iter_media(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Like ``iter_images``, but folders also yield videos (``VIDEO_EXTENSIONS``)."""
    return _iter_files(paths, IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)


def _iter_files(paths: PathLike | Iterable[PathLike], extensions: frozenset[str]) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(_walk_files(p, extensions), key=lambda q: q.parts))
        elif p.exists():
            found.append(p)
        else:
            raise JaxprivError(f"{_name(p)}: no such file or directory")
    seen: set[Path] = set()
    unique: list[Path] = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


# --------------------------------------------------------------------------- helpers


def _walk_files(root: Path, extensions: frozenset[str]) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fn in filenames:
            if not fn.startswith(".") and Path(fn).suffix.lower() in extensions:
                yield Path(dirpath) / fn


def _check_input_file(path: Path) -> None:
    name = _name(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise JaxprivError(f"{name}: no such file") from None
    except PermissionError:
        raise JaxprivError(f"{name}: permission denied") from None
    except OSError as e:
        raise JaxprivError(f"{name}: cannot read ({_reason(e)})") from e
    if path.is_dir():
        raise JaxprivError(f"{name}: is a directory, not an image file")
    if not path.is_file():
        raise JaxprivError(f"{name}: not a regular file")
    if st.st_size == 0:
        raise JaxprivError(f"{name}: empty file (0 bytes)")


def _decode_error(path: Path, e: BaseException, limit: int) -> JaxprivError:
    name = _name(path)
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
    return JaxprivError(f"{name}: corrupt image ({_reason(e)})")


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
            raise JaxprivError(f"{_name(path)}: unsupported image mode {mode}") from e
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


def _output_format(path: Path) -> str:
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(OUTPUT_FORMATS)
        shown = path.suffix or "(none)"
        raise JaxprivError(f"{_name(path)}: unsupported output format {shown} (use {known})")
    return fmt


def _check_array(path: Path, image: np.ndarray) -> np.ndarray:
    ok = (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3))
        and image.shape[0] > 0
        and image.shape[1] > 0
    )
    if not ok:
        what = (
            f"shape {image.shape} dtype {image.dtype}"
            if isinstance(image, np.ndarray)
            else type(image).__name__
        )
        raise JaxprivError(
            f"{_name(path)}: cannot save {what} (expected uint8 HxWx3 RGB or HxW gray)"
        )
    return np.ascontiguousarray(image)


def _move_into_place(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic and never replaces a file that appeared meanwhile
    except FileExistsError:
        raise JaxprivError(f"{_name(path)}: exists (use --overwrite)") from None
    except OSError:  # no hard links on this file system
        if path.exists():
            raise JaxprivError(f"{_name(path)}: exists (use --overwrite)") from None
        os.replace(tmp, path)


def _name(path: Path) -> str:
    """The path as given, with control characters escaped so messages stay on one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(path))


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


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

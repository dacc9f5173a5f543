"""Writing files safely.

Every file jaxpriv writes for a user goes through ``write_bytes_atomic`` (or
``write_text_atomic``): it never replaces an existing file unless asked, never writes over an
input, and writes a hidden temp file in the same folder that is renamed into place.
``save_image`` encodes an array with no metadata at all (no EXIF, XMP, text, ICC profile: the
pixels are sRGB, which readers assume for untagged files) and writes it that way.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from jaxpriv.errors import JaxprivError
from jaxpriv.io.messages import reason, shown

PathLike = str | os.PathLike[str]

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
    fmt = output_format(path)
    pixels = _check_array(path, image)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise JaxprivError(f"{shown(path)}: quality must be an integer 1..100, got {quality!r}")
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
        raise JaxprivError(f"{shown(path)}: cannot write ({reason(e)})") from e
    return write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite, inputs=inputs)


def check_writable(
    path: PathLike, *, overwrite: bool = False, inputs: Iterable[PathLike] = ()
) -> Path:
    """Raise ``JaxprivError`` unless ``path`` may be written: not a folder, not one of
    ``inputs`` (even with ``overwrite``), and not an existing file unless ``overwrite``. Call it
    before long work to fail fast; ``write_bytes_atomic`` checks again when it writes."""
    path = Path(path)
    if path.is_dir():
        raise JaxprivError(f"{shown(path)}: is a directory")
    ensure_not_input(path, inputs)
    if path.exists() and not overwrite:
        raise JaxprivError(f"{shown(path)}: exists (use --overwrite)")
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
        move_into_place(tmp, path, overwrite)
    except OSError as e:
        raise JaxprivError(f"{shown(path)}: cannot write ({reason(e)})") from e
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
                raise JaxprivError(f"{shown(out)}: is one of the input files; refusing to write it")


def move_into_place(tmp: Path, path: Path, overwrite: bool) -> None:
    """Rename the finished temp file ``tmp`` to ``path``; without ``overwrite`` a hard link
    (atomic, never replaces a file that appeared meanwhile: ``JaxprivError`` then)."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise JaxprivError(f"{shown(path)}: exists (use --overwrite)") from None
    except OSError:  # no hard links on this file system
        if path.exists():
            raise JaxprivError(f"{shown(path)}: exists (use --overwrite)") from None
        os.replace(tmp, path)


def output_format(path: Path) -> str:
    """The Pillow format ``save_image`` writes for ``path``'s suffix (``JaxprivError`` if none)."""
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(OUTPUT_FORMATS)
        suffix = path.suffix or "(none)"
        raise JaxprivError(f"{shown(path)}: unsupported output format {suffix} (use {known})")
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
            f"{shown(path)}: cannot save {what} (expected uint8 HxWx3 RGB or HxW gray)"
        )
    return np.ascontiguousarray(image)

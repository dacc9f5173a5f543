"""Media paths: which inputs a run finds (photos, videos, live streams) and where each output goes.

A source is a file, a folder (searched recursively), a URL (``rtsp://``, ``http://`` ...) or a
local camera ``camera:INDEX``. Outputs mirror the input's subfolders below the folder given on
the command line: photos keep their format when ``save_image`` writes it (else PNG), videos and
streams become ``<stem>.mp4``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from jaxpriv.errors import JaxprivError
from jaxpriv.io.messages import shown
from jaxpriv.io.write import OUTPUT_FORMATS, output_format

PathLike = str | os.PathLike[str]

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".webp", ".bmp", ".dib",
        ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm",
    }
)  # fmt: skip
"""File extensions (lower case) that ``iter_images`` picks up inside folders."""

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})
"""Video file extensions (lower case) that ``iter_media`` also picks up inside folders."""

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


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


def is_video(path: PathLike) -> bool:
    """Whether ``path`` has one of ``VIDEO_EXTENSIONS`` (any case)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_stream(source: PathLike) -> bool:
    """Whether ``source`` is a URL (``scheme://...``) or a ``camera:INDEX`` source."""
    s = str(source)
    return bool(_URL.match(s)) or bool(re.fullmatch(r"camera:\d+", s))


def camera_source(index: int) -> str:
    """The source string of local camera ``index`` (``camera:INDEX``)."""
    return f"camera:{int(index)}"


def stream_name(source: str) -> str:
    """A file stem for a stream: ``camera0``, or the URL's last path part (else its host)."""
    if source.startswith("camera:"):
        return "camera" + source.split(":", 1)[1]
    rest = _URL.sub("", source).split("?", 1)[0].rstrip("/")
    part = rest.rsplit("/", 1)[-1] if "/" in rest else rest
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(part).stem).strip("._") or "stream"
    return stem


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
                raise JaxprivError(f"{shown(inp)}: not inside {shown(root)}") from None
    if ext is None:
        suffix = inp.suffix if inp.suffix.lower() in OUTPUT_FORMATS else ".png"
    else:
        suffix = ext if ext.startswith(".") else f".{ext}"
    out = Path(out_dir) / rel.parent / f"{rel.stem}{suffix}"
    output_format(out)
    return out


def video_output_path(input_path: PathLike, input_root: PathLike | None, out_dir: PathLike) -> Path:
    """``out_dir / <subfolders below input_root> / <stem>.mp4`` (like photos' outputs)."""
    return output_path(input_path, input_root, out_dir, ".png").with_suffix(".mp4")


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
            raise JaxprivError(f"{shown(p)}: no such file or directory")
    seen: set[Path] = set()
    unique: list[Path] = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _walk_files(root: Path, extensions: frozenset[str]) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fn in filenames:
            if not fn.startswith(".") and Path(fn).suffix.lower() in extensions:
                yield Path(dirpath) / fn

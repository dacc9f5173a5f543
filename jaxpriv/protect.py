"""Protect photos on disk: files and folders in, ``OUTDIR/<input stem>.<ext>`` out.

For every image: load (validated, EXIF-oriented) → detect faces → the method → save without
metadata (ICC profile kept). Images without faces are written unchanged (pixels; metadata is
still dropped) and reported. A bad file is skipped with its reason and the run goes on; the
summary counts processed / without face / failed. Videos (``io.VIDEO_EXTENSIONS``) and live
streams go through :func:`jaxpriv.video.protect_video` into ``<stem>.mp4``.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from jaxpriv import io, video
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import detect_faces
from jaxpriv.methods import ProtectFn


@dataclasses.dataclass
class FileResult:
    """What happened to one input file."""

    input: str
    output: str | None
    status: str  # "protected" | "no_face" | "failed"
    faces: int = 0
    reason: str | None = None
    video: dict | None = None  # videos: jaxpriv.video.VideoResult as a dict; faces = tracks
    plates: int = 0  # licence plates replaced (--plates)


@dataclasses.dataclass
class Summary:
    """Outcome of a run; ``exit_code`` is 1 if any file failed, else 0."""

    method: str
    seed: int | None  # None: fresh OS randomness, deliberately not recorded
    files: list[FileResult] = dataclasses.field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)

    @property
    def exit_code(self) -> int:
        return 1 if self.count("failed") else 0

    def as_dict(self) -> dict:
        return {"method": self.method, "seed": self.seed,
                "protected": self.count("protected"), "no_face": self.count("no_face"),
                "failed": self.count("failed"),
                "files": [dataclasses.asdict(f) for f in self.files]}

    def line(self) -> str:
        return (f"{self.count('protected')} protected, {self.count('no_face')} without a face "
                f"(written unchanged), {self.count('failed')} failed")


PLATE_STREAM = 0x706C74  # folded into an image's key for its licence plates
SEED_BITS = 64  # a run's seed: 0 … 2**64 − 1, the two 32-bit words of a threefry key


def seed_arg(text: str) -> int:
    """argparse type of ``--seed``: an integer in 0 … 2**64 − 1 (a clear error otherwise)."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 2**SEED_BITS:
        raise argparse.ArgumentTypeError(f"must be in 0 … 2**{SEED_BITS} − 1, got {value}")
    return value


def run_key(seed: int) -> jax.Array:
    """The threefry key of a run: all 64 bits of ``seed`` are kept (``jax.random.key`` would
    keep only the low 32); equal to ``jax.random.key(seed)`` for seeds below 2**32."""
    words = np.array([(seed >> 32) & 0xFFFFFFFF, seed & 0xFFFFFFFF], np.uint32)
    return jax.random.wrap_key_data(words, impl="threefry2x32")


def image_key(seed: int, relative_name: str) -> jax.Array:
    """The PRNG key of one image: the run's seed folded with a hash of its relative path, so an
    image's output does not depend on which other images are in the run."""
    return jax.random.fold_in(run_key(seed), zlib.crc32(relative_name.encode()) & 0x7FFFFFFF)


def plan_outputs(
    inputs: Sequence[str], out_dir: Path, ext: str | None
) -> list[tuple[Path | str, Path]]:
    """(input, output file) pairs; folders mirror their subfolders under ``out_dir``. Videos
    (and streams: URLs, ``camera:N``, kept as strings) go to ``<stem>.mp4``."""
    pairs: list[tuple[Path | str, Path]] = []
    for arg in inputs:
        if video.is_stream(arg):
            pairs.append((str(arg), out_dir / f"{video.stream_name(str(arg))}.mp4"))
            continue
        root = Path(arg) if Path(arg).is_dir() else None
        for path in io.iter_media([arg]):
            out = (video.video_output_path(path, root, out_dir) if video.is_video(path)
                   else io.output_path(path, root, out_dir, ext))
            pairs.append((path, out))
    outputs = [o.resolve() for _, o in pairs]
    if len(set(outputs)) != len(outputs):
        dup = next(o for o in outputs if outputs.count(o) > 1)
        raise JaxprivError(f"{dup}: two inputs would be written to the same output file")
    return pairs


def protect_files(
    inputs: Sequence[str],
    out_dir: str | Path,
    protect: ProtectFn,
    method: str,
    seed: int | None = None,
    overwrite: bool = False,
    ext: str | None = None,
    upsample: int = 1,
    video_options: video.VideoOptions | None = None,
    plates: Callable[[Path, np.ndarray, jax.Array], tuple[np.ndarray, int]] | None = None,
) -> Summary:
    """Run ``protect`` over every image and video in ``inputs`` (files, folders, stream URLs)
    into ``out_dir``; videos go through :func:`jaxpriv.video.protect_video`. ``plates``
    (:func:`jaxpriv.deid.plates.plate_source`) then replaces each photo's licence plates.
    ``seed=None`` draws a 64-bit seed from the OS (``secrets``) and does not record it: whoever
    knows the seed can regenerate the noise, so only a seed the user chose is reproducible."""
    out_dir = Path(out_dir)
    recorded = seed
    if seed is None:
        seed = secrets.randbits(SEED_BITS)
    pairs = plan_outputs(inputs, out_dir, ext)
    if not pairs:
        raise JaxprivError("no images found in the given paths")
    all_inputs = [p for p, _ in pairs]
    summary = Summary(method, recorded)
    for path, out in tqdm(pairs, desc=f"protect ({method})", unit="img", disable=len(pairs) < 2):
        try:
            io.ensure_not_input(out, all_inputs)
            if out.exists() and not overwrite:
                raise JaxprivError(f"{out}: exists (use --overwrite)")
            if isinstance(path, str) or video.is_video(path):
                key = image_key(seed, out.relative_to(out_dir).as_posix())
                r = video.protect_video(path, out, protect, key, video_options, overwrite)
                summary.files.append(FileResult(str(path), str(out), "protected" if r.tracks
                                                else "no_face", r.tracks,
                                                video=dataclasses.asdict(r)))
                continue
            loaded = io.load_image_with_icc(path)
            faces = detect_faces(loaded.pixels, upsample=upsample)
            pixels = loaded.pixels
            rel = out.relative_to(out_dir).as_posix()
            if faces:
                pixels = protect(loaded.pixels, faces, image_key(seed, rel))
            n_plates = 0
            if plates is not None:  # own key stream, independent of the face method's
                plate_key = jax.random.fold_in(image_key(seed, rel), PLATE_STREAM)
                pixels, n_plates = plates(path, pixels, plate_key)
            io.save_image(out, pixels, overwrite=overwrite, icc_profile=loaded.icc_profile)
            status = "protected" if faces or n_plates else "no_face"
            summary.files.append(FileResult(str(path), str(out), status, len(faces),
                                            plates=n_plates))
        except JaxprivError as e:
            summary.files.append(FileResult(str(path), None, "failed", reason=str(e)))
    return summary

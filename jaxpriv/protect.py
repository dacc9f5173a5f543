"""Protect photos on disk: files and folders in, ``OUTDIR/<input stem>.<ext>`` out (or
``OUTDIR/<index>.<ext>`` when the names carry what the pixels hide: ``--plates ccpd-names``).

For every image: load (validated, EXIF-oriented, converted to sRGB) → detect faces → the method
→ save without any metadata. Images without faces are written unchanged (pixels; metadata is
still dropped) and reported. A bad file is skipped with its reason and the run goes on; the
summary counts processed / without face / failed. Videos (``io.VIDEO_EXTENSIONS``) and live
streams go through :func:`jaxpriv.video.protect_video` into ``<stem>.mp4``.

A method whose build returns a :class:`MethodRun` (``mask``) also writes files beside each output
(its sealed key file), sets up once per run (reads its password) and, being reversible, takes
photos only and writes PNG only.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import jax
import numpy as np
from tqdm import tqdm

from jaxpriv import io, video
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import DEFAULT_DETECTOR, detect_faces
from jaxpriv.io.messages import shown
from jaxpriv.methods import MethodRun, ProtectFn

if TYPE_CHECKING:
    from jaxpriv.deid.plates import PlateSource
    from jaxpriv.recognizers import Recognizer


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
    # --check-identity (photos): faces each recognizer still matches to the original's
    still_recognised: dict[str, int] | None = None


@dataclasses.dataclass
class Summary:
    """Outcome of a run; ``exit_code`` is 1 if any file failed, else 0."""

    method: str
    seed: int | None  # None: fresh OS randomness, deliberately not recorded
    files: list[FileResult] = dataclasses.field(default_factory=list)
    detector: str = DEFAULT_DETECTOR  # what found the faces (a missed face is unprotected)

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)

    @property
    def exit_code(self) -> int:
        return 1 if self.count("failed") else 0

    def as_dict(self) -> dict:
        return {"method": self.method, "seed": self.seed, "detector": self.detector,
                "protected": self.count("protected"), "no_face": self.count("no_face"),
                "failed": self.count("failed"),
                "files": [_file_dict(f) for f in self.files]}

    def line(self) -> str:
        text = (f"{self.count('protected')} protected, {self.count('no_face')} without a face "
                f"(written unchanged), {self.count('failed')} failed")
        checked = [f for f in self.files if f.still_recognised is not None]
        if checked:
            faces = sum(f.faces for f in checked)
            names = dict.fromkeys(n for f in checked for n in f.still_recognised)
            counts = ", ".join(f"{n} {sum(f.still_recognised[n] for f in checked)}/{faces}"
                               for n in names)
            text += f"; faces still recognised as in the original photo: {counts}"
        return text


def _file_dict(result: FileResult) -> dict:
    """One file of the ``--json`` summary; ``still_recognised`` only when it was checked."""
    out = dataclasses.asdict(result)
    if out["still_recognised"] is None:
        del out["still_recognised"]
    return out


def extra_path(output: Path, suffix: str) -> Path:
    """``OUT/<stem>.png`` + ``.jpkey`` → ``OUT/<stem>.png.jpkey``."""
    return output.with_name(output.name + suffix)


def save_with_extras(
    output: Path, pixels: np.ndarray, extras: dict[Path, bytes], overwrite: bool = False,
    inputs: Sequence[Path | str] = (),
) -> None:
    """Save ``pixels`` to ``output`` and each extra file (mode 0600) beside it, all through
    :func:`jaxpriv.io.write_bytes_atomic`; if an extra file cannot be written, what was written
    is removed again, so no output is left without its extra files."""
    written = [io.save_image(output, pixels, overwrite=overwrite, inputs=inputs)]
    try:
        for path, data in extras.items():
            written.append(io.write_bytes_atomic(path, data, overwrite=overwrite, inputs=inputs,
                                                 mode=0o600))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


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


def image_key(seed: int, relative_name: str, content_sha256: bytes | None = None) -> jax.Array:
    """The PRNG key of one image: 64 bits of SHA-256(seed, SHA-256 of the input file's bytes,
    relative output path) as a threefry key, so an image's output does not depend on which other
    images are in the run, and two different photos with the same name (or two names) under one
    seed get unrelated noise. ``content_sha256=None`` (streams, which have no file): path only."""
    h = hashlib.sha256(b"jaxpriv image key v2\0")
    h.update(seed.to_bytes(SEED_BITS // 8, "big"))  # every seed bit, fixed width
    h.update(b"\0" * 33 if content_sha256 is None else b"\1" + content_sha256)
    h.update(relative_name.encode("utf-8"))  # last field: the encoding stays unambiguous
    words = np.frombuffer(h.digest()[:8], ">u4").astype(np.uint32)
    return jax.random.wrap_key_data(words, impl="threefry2x32")


def file_sha256(path: Path) -> bytes:
    """SHA-256 of a file's bytes (for :func:`image_key`)."""
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as f:  # in 1 MiB blocks: videos can be large (no file_digest: 3.10)
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.digest()
    except OSError as e:
        raise JaxprivError(f"{path}: cannot read ({e.strerror or e})") from None


def plan_outputs(
    inputs: Sequence[str], out_dir: Path, ext: str | None, neutral_names: bool = False
) -> list[tuple[Path | str, Path]]:
    """(input, output file) pairs; folders mirror their subfolders under ``out_dir``. Videos
    (and streams: URLs, ``camera:N``, kept as strings) go to ``<stem>.mp4``.

    ``neutral_names``: outputs are ``out_dir/<index>.<ext>`` instead (1-based, zero-padded, in
    input order, no subfolders, since folder names may carry the same text), for sources whose
    file names encode what the pixels hide (CCPD plates)."""
    pairs: list[tuple[Path | str, Path]] = []
    for arg in inputs:
        if io.is_stream(arg):
            pairs.append((str(arg), out_dir / f"{io.stream_name(str(arg))}.mp4"))
            continue
        root = Path(arg) if Path(arg).is_dir() else None
        for path in io.iter_media([arg]):
            out = (io.video_output_path(path, root, out_dir) if io.is_video(path)
                   else io.output_path(path, root, out_dir, ext))
            pairs.append((path, out))
    if neutral_names:
        width = max(4, len(str(len(pairs))))
        pairs = [(p, out_dir / f"{i:0{width}d}{o.suffix}") for i, (p, o) in enumerate(pairs, 1)]
    outputs = [o.resolve() for _, o in pairs]
    if len(set(outputs)) != len(outputs):
        dup = next(o for o in outputs if outputs.count(o) > 1)
        raise JaxprivError(f"{dup}: two inputs would be written to the same output file")
    return pairs


def protect_files(
    inputs: Sequence[str],
    out_dir: str | Path,
    protect: ProtectFn | MethodRun,
    method: str,
    seed: int | None = None,
    overwrite: bool = False,
    ext: str | None = None,
    upsample: int | None = None,
    video_options: video.VideoOptions | None = None,
    plates: PlateSource | None = None,
    detector: str = DEFAULT_DETECTOR,
    check: Sequence[Recognizer] = (),
) -> Summary:
    """Run ``protect`` over every image and video in ``inputs`` (files, folders, stream URLs)
    into ``out_dir``; the faces of photos are found by ``detect_faces(pixels, upsample,
    detector)``, videos go through :func:`jaxpriv.video.protect_video` (its detector is
    ``video_options.detector``). ``plates``
    (:func:`jaxpriv.deid.plates.plate_source`) then replaces each photo's licence plates; when
    it reads them from the file names (``plates.from_names``) the outputs get neutral names
    (:func:`plan_outputs`), and only the summary (``--json``) maps inputs to outputs.
    ``seed=None`` draws a 64-bit seed from the OS (``secrets``) and does not record it: whoever
    knows the seed can regenerate the noise, so only a seed the user chose is reproducible.
    A :class:`MethodRun` adds its extra files; a reversible one refuses ``seed``, ``plates`` and
    a ``--format`` other than PNG up front, and fails each video or stream with its reason.
    ``check`` (photos only): recognizers that report how many faces still match the original
    (:func:`jaxpriv.eval.identity_check.still_recognised`); the outputs do not depend on it."""
    from jaxpriv.eval.identity_check import still_recognised  # eval imports this module

    run = protect if isinstance(protect, MethodRun) else MethodRun(protect)
    if run.reversible:
        ext = _reversible_checks(method, seed, plates, ext)
    out_dir = Path(out_dir)
    recorded = seed
    if seed is None:
        seed = secrets.randbits(SEED_BITS)
    pairs = plan_outputs(inputs, out_dir, ext, plates is not None and plates.from_names)
    if not pairs:
        raise JaxprivError("no images found in the given paths")
    all_inputs = [p for p, _ in pairs]
    photo = run.photo_fn()
    summary = Summary(method, recorded, detector=detector)
    for path, out in tqdm(pairs, desc=f"protect ({method})", unit="img", disable=len(pairs) < 2):
        try:
            is_video = isinstance(path, str) or io.is_video(path)
            if run.reversible and is_video:
                raise JaxprivError(f"{shown(path)}: videos and streams are lossy; --method "
                                   f"{method} protects photos only (PNG, reversible)")
            extras = [extra_path(out, s) for s in run.extra_suffixes]
            for target in (out, *extras):
                io.check_writable(target, overwrite=overwrite, inputs=all_inputs)
            rel = out.relative_to(out_dir).as_posix()
            if isinstance(path, str):  # a stream: no file to hash
                key = image_key(seed, rel)
            else:
                key = image_key(seed, rel, file_sha256(path))
            if is_video:
                r = video.protect_video(path, out, run.protect, key, video_options, overwrite)
                summary.files.append(FileResult(str(path), str(out), "protected" if r.tracks
                                                else "no_face", r.tracks,
                                                video=dataclasses.asdict(r)))
                continue
            original = pixels = io.load_image(path)
            faces = detect_faces(pixels, upsample, detector)
            pixels, extra_data = photo(pixels, faces, key)
            matched = (still_recognised(original, pixels, faces, check, detector, upsample)
                       if check else None)
            n_plates = 0
            if plates is not None:  # own key stream, independent of the face method's
                pixels, n_plates = plates(path, pixels, jax.random.fold_in(key, PLATE_STREAM))
            save_with_extras(out, pixels, dict(zip(extras, extra_data, strict=True)),
                             overwrite=overwrite, inputs=all_inputs)
            status = "protected" if faces or n_plates else "no_face"
            summary.files.append(FileResult(str(path), str(out), status, len(faces),
                                            plates=n_plates, still_recognised=matched))
        except JaxprivError as e:
            summary.files.append(FileResult(str(path), None, "failed", reason=str(e)))
    return summary


def _reversible_checks(method: str, seed: int | None, plates: PlateSource | None,
                       ext: str | None) -> str:
    """Refuse what a reversible method would ignore or break; its output extension (png)."""
    for flag, given in (("--seed", seed is not None), ("--plates", plates is not None)):
        if given:
            raise JaxprivError(f"{flag} does not apply to --method {method}")
    if ext is not None and ext.lower().lstrip(".") != "png":
        raise JaxprivError(f"--format {ext}: --method {method} writes PNG only (lossless); a "
                           "lossy format would destroy the bits needed to restore")
    return "png"

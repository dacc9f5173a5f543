"""Protect photos on disk: files and folders in, ``OUTDIR/<input stem>.<ext>`` out.

For every image: load (validated, EXIF-oriented) → detect faces → the method → save without
metadata (ICC profile kept). Images without faces are written unchanged (pixels; metadata is
still dropped) and reported. A bad file is skipped with its reason and the run goes on; the
summary counts processed / without face / failed.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from pathlib import Path

import jax
from tqdm import tqdm

from jaxpriv import io
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


@dataclasses.dataclass
class Summary:
    """Outcome of a run; ``exit_code`` is 1 if any file failed, else 0."""

    method: str
    seed: int
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


def image_key(seed: int, relative_name: str) -> jax.Array:
    """The PRNG key of one image: the run's seed folded with a hash of its relative path, so an
    image's output does not depend on which other images are in the run."""
    return jax.random.fold_in(jax.random.key(seed), zlib.crc32(relative_name.encode()) & 0x7FFFFFFF)


def plan_outputs(inputs: Sequence[str], out_dir: Path, ext: str | None) -> list[tuple[Path, Path]]:
    """(input file, output file) pairs; folders mirror their subfolders under ``out_dir``."""
    pairs = []
    for arg in inputs:
        root = Path(arg) if Path(arg).is_dir() else None
        for path in io.iter_images([arg]):
            pairs.append((path, io.output_path(path, root, out_dir, ext)))
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
    seed: int = 0,
    overwrite: bool = False,
    ext: str | None = None,
    upsample: int = 1,
) -> Summary:
    """Run ``protect`` over every image in ``inputs`` (files or folders) into ``out_dir``."""
    out_dir = Path(out_dir)
    pairs = plan_outputs(inputs, out_dir, ext)
    if not pairs:
        raise JaxprivError("no images found in the given paths")
    all_inputs = [p for p, _ in pairs]
    summary = Summary(method, seed)
    for path, out in tqdm(pairs, desc=f"protect ({method})", unit="img", disable=len(pairs) < 2):
        try:
            io.ensure_not_input(out, all_inputs)
            if out.exists() and not overwrite:
                raise JaxprivError(f"{out}: exists (use --overwrite)")
            loaded = io.load_image_with_icc(path)
            faces = detect_faces(loaded.pixels, upsample=upsample)
            pixels = loaded.pixels
            if faces:
                rel = out.relative_to(out_dir).as_posix()
                pixels = protect(loaded.pixels, faces, image_key(seed, rel))
            io.save_image(out, pixels, overwrite=overwrite, icc_profile=loaded.icc_profile)
            status = "protected" if faces else "no_face"
            summary.files.append(FileResult(str(path), str(out), status, len(faces)))
        except JaxprivError as e:
            summary.files.append(FileResult(str(path), None, "failed", reason=str(e)))
    return summary

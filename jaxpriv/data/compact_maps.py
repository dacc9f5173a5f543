"""Compact, committable copies of SMNA map shards (:mod:`jaxpriv.data.map_shards`) and their
restore into a shards directory, so a long map run survives a change of machine.

A compact directory mirrors the shards directory::

    <compact>/manifest.json                the shards' manifest, unchanged (the plan)
    <compact>/<split>/shard-NNNNN.npz      deflated npz, fixed zip timestamps

holding per shard ``map_black``, ``map_white`` as float16, ``identity`` int32,
``identity_name``, ``filename``, ``clean_distance`` and ``reference_embedding`` float32, and
``image_sha256`` (hex SHA-256 of each uint8 SMNA image's bytes) instead of the image: no face
image is stored (they derive from research-only photos). `restore_compact` rebuilds each image
from its photo ``<faces_dir>/<filename>`` with the generator's own pipeline (manifest:
``aligned_crops``, ``detector`` (`manifest_detector`), ``recognizer`` chip size, ``image_size``),
checks its SHA-256, and writes the shard in the generator's format (maps float16 → float32:
within float16 rounding of the originals, everything else exact). Existing shards are never
touched, and the generator skips restored shards, so a restored directory resumes with the same
plan.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from jaxpriv.data.map_shards import (
    MANIFEST,
    read_manifest,
    read_shard,
    shard_path,
    shard_paths,
    write_manifest,
    write_npz_atomic,
)
from jaxpriv.errors import JaxprivError

_SHARD_KEYS = ("image", "identity", "identity_name", "filename", "map_black", "map_white",
               "clean_distance", "reference_embedding")  # generate_maps' order


def image_sha256(images: np.ndarray) -> np.ndarray:
    """Hex SHA-256 of each uint8 image's C-order bytes: ``(N,)`` str."""
    return np.asarray([hashlib.sha256(np.ascontiguousarray(im, np.uint8).tobytes()).hexdigest()
                       for im in images], str)


def manifest_detector(manifest: dict[str, Any], where: str | os.PathLike[str]) -> str:
    """The face detector that found the chips of a map set (its manifest's ``detector``). A
    manifest without one predates the field: aligned crops were then always found by HOG (the
    default of ``chips_from_aligned_crops``); photos were not mapped by this pipeline, so their
    images cannot be rebuilt: a one-line error, never a guess."""
    from jaxpriv.faces.detect import check_detector

    if "detector" in manifest:
        return check_detector(manifest["detector"])
    if manifest.get("aligned_crops", True):
        return "hog"
    raise JaxprivError(f"{Path(where) / MANIFEST}: names no face detector (maps from photos "
                       "made before manifests recorded it): their images cannot be rebuilt")


def export_compact(shards_dir: str | os.PathLike[str], compact_dir: str | os.PathLike[str],
                   max_bytes: int = 40_000_000) -> dict[str, Any]:
    """Write the compact copy of every finished shard of ``shards_dir`` not yet in
    ``compact_dir`` (and the manifest). Refuses if the compact directory would then exceed
    ``max_bytes``: the new shards are written, measured and removed again (the manifest stays).
    Returns ``{"shards": {split: n}, "new": n, "bytes": total}``."""
    src, dst = Path(shards_dir), Path(compact_dir)
    manifest = read_manifest(src)
    manifest_detector(manifest, src)  # a copy that could never be restored is refused now
    if (dst / MANIFEST).is_file() and read_manifest(dst) != manifest:
        raise JaxprivError(f"{dst} holds maps of another plan than {src}")
    todo = [(split, p) for split in manifest["splits"] for p in shard_paths(src / split)
            if not (dst / split / p.name).exists()]
    dst.mkdir(parents=True, exist_ok=True)
    write_manifest(dst, manifest)
    staged = []
    for split, path in todo:
        shard = read_shard(path)
        arrays = {"image_sha256": image_sha256(shard["image"]),
                  **{k: shard[k] for k in _SHARD_KEYS if k != "image"}}
        for k in ("map_black", "map_white"):
            arrays[k] = arrays[k].astype(np.float16)
        staged.append((dst / split / path.name, arrays))
    for target, arrays in staged:
        target.parent.mkdir(exist_ok=True)
        write_npz_atomic(target, arrays, compress=True)
    total = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
    if total > max_bytes:
        for target, _ in staged:
            target.unlink()
        raise JaxprivError(f"{dst} would hold {total / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB; "
                           "export fewer shards or raise max_bytes")
    counts = {split: len(shard_paths(dst / split)) for split in manifest["splits"]}
    return {"shards": counts, "new": len(staged), "bytes": total}


def restore_compact(compact_dir: str | os.PathLike[str], shards_dir: str | os.PathLike[str],
                    faces_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Rebuild the shards of ``compact_dir`` missing in ``shards_dir`` (module doc); the face
    images come from the photos under ``faces_dir``. Returns ``{"restored": n, "skipped": n}``."""
    from jaxpriv.io import load_image
    from jaxpriv.recognizers import load_recognizer
    from jaxpriv.smna.dataset import central_face, chips_of
    from jaxpriv.smna.sensitivity import to_smna_image

    src, dst, faces_dir = Path(compact_dir), Path(shards_dir), Path(faces_dir)
    manifest = read_manifest(src)
    detector = manifest_detector(manifest, src)
    if (dst / MANIFEST).is_file():
        if read_manifest(dst) != manifest:
            raise JaxprivError(f"{dst} holds maps of another plan than {src}")
    else:
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / MANIFEST, dst / MANIFEST)
    size = load_recognizer(manifest["recognizer"]).input_size
    restored = skipped = 0
    for split in manifest["splits"]:
        (dst / split).mkdir(exist_ok=True)
        for path in shard_paths(src / split):
            target = shard_path(dst / split, int(path.name[6:11]))
            if target.exists():
                skipped += 1
                continue
            compact = read_shard(path)
            images = []
            for name in compact["filename"]:
                photo = load_image(faces_dir / str(name))
                face = None if manifest["aligned_crops"] else central_face(photo, detector)
                if face is None and not manifest["aligned_crops"]:
                    raise JaxprivError(f"{name}: no face found ({detector}) on restore")
                images.append(to_smna_image(chips_of([photo], [face], size, detector),
                                            manifest["image_size"])[0])
            images = np.stack(images)
            bad = [str(n) for n, a, b in zip(compact["filename"], image_sha256(images),
                                             compact["image_sha256"], strict=True) if a != b]
            if bad:
                raise JaxprivError(f"{path}: rebuilt image differs from the mapped one for "
                                   f"{', '.join(bad[:3])} (other photos or image pipeline)")
            arrays = {k: images if k == "image" else compact[k] for k in _SHARD_KEYS}
            for k in ("map_black", "map_white"):
                arrays[k] = arrays[k].astype(np.float32)
            write_npz_atomic(target, arrays)
            restored += 1
    return {"restored": restored, "skipped": skipped}

"""The on-disk format of generated SMNA sensitivity maps: a shards directory.

Written by :func:`jaxpriv.smna.dataset.generate_maps`, read by
:func:`jaxpriv.smna.dataset.load_maps` and by the TFDS builder beside this module
(:mod:`jaxpriv.data.sensitivity_maps`)::

    <dir>/manifest.json                the plan (settings, identity names, files per split)
    <dir>/<split>/shard-NNNNN.npz      uncompressed npz, fixed zip timestamps (byte-reproducible)

Splits: ``train``, ``validation``, ``test`` (:mod:`jaxpriv.data.splits`). Shard contents:
``image`` uint8 (n,S,S,3), ``identity`` int32 (n,), ``identity_name``, ``filename`` (unicode),
``map_black``, ``map_white`` float32 (n,S,S), ``clean_distance`` float32 (n,),
``reference_embedding`` float32 (n,D). Every file is written
atomically (temporary file in the same directory + rename), so a killed writer leaves whole files.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxpriv.errors import JaxprivError

FORMAT_VERSION = 2  # 2: splits train/validation/test (1: train/heldout)
MANIFEST = "manifest.json"
MAP_KEYS = ("image", "identity", "map_black", "map_white", "clean_distance")
META_KEYS = ("identity_name", "filename", "reference_embedding")
SHARD_RE = re.compile(r"^shard-(\d{5})\.npz$")


def shard_path(split_dir: str | os.PathLike[str], index: int) -> Path:
    """``<split_dir>/shard-NNNNN.npz`` of shard ``index``."""
    return Path(split_dir) / f"shard-{index:05d}.npz"


def shard_paths(split_dir: str | os.PathLike[str]) -> list[Path]:
    """Shard files ``shard-NNNNN.npz`` of one split directory, in shard-index order."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        return []
    return sorted(p for p in split_dir.iterdir() if SHARD_RE.match(p.name))


def is_shards_dir(path: str | os.PathLike[str]) -> bool:
    """True for a shards directory (has a manifest) or one split directory of shards."""
    path = Path(path)
    return (path / MANIFEST).is_file() or bool(shard_paths(path))


def read_manifest(shards_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``manifest.json`` of ``shards_dir``."""
    path = Path(shards_dir) / MANIFEST
    if not path.is_file():
        raise JaxprivError(f"no manifest.json in {shards_dir}: not a sensitivity-map directory")
    return json.loads(path.read_text())


def write_manifest(shards_dir: str | os.PathLike[str], manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically."""
    path = Path(shards_dir) / MANIFEST
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, path)


def write_npz_atomic(path: Path, arrays: dict[str, np.ndarray], compress: bool = False) -> None:
    """Write an ``.npz`` (deflated if `compress`) reproducibly (fixed zip timestamps, given key
    order) to a temporary file in the same directory, fsync, then rename it to ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as raw:
            method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            with zipfile.ZipFile(raw, "w", compression=method) as zf:
                for key, value in arrays.items():
                    info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                    with zf.open(info, "w", force_zip64=True) as f:
                        np.lib.format.write_array(f, np.ascontiguousarray(value),
                                                  allow_pickle=False)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_shard(path: str | os.PathLike[str], keys: Sequence[str] | None = None,
               ) -> dict[str, np.ndarray]:
    """The arrays of one shard file (``keys``, default all)."""
    with np.load(path, allow_pickle=False) as shard:
        return {k: shard[k] for k in (shard.files if keys is None else keys)}


def read_split(split_dir: str | os.PathLike[str], keys: Sequence[str]) -> dict[str, np.ndarray]:
    """``keys`` of every shard of one split directory, concatenated in shard order."""
    parts = [read_shard(p, keys) for p in shard_paths(split_dir)]
    if not parts:
        raise JaxprivError(f"no shard-*.npz in {split_dir}")
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}

"""Sharded, resumable generation of SMNA ground-truth maps (Alg. 1) and `load_maps` for training.

Data: an `identity_faces` data source (`jaxpriv.data.load_identity_faces`); each identity's
`is_reference` image is the paper's labelled "official portrait" ``x_labeled`` (Sec. IV-A) and
is itself excluded (its distance is 0). Each other image ``x`` is aligned to the recognizer's chip
(dlib: 150×150), downsampled to the 64×64 SMNA image (`to_smna_image`) and gets a black and a
white map against the embedding of its portrait's full-size chip (`sensitivity_maps`).
With an ensemble (``recognizer="dlib_resnet,sface"``) the SMNA image is the dlib150 chip's, the
distance is Σ τ_i·d_i/t_i with each member seeing its own chip warped from the SMNA image
(:mod:`jaxpriv.recognizers.ensemble`); shards then also hold ``member_affines`` (N, M, 2, 3) and
``reference_embedding`` is the members' embeddings side by side.

Faces: pre-aligned crops (``aligned_crops=True``, e.g. glint's 112×112) always give a chip
(`chips_from_aligned_crops`). Photos (``aligned_crops=False``, e.g. celeba299's loose 256×256
crops) go through `detect_faces` (``detector``: "yunet" finds more faces than HOG) once, when
the plan is made; the face nearest the photo's centre is taken. A photo without a face is left
out of the plan and listed in the manifest's ``skipped`` (an identity's portrait is then its
first photo with a face; an identity without one is skipped whole).

Plan (fixed by the manifest, deterministic): identities fall into the project's one split
(:mod:`jaxpriv.data.splits`: train / validation / test); within a split, images are ordered
round-robin over the sorted identities (the 1st non-reference image of every identity, then the
2nd, ...), so any prefix covers every identity; train first, then validation, then test.
Split ``k`` is cut into shards of `shard_size` consecutive images,
`<out_dir>/<split>/shard-NNNNN.npz`.

Execution: shard ``i`` of a split is done by worker ``i % count == index`` with ``(index, count)``
= ``(jax.process_index(), jax.process_count())`` (pods, after ``jax.distributed.initialize``:
each process reads and writes only its own shards; the only cross-host traffic is the
all-gather of face-found flags when photos are detected (each process detects every count-th
photo), process 0 writing the manifest, and a barrier at the end) or an explicit
``worker=(index, count)`` for independent processes on one host (one process pinned to each
core can beat one process over all: `benchmarks/cores.py`);
`only_splits` and `max_shards` restrict one run without changing the plan; inside a process the
batch of images (so every chunk of perturbed images) is sharded over a `Mesh` of its local
devices (`data` axis). A shard is written atomically, and existing shards are skipped: a killed
run restarted with the same settings resumes and ends with byte-identical files.

Shard format (files, keys, atomic writes): :mod:`jaxpriv.data.map_shards`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from tqdm import tqdm

from jaxpriv.data.map_shards import (
    FORMAT_VERSION,
    MAP_KEYS,
    META_KEYS,
    is_shards_dir,
    read_manifest,
    read_split,
    shard_path,
    write_manifest,
    write_npz_atomic,
)
from jaxpriv.data.splits import SPLITS, identity_split
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face, chips_from_aligned_crops, detect_faces, extract_chips
from jaxpriv.faces.detect import check_detector
from jaxpriv.parallel import make_mesh
from jaxpriv.recognizers import load_recognizer
from jaxpriv.smna.sensitivity import sensitivity_maps, to_smna_image

SPLIT_RULE = "jaxpriv.data.splits: SHA-256('0:'+name), test < 0.2 <= validation < 0.3 <= train"

# Manifest entries that define the shards' contents: a resume must match them exactly.
_PLAN_KEYS = ("format", "recognizer", "image_size", "chunk", "images_per_device", "shard_size",
              "split_rule", "max_images", "aligned_crops", "detector", "splits", "skipped")


@dataclasses.dataclass(frozen=True)
class Example:
    """One image of the source: its index there and its labels."""

    index: int
    identity: int
    identity_name: str
    filename: str
    index_in_identity: int


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def list_examples(source: Sequence[dict[str, Any]]) -> tuple[list[Example], dict[int, Example]]:
    """(non-reference examples, reference example per identity label) of an identity_faces
    data source, in source order."""
    others: list[Example] = []
    refs: dict[int, Example] = {}
    for i in range(len(source)):
        item = source[i]
        ex = Example(i, int(item["identity"]), _text(item["identity_name"]),
                     _text(item["filename"]), int(item["index_in_identity"]))
        if bool(item["is_reference"]):
            refs[ex.identity] = ex
        else:
            others.append(ex)
    return others, refs


def round_robin(examples: Sequence[Example]) -> list[Example]:
    """Interleave by identity: rank 0 of every identity (sorted names), then rank 1, ..."""
    by_name: dict[str, list[Example]] = {}
    for ex in sorted(examples, key=lambda e: (e.identity_name, e.index_in_identity)):
        by_name.setdefault(ex.identity_name, []).append(ex)
    depth = max((len(v) for v in by_name.values()), default=0)
    return [v[k] for k in range(depth) for _, v in sorted(by_name.items()) if k < len(v)]


def generation_order(
    examples: Sequence[Example],
    splits: Sequence[str] = SPLITS,
    max_images: int = 0,
) -> dict[str, list[Example]]:
    """The plan: `{split: [...]}` round-robin orders of the identities of each of `splits`
    (:func:`jaxpriv.data.splits.identity_split`), each cut to its first `max_images` (0 = all)."""
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise JaxprivError(f"unknown split(s) {', '.join(bad)}; choose from {', '.join(SPLITS)}")
    plan = {split: round_robin([e for e in examples if identity_split(e.identity_name) == split])
            for split in SPLITS if split in splits}
    if max_images:
        plan = {k: v[:max_images] for k, v in plan.items()}
    return plan


DETECT_UPSAMPLE = {"hog": 1, "yunet": 0}
"""`detect_faces` upsampling of the map pipeline, fixed (not the detector's default, which may
change): other boxes would give other chips, and a resumed run other images."""


def central_face(image: np.ndarray, detector: str = "hog") -> Face | None:
    """The `detect_faces` face (upsampling `DETECT_UPSAMPLE`) whose box centre is nearest the
    photo's centre, or None."""
    faces = detect_faces(image, upsample=DETECT_UPSAMPLE[check_detector(detector)],
                         detector=detector)
    centre = np.array(image.shape[1::-1], np.float64) / 2 - 0.5
    return min(faces, default=None, key=lambda f: float(np.hypot(
        (f.box[0] + f.box[2]) / 2 - centre[0], (f.box[1] + f.box[3]) / 2 - centre[1])))


def drop_faceless(
    source: Sequence[dict[str, Any]], examples: Sequence[Example], refs: dict[int, Example],
    detector: str, share: tuple[int, int] | None = None,
) -> tuple[list[Example], dict[int, Example], dict[int, Face], dict[str, str]]:
    """Detect the face of every photo (`central_face`): (examples, references, faces by source
    index, skipped {filename: reason}). A faceless portrait passes the role to the identity's
    next photo with a face. With ``share=(index, count)`` (JAX processes) this process detects
    only every count-th photo from index, the found flags are all-gathered, and ``faces`` holds
    only this process's detections."""
    ordered = sorted([*examples, *refs.values()], key=lambda e: (e.identity, e.index_in_identity))
    index, count = share or (0, 1)
    faces: dict[int, Face] = {}
    found = np.zeros(len(ordered), np.int8)
    for k in range(index, len(ordered), count):
        face = central_face(np.asarray(source[ordered[k].index]["image"]), detector)
        if face is not None:
            faces[ordered[k].index] = face
            found[k] = 1
    if count > 1:
        from jax.experimental import multihost_utils

        found = np.asarray(multihost_utils.process_allgather(found)).max(axis=0)
    skipped: dict[str, str] = {}
    by_identity: dict[int, list[Example]] = {}
    for ex, ok in zip(ordered, found, strict=True):
        if ok:
            by_identity.setdefault(ex.identity, []).append(ex)
        else:
            skipped[ex.filename] = f"no face found ({detector})"
    kept = [ex for group in by_identity.values() for ex in group[1:]]
    return kept, {i: group[0] for i, group in by_identity.items()}, faces, skipped


def chips_of(images: Sequence[np.ndarray], faces: Sequence[Face | None], size: int,
           detector: str) -> np.ndarray:
    """Recognizer chips: from the detected `faces` of photos, or (face None) from pre-aligned
    crops via `chips_from_aligned_crops`."""
    out = []
    for image, face in zip(images, faces, strict=True):
        if face is None:
            out.append(chips_from_aligned_crops(image, size=size, detector=detector)[0])
        else:
            out.append(extract_chips(image, [face], size=size)[0][0])
    return np.stack(out)


def _ensemble_views(images: Sequence[np.ndarray], faces: Sequence[Face | None], ens: Any,
                    size: int) -> tuple[np.ndarray, np.ndarray, list[list[np.ndarray]]]:
    """For an ensemble: SMNA images (the dlib150 chip, area-downsampled, as for dlib alone), each
    member's affine into them ``(N, M, 2, 3)`` and each member's embedding of the photo's own
    chip (per image, per member). A face None is a pre-aligned crop."""
    from jaxpriv.faces import pin_face
    from jaxpriv.faces.align import photo_from_aligned_crop
    from jaxpriv.recognizers.ensemble import chip_affines, clean_embeddings
    from jaxpriv.smna.sensitivity import smna_transform

    out, affines, embeddings = [], [], []
    for image, found in zip(images, faces, strict=True):
        photo, face = photo_from_aligned_crop(image) if found is None else (image, found)
        face = pin_face(photo, face)
        chips, transforms = extract_chips(photo, [face], "dlib150")
        out.append(to_smna_image(chips[0], size))
        affines.append(chip_affines(photo, face, ens, smna_transform(transforms[0], 150, size)))
        embeddings.append(clean_embeddings(ens, photo, face))
    return np.stack(out), np.stack(affines), embeddings


def generate_maps(
    source: Sequence[dict[str, Any]],
    out_dir: str | os.PathLike[str],
    *,
    recognizer: str = "dlib_resnet",
    image_size: int = 64,
    chunk: int = 8,
    images_per_device: int = 1,
    shard_size: int = 4,
    splits: Sequence[str] = SPLITS,
    max_images: int = 0,
    max_shards: int = 0,
    only_splits: Sequence[str] = SPLITS,
    worker: tuple[int, int] | None = None,
    aligned_crops: bool = True,
    detector: str = "hog",
    mesh: Mesh | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Compute and write the missing shards of black and white Alg. 1 maps (see module doc).

    `splits` (which splits are mapped) and `max_images` (per split, 0 = all) are the plan;
    `max_shards` (0 = no limit) only stops this run after writing that many new shards;
    `only_splits` names the splits this run works on (in that order). `worker=(index, count)`
    takes every count-th shard from index (default: this JAX process of all). `aligned_crops`
    and `detector` choose how chips are found (module doc). `mesh` defaults
    to all local devices. Returns counts and speeds (`images_per_s`, `queries_per_s`)."""
    out = Path(out_dir)
    check_detector(detector)
    bad = [s for s in only_splits if s not in SPLITS]
    if bad:
        raise JaxprivError(f"unknown split(s) {', '.join(bad)}; choose from {', '.join(SPLITS)}")
    p_index, p_count = worker or (jax.process_index(), jax.process_count())
    hosts = worker is None and p_count > 1  # JAX processes: collectives for the plan
    if not 0 <= p_index < p_count:
        raise JaxprivError(f"worker index {p_index} is not in 0..{p_count - 1}")
    from jaxpriv.recognizers.ensemble import load_ensemble, parse_spec

    ens = load_ensemble(recognizer) if len(parse_spec(recognizer)) > 1 else None
    rec = ens if ens is not None else load_recognizer(recognizer)
    mesh = make_mesh(local=True) if mesh is None else mesh
    examples, refs = list_examples(source)
    names = {e.identity: e.identity_name for e in [*examples, *refs.values()]}
    faces: dict[int, Face] = {}
    skipped: dict[str, str] = {}
    if not aligned_crops:
        examples, refs, faces, skipped = drop_faceless(
            source, examples, refs, detector, (p_index, p_count) if hosts else None)
    plan = generation_order(examples, splits, max_images)
    manifest = {
        "format": FORMAT_VERSION, "recognizer": recognizer, "image_size": image_size,
        "chunk": chunk, "images_per_device": images_per_device, "shard_size": shard_size,
        "split_rule": SPLIT_RULE, "max_images": max_images, "aligned_crops": aligned_crops,
        "detector": detector,
        "identity_names": [names.get(i, f"#{i}") for i in range(max(names, default=-1) + 1)],
        "reference": "is_reference image of each identity; embedding of its full-size chip",
        "smna_image": "dlib chip, cv2.INTER_AREA to image_size, uint8",
        "faces": (f"pre-aligned crops, {detector} in the padded x3 crop" if aligned_crops else
                  f"detect_faces({detector}, upsample={DETECT_UPSAMPLE.get(detector)}), box "
                  "centre nearest the photo centre"),
        "query_resize": "jax.image.resize bilinear, antialias=False, to the recognizer size",
        "sign": "s = d(pixel set to noise colour) - d(x); s > 0 moves away from identity",
        "splits": {k: [e.filename for e in v] for k, v in plan.items()},
        "references": {names[i]: e.filename for i, e in sorted(refs.items())},
        "skipped": skipped,
    }
    out.mkdir(parents=True, exist_ok=True)
    if (out / "manifest.json").exists():
        old = read_manifest(out)
        diff = [k for k in _PLAN_KEYS if old.get(k) != manifest[k]]
        if diff:
            raise JaxprivError(f"{out} holds maps made with other settings ({', '.join(diff)}); "
                               "use another out_dir or the same settings")
    elif not hosts or p_index == 0:
        write_manifest(out, manifest)

    def face_of(ex: Example) -> Face | None:  # None for pre-aligned crops
        if aligned_crops:
            return None
        if ex.index not in faces:  # found by another process
            face = central_face(np.asarray(source[ex.index]["image"]), detector)
            if face is None:
                raise JaxprivError(f"{ex.filename}: face found by another process, not here")
            faces[ex.index] = face
        return faces[ex.index]

    jobs = []  # (split, shard index, examples) of this worker
    for split in plan:
        (out / split).mkdir(exist_ok=True)
    for split in [name for name in only_splits if name in plan]:
        order = plan[split]
        for s in range(math.ceil(len(order) / shard_size)):
            if s % p_count == p_index:
                jobs.append((split, s, order[s * shard_size : (s + 1) * shard_size]))
    exists = [shard_path(out / split, s).exists() for split, s, _ in jobs]
    done = [j for j, e in zip(jobs, exists, strict=True) if e]
    todo = [j for j, e in zip(jobs, exists, strict=True) if not e]
    ref_cache: dict[int, np.ndarray] = {}
    bar = tqdm(total=sum(len(j[2]) for j in jobs), initial=sum(len(j[2]) for j in done),
               unit="img", desc=f"smna maps (worker {p_index}/{p_count})", disable=not progress,
               dynamic_ncols=True, mininterval=10.0, file=sys.stderr)
    written, images_done, start = 0, 0, time.perf_counter()
    for split, s, batch in todo:
        if max_shards and written >= max_shards:
            break
        t0 = time.perf_counter()
        if ens is not None:  # ensemble: distance Σ τ_i·d_i/t_i, each member its own chip
            for ex in batch:
                if ex.identity not in ref_cache:
                    ref = refs[ex.identity]
                    ref_cache[ex.identity] = _ensemble_views(
                        [source[ref.index]["image"]], [face_of(ref)], ens, image_size)[2][0]
            images, affines, _ = _ensemble_views(
                [source[e.index]["image"] for e in batch], [face_of(e) for e in batch], ens,
                image_size)
            members = [np.stack([ref_cache[e.identity][i] for e in batch]).astype(np.float32)
                       for i in range(len(ens.members))]
            kw = dict(chunk=chunk, mesh=mesh, images_per_device=images_per_device,
                      affines=affines)
            map_black, d0 = sensitivity_maps(ens, images, members, "black", **kw)
            map_white, _ = sensitivity_maps(ens, images, members, "white", **kw)
            ref_emb = np.concatenate(members, axis=1)  # members' embeddings side by side
            extra = {"member_affines": affines}
        else:
            for ex in batch:
                if ex.identity not in ref_cache:
                    ref = refs[ex.identity]
                    chip = chips_of([source[ref.index]["image"]], [face_of(ref)], rec.input_size,
                                    detector)
                    ref_cache[ex.identity] = rec.embed(chip)[0]
            chips = chips_of([source[e.index]["image"] for e in batch],
                             [face_of(e) for e in batch], rec.input_size, detector)
            images = to_smna_image(chips, image_size)
            ref_emb = np.stack([ref_cache[e.identity] for e in batch]).astype(np.float32)
            kw = dict(chunk=chunk, mesh=mesh, images_per_device=images_per_device)
            map_black, d0 = sensitivity_maps(rec, images, ref_emb, "black", **kw)
            map_white, _ = sensitivity_maps(rec, images, ref_emb, "white", **kw)
            extra = {}
        write_npz_atomic(shard_path(out / split, s), {
            "image": images,
            "identity": np.asarray([e.identity for e in batch], np.int32),
            "identity_name": np.asarray([e.identity_name for e in batch], str),
            "filename": np.asarray([e.filename for e in batch], str),
            "map_black": map_black,
            "map_white": map_white,
            "clean_distance": d0,
            "reference_embedding": ref_emb,
            **extra,
        })
        written += 1
        images_done += len(batch)
        dt = time.perf_counter() - t0
        queries = 2 * len(batch) * image_size * image_size
        bar.update(len(batch))
        rate = images_done / (time.perf_counter() - start)
        bar.write(f"{split}/shard-{s:05d}: {len(batch)} images in {dt:.1f} s "
                  f"({len(batch) / dt:.4f} images/s, {queries / dt:.1f} queries/s); run mean "
                  f"{rate:.4f} images/s, {2 * rate * image_size**2:.1f} queries/s",
                  file=sys.stdout)
        sys.stdout.flush()
    bar.close()
    seconds = time.perf_counter() - start
    if hosts:  # every process's shards are written before "complete" is judged
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("jaxpriv.smna.dataset.generate_maps")
    complete = all(shard_path(out / split, k).exists()
                   for split, order in plan.items()
                   for k in range(math.ceil(len(order) / shard_size)))
    return {
        "shards_written": written, "shards_skipped": len(done), "shards_total": len(jobs),
        "images_done": images_done, "seconds": seconds,
        "images_per_s": images_done / seconds if seconds > 0 else 0.0,
        "queries_per_s": 2 * images_done * image_size**2 / seconds if seconds > 0 else 0.0,
        "complete": complete, "devices": int(mesh.size), "worker": [p_index, p_count],
    }


def load_maps(
    path: str | os.PathLike[str], split: str = "train", with_metadata: bool = False
) -> dict[str, np.ndarray]:
    """All maps of one split as NumPy arrays, for SMGG training.

    Keys: `image` (N,64,64,3) uint8, `identity` (N,) int32, `map_black`, `map_white`
    (N,64,64) float32, `clean_distance` (N,) float32; `with_metadata` adds `identity_name`,
    `filename` (str) and `reference_embedding` (N,D). `path` may be

    * a shards directory written by `generate_maps` (has `manifest.json`): reads
      `<path>/<split>/shard-*.npz` in order: the shards finished so far, while a run is going;
    * one split directory of such shards (`split` is then ignored);
    * a TFDS data dir where `sensitivity_maps` is prepared (`jaxpriv.data.sensitivity_maps`).
    """
    path = Path(path)
    keys = MAP_KEYS + (META_KEYS if with_metadata else ())
    if is_shards_dir(path):
        result = read_split(path / split if (path / "manifest.json").is_file() else path, keys)
    elif (path / "sensitivity_maps").is_dir():
        # tensorflow_datasets is a heavy import, needed only for a prepared TFDS data dir
        from jaxpriv.data.sensitivity_maps import load_sensitivity_maps

        source = load_sensitivity_maps(path, split)
        items = [source[i] for i in range(len(source))]
        if not items:
            raise JaxprivError(f"sensitivity_maps split {split!r} in {path} is empty")
        result = {k: np.stack([np.asarray(it[k]) for it in items]) for k in keys}
        for k in ("identity_name", "filename"):
            if k in result:
                result[k] = np.asarray([_text(v) for v in result[k]], str)
    else:
        raise JaxprivError(f"{path}: neither a shards directory nor a TFDS data dir with "
                           "sensitivity_maps")
    result["identity"] = result["identity"].astype(np.int32)
    for k in ("map_black", "map_white", "clean_distance"):
        result[k] = result[k].astype(np.float32)
    return result

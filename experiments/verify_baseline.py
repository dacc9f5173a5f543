"""Baseline verification table: same-identity TAR at the recognizer's threshold and at thresholds
calibrated to target false-accept rates (protocol: first sorted image of each identity is its
reference portrait, the others are probes; impostor pairs = probes vs other references)."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import ml_collections
import numpy as np
from tqdm import tqdm

from jaxpriv import metrics
from jaxpriv.data import load_identity_faces
from jaxpriv.faces import chips_from_aligned_crops, extract_chips, require_one_face
from jaxpriv.machine import cpu_model
from jaxpriv.recognizers import load_recognizer


def _chip(image: np.ndarray, aligned: bool, size: int, name: str) -> np.ndarray:
    if aligned:
        return chips_from_aligned_crops(image, size=size)[0]
    return extract_chips(image, [require_one_face(image, name)], size=size)[0][0]


def embed_dataset(config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings, identity labels and reference flags of every (kept) image."""
    source = load_identity_faces(config.faces_dir, config.tfds_dir)
    rec = load_recognizer(config.recognizer)
    keep = [i for i in range(len(source))
            if not config.max_per_identity
            or source[i]["index_in_identity"] < config.max_per_identity]
    chips, labels, refs = [], [], []
    for i in tqdm(keep, desc="align", unit="img"):
        ex = source[i]
        chips.append(_chip(ex["image"], config.aligned_crops, rec.input_size, str(ex["filename"])))
        labels.append(int(ex["identity"]))
        refs.append(bool(ex["is_reference"]))
    emb = rec.embed(np.stack(chips), batch_size=config.batch_size)
    return emb, np.asarray(labels), np.asarray(refs)


def verification_table(emb: np.ndarray, labels: np.ndarray, refs: np.ndarray, threshold: float,
                       far_targets: tuple[float, ...]) -> dict:
    """Genuine and impostor distances of probes to references, and TAR at each threshold."""
    ref_of = {int(labels[i]): emb[i] for i in np.flatnonzero(refs)}
    probes = np.flatnonzero(~refs)
    ids = sorted(ref_of)
    ref_mat = np.stack([ref_of[k] for k in ids])
    d = np.linalg.norm(emb[probes, None, :] - ref_mat[None], axis=-1)  # (probes, identities)
    own = np.asarray([ids.index(int(labels[p])) for p in probes])
    genuine = d[np.arange(len(probes)), own]
    impostor = d[np.arange(d.shape[1])[None, :] != own[:, None]]
    rows = [{"threshold_name": f"recognizer ({threshold})", "threshold": threshold,
             "tar": metrics.true_accept_rate(genuine, threshold),
             "far": metrics.false_accept_rate(impostor, threshold)}]
    for far in far_targets:
        t = metrics.threshold_at_far(impostor, far)
        rows.append({"threshold_name": f"FAR={far:g}", "threshold": t,
                     "tar": metrics.true_accept_rate(genuine, t),
                     "far": metrics.false_accept_rate(impostor, t)})
    return {"identities": len(ids), "probes": int(len(probes)),
            "genuine_pairs": int(genuine.size), "impostor_pairs": int(impostor.size),
            "genuine_mean": float(genuine.mean()), "impostor_mean": float(impostor.mean()),
            "rows": rows}


def run(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Embed the folder, compute the table, write JSON + Markdown with the command."""
    del workdir  # writes only the committed results files of the config (out_*)
    start = time.time()
    emb, labels, refs = embed_dataset(config)
    rec = load_recognizer(config.recognizer)
    table = verification_table(emb, labels, refs, rec.threshold, tuple(config.far_targets))
    table.update(
        recognizer=rec.name, faces_dir=config.faces_dir, seconds=round(time.time() - start, 1),
        command=" ".join(["python -m experiments.main", *sys.argv[1:]]),
        machine=f"{platform.processor() or platform.machine()}, {cpu_model()}, "
                f"{__import__('os').cpu_count()} cores",
    )
    Path(config.out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(config.out_json).write_text(json.dumps(table, indent=2) + "\n")
    Path(config.out_md).write_text(_markdown(table))
    print(_markdown(table))
    return table


def _markdown(t: dict) -> str:
    lines = [
        f"# Baseline verification: {t['recognizer']} on `{t['faces_dir']}`",
        "",
        f"Command: `{t['command']}`  ",
        f"Machine: {t['machine']}; wall time {t['seconds']} s.",
        "",
        f"{t['identities']} identities; reference = first sorted image of each; "
        f"{t['probes']} probes; {t['genuine_pairs']} genuine and {t['impostor_pairs']} "
        f"impostor pairs (probe vs other identities' references). Mean distance genuine "
        f"{t['genuine_mean']:.3f}, impostor {t['impostor_mean']:.3f}.",
        "",
        "| threshold | value | TAR (same identity accepted) | FAR (measured) |",
        "|---|---|---|---|",
    ]
    for r in t["rows"]:
        lines.append(f"| {r['threshold_name']} | {r['threshold']:.4f} | {100 * r['tar']:.2f} % "
                     f"| {100 * r['far']:.3f} % |")
    return "\n".join(lines) + "\n"

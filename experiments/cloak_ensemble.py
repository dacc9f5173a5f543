"""Cloak built on dlib, on SFace, or on both (an ensemble): which transfers best?

Validation identities only (:mod:`jaxpriv.data.splits`). Per identity the first photo (sorted
names) is the reference, the next ``probes_per_identity`` are probes. Faces: YuNet (celeba299
photos are 256×256 loose crops; glint's 112×112 ArcFace crops become photos by
:func:`jaxpriv.faces.align.photo_from_aligned_crop` with YuNet), the geometry pinned
(:func:`jaxpriv.faces.pin_face`) so every chip of the protected photo is cut where
the clean one was. Each probe is cloaked by every variant at the same preset (the budget holds on
the dlib150 and ArcFace-112 chips alike) and measured by every recognizer at its own threshold
against the identity's clean reference. Protection success = share of the probes matched when
clean that no longer match. A cell is white-box when the recognizer is in the variant's
ensemble, black-box otherwise (with two recognizers: hold one out in turn).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
from tqdm import tqdm

from experiments.results_io import write_results
from jaxpriv.baselines import BUDGET_VIEWS, dssim
from jaxpriv.data.splits import identity_split
from jaxpriv.eval.protocol import list_identities
from jaxpriv.faces import detect_faces, extract_chips, largest_face, pin_face
from jaxpriv.faces.align import photo_from_aligned_crop
from jaxpriv.io import load_image
from jaxpriv.machine import machine_description
from jaxpriv.methods import get_method
from jaxpriv.protect import image_key
from jaxpriv.recognizers import load_recognizer
from jaxpriv.recognizers.ensemble import parse_spec


def face_photo(path: Path) -> tuple[np.ndarray, Any] | None:
    """(photo, pinned face) of a glint crop or a celeba299 photo (largest YuNet face)."""
    image = load_image(path)
    if image.shape[0] == image.shape[1] == 112:
        photo, face = photo_from_aligned_crop(image, detector="yunet")
    else:
        photo, face = image, largest_face(detect_faces(image, detector="yunet"))
        if face is None:
            return None
    return photo, pin_face(photo, face)


def run(config: ml_collections.ConfigDict, workdir: str) -> None:
    del workdir  # nothing to cache: results go to experiments/results
    start = time.perf_counter()
    recs = [load_recognizer(n) for n in config.measured_by]
    cloaks = {v: get_method("cloak").make(preset=config.preset, steps=config.steps,
                                          recognizer=v) for v in config.variants}
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for dataset, root in config.datasets.items():
        idents = [i for i in list_identities(root, config.probes_per_identity[dataset])
                  if identity_split(i.name) == config.split]
        for ident in tqdm(idents, desc=dataset, unit="identity"):
            ref = face_photo(ident.reference)
            if ref is None:
                skipped.append(str(ident.reference))
                continue
            refs = [r.embed(extract_chips(ref[0], [ref[1]], r)[0])[0] for r in recs]
            for path in ident.probes:
                probe = face_photo(path)
                if probe is None:
                    skipped.append(str(path))
                    continue
                photo, face = probe
                row = {"dataset": dataset, "identity": ident.name, "probe": path.name,
                       "clean": [], "protected": {}, "dssim": {}, "seconds": {}}
                for r, e in zip(recs, refs, strict=True):
                    chip = extract_chips(photo, [face], r)[0]
                    row["clean"].append(float(r.distance(r.embed(chip)[0], e)))
                key = image_key(config.seed, f"{dataset}/{ident.name}/{path.name}")
                for v, protect in cloaks.items():
                    t0 = time.perf_counter()
                    out = protect(photo, [face], key)
                    row["seconds"][v] = time.perf_counter() - t0
                    row["protected"][v] = [
                        float(r.distance(r.embed(extract_chips(out, [face], r)[0])[0], e))
                        for r, e in zip(recs, refs, strict=True)]
                    row["dssim"][v] = [dssim(extract_chips(out, [face], a)[0][0],
                                             extract_chips(photo, [face], a)[0][0])
                                       for a, _ in BUDGET_VIEWS]
                rows.append(row)
    result = summarise(config, recs, rows)
    result |= {"skipped": skipped, "rows": rows, "command": config.command,
               "seconds": round(time.perf_counter() - start, 1),
               "machine": machine_description()}
    write_results(config, result, markdown(config, result))


def summarise(config: ml_collections.ConfigDict, recs: list, rows: list[dict]) -> dict:
    """Per variant × recognizer: protection success over clean-matched probes, white/black-box."""
    clean = np.array([r["clean"] for r in rows])
    thr = np.array([r.threshold for r in recs])
    matched = clean < thr
    cells = {}
    for v in config.variants:
        members = {n for n, _ in parse_spec(v)}
        prot = np.array([r["protected"][v] for r in rows])
        cells[v] = {rec.name: {
            "box": "white" if rec.name in members else "black",
            "protection_success": float(np.mean(prot[matched[:, j], j] >= thr[j])),
            "clean_matched": int(matched[:, j].sum()),
        } for j, rec in enumerate(recs)}
        cells[v]["dssim_max"] = float(np.max([r["dssim"][v] for r in rows]))
        cells[v]["seconds_median"] = float(np.median([r["seconds"][v] for r in rows]))
    black = {v: [c["protection_success"] for n, c in cells[v].items()
                 if isinstance(c, dict) and c["box"] == "black"] for v in config.variants}
    single = [v for v in config.variants if len(parse_spec(v)) == 1]
    return {"split": config.split, "preset": config.preset, "steps": config.steps,
            "probes": len(rows), "identities": len({(r["dataset"], r["identity"]) for r in rows}),
            "probes_per_dataset": {d: sum(r["dataset"] == d for r in rows)
                                   for d in config.datasets},
            "thresholds": {r.name: r.threshold for r in recs},
            "clean_tar": {r.name: float(matched[:, j].mean()) for j, r in enumerate(recs)},
            "cells": cells,
            "black_box_of_single": {v: black[v] for v in single},
            # the default: best black-box (transfer) success; with two recognizers only the
            # single-recognizer cloaks have a held-out recognizer
            "chosen_default": max(single, key=lambda v: min(black[v]))}


def markdown(config: ml_collections.ConfigDict, res: dict) -> str:
    names = list(res["thresholds"])
    head = " | ".join(f"vs {n}" for n in names)
    lines = [
        "# Cloak: one recognizer or an ensemble (validation split)", "",
        f"`{res['command']}`  ",
        f"Machine: {res['machine']}; {res['seconds']:.0f} s.", "",
        f"{res['probes']} probes of {res['identities']} VALIDATION identities "
        f"({', '.join(f'{d}: {n}' for d, n in res['probes_per_dataset'].items())}); preset "
        f"`{res['preset']}` (DSSIM ≤ budget on the dlib150 and ArcFace-112 chips for every "
        f"variant), {res['steps']} Adam steps. Clean TAR (probe vs its identity's reference, "
        "own threshold): " + ", ".join(f"{n} {100 * t:.1f} %" for n, t in
                                      res["clean_tar"].items()) + ".", "",
        "Protection success (share of clean-matched probes no longer matched); W = white-box "
        "(the recognizer is in the cloak's ensemble), B = black-box (held out).", "",
        f"| cloak --recognizer | {head} | max DSSIM | s/face (median) |",
        "|---|" + "---|" * (len(names) + 2),
    ]
    for v, c in res["cells"].items():
        cells = " | ".join(f"{100 * c[n]['protection_success']:.1f} % "
                           f"({c[n]['box'][0].upper()}, n={c[n]['clean_matched']})"
                           for n in names)
        lines.append(f"| `{v}` | {cells} | {c['dssim_max']:.4f} | {c['seconds_median']:.1f} |")
    best = res["chosen_default"]
    lines += [
        "", f"Default chosen: `--recognizer {best}` — the best black-box (transfer) success "
        "among the variants that have a held-out recognizer ("
        + ", ".join(f"`{v}` {100 * min(b):.1f} %" for v, b in res["black_box_of_single"].items())
        + "). With only two recognizers on this machine the ensemble has no held-out recognizer: "
        "its cells are both white-box and say nothing about transfer.",
        "", "Test-split numbers are measured by the transfer experiment (transfer.md); "
        "this table only selects the default.", ""]
    return "\n".join(lines)

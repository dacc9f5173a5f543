"""How many faces each detector finds.

CelebA-299: each 256×256 crop has one labelled face (``landmarks.csv``: the YuNet box found on the
source photo, mapped into the crop). A crop is a hit when some detection overlaps that box with
IoU ≥ ``min_iou`` or contains its centre (both counted apart). Group photos and the bundled
samples: the hand-checked faces of ``config.scene_labels`` (how they were made is written in the
file); a labelled face is found when a detection overlaps it with IoU ≥ ``min_iou`` (centre
containment would let one loose box find two neighbours); a detection that finds no labelled face
is a false alarm. A setting is ``detector:upsample``, or ``detector:auto`` for the detector's
default upsample (:func:`jaxpriv.faces.detect_faces` with ``upsample=None``)."""

from __future__ import annotations

import csv
import json
import os
import platform
import time
from pathlib import Path

import ml_collections
import numpy as np
from tqdm import tqdm

from experiments.results_io import recorded_command, write_results
from jaxpriv.faces import detect_faces
from jaxpriv.faces.detect import YUNET_AUTO_SIDE
from jaxpriv.io import load_image
from jaxpriv.machine import cpu_model
from jaxpriv.tracking import iou


def _setting(text: str) -> tuple[str, int | None]:
    detector, upsample = text.split(":")
    return detector, None if upsample == "auto" else int(upsample)


def _contains(box: np.ndarray, point: np.ndarray) -> bool:
    return bool(box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3])


def _detect(image: np.ndarray, setting: str, config: ml_collections.ConfigDict) -> np.ndarray:
    detector, upsample = _setting(setting)
    faces = detect_faces(image, upsample, detector, score_threshold=config.score_threshold,
                         nms_threshold=config.nms_threshold)
    return np.array([f.box for f in faces], np.float64).reshape(-1, 4)


def celeba_recall(config: ml_collections.ConfigDict) -> dict:
    """Hits, misses and extra detections per setting on the labelled crops."""
    root = Path(config.celeba_dir)
    with open(root / "landmarks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if config.max_crops:
        rows = rows[: config.max_crops]
    out = {s: {"hits": 0, "by_iou": 0, "by_centre_only": 0, "extra": 0, "misses": []}
           for s in config.settings}
    for row in tqdm(rows, desc="celeba299", unit="crop"):
        image = load_image(root / row["file"])
        x, y, w, h = (float(row[k]) for k in ("box_x", "box_y", "box_w", "box_h"))
        label = np.array([x, y, x + w - 1, y + h - 1])
        centre = (label[:2] + label[2:]) / 2
        for s in config.settings:
            boxes = _detect(image, s, config)
            ious = [iou(b, label) for b in boxes]
            by_iou = any(v >= config.min_iou for v in ious)
            by_centre = any(_contains(b, centre) for b in boxes)
            r = out[s]
            if by_iou or by_centre:
                r["hits"] += 1
                r["by_iou"] += by_iou
                r["by_centre_only"] += by_centre and not by_iou
                r["extra"] += len(boxes) - 1
            else:
                r["misses"].append(row["file"])
                r["extra"] += len(boxes)
    for r in out.values():
        r["crops"] = len(rows)
        r["recall"] = r["hits"] / max(len(rows), 1)
        r["missed_identities"] = len({m.split("/")[0] for m in r["misses"]})
    return {"crops": len(rows), "identities": len({r["identity"] for r in rows}),
            "settings": out}


def scene_recall(config: ml_collections.ConfigDict) -> list[dict]:
    """Per labelled photo: faces found by each setting, the labelled faces it missed (boxes) and
    its false alarms (detections matching no labelled face)."""
    with open(config.scene_labels) as f:
        labels = json.load(f)["photos"]
    photos = []
    for name, label in tqdm(sorted(labels.items()), desc="scenes", unit="photo"):
        image = load_image(Path(config.scene_roots[name.split("/")[0]]) / Path(name).name)
        truth = [np.array(b, np.float64) for b in label["faces"]]
        row = {"photo": name, "size": list(image.shape[:2]), "faces": len(truth),
               "found": {}, "missed": {}, "false_alarms": {}}
        for s in config.settings:
            boxes = _detect(image, s, config)
            hit = [any(iou(b, t) >= config.min_iou for b in boxes) for t in truth]
            row["found"][s] = sum(hit)
            row["missed"][s] = [t.tolist() for t, h in zip(truth, hit, strict=True) if not h]
            row["false_alarms"][s] = sum(not any(iou(b, t) >= config.min_iou for t in truth)
                                         for b in boxes)
        photos.append(row)
    return photos


def run(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Measure, write JSON + Markdown with the command and the machine."""
    del workdir  # writes only the committed results files of the config (out_*)
    start = time.time()
    result = {"celeba299": celeba_recall(config), "scenes": scene_recall(config),
              "settings": list(config.settings), "min_iou": config.min_iou,
              "scene_labels": config.scene_labels, "yunet_auto_side": YUNET_AUTO_SIDE,
              "score_threshold": config.score_threshold, "nms_threshold": config.nms_threshold}
    result.update(
        seconds=round(time.time() - start, 1),
        command=recorded_command(),
        machine=f"{platform.machine()}, {cpu_model()}, {os.cpu_count()} cores",
    )
    write_results(config, result, _markdown(result))
    return result


def _markdown(r: dict) -> str:
    c = r["celeba299"]
    settings = r["settings"]
    lines = [
        "# Face-detector recall: dlib HOG vs YuNet",
        "",
        f"Command: `{r['command']}`  ",
        f"Machine: {r['machine']}; wall time {r['seconds']} s.",
        "",
        "Settings are `detector:upsample` — HOG: dlib pyramid levels (`hog:1` is HOG's "
        "default); YuNet: the image enlarged ×2^upsample before detection "
        f"(score ≥ {r['score_threshold']}, NMS IoU {r['nms_threshold']}); `yunet:auto` is "
        f"protect's default: upsample 1 when the long side is under {r['yunet_auto_side']} px, "
        "else 0.",
        "",
        f"## CelebA-299: {c['crops']} crops (256×256, one labelled face each), "
        f"{c['identities']} identities",
        "",
        f"Hit: a detection with IoU ≥ {r['min_iou']} with the labelled box (`landmarks.csv`, "
        "YuNet on the source photo), or containing its centre. Extra: detections that are not "
        "the labelled face (other people in the loose crop, or false alarms). Caveat: the "
        "labels are YuNet's own detections on the source photos, so this set only holds faces "
        "YuNet found once: its recall here is biased upwards (HOG has no such advantage).",
        "",
        "| setting | recall | hits | by IoU | by centre only | misses | identities with a miss "
        "| extra detections |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in settings:
        v = c["settings"][s]
        lines.append(f"| `{s}` | {100 * v['recall']:.2f} % | {v['hits']} | {v['by_iou']} | "
                     f"{v['by_centre_only']} | {len(v['misses'])} | {v['missed_identities']} | "
                     f"{v['extra']} |")
    faces = sum(p["faces"] for p in r["scenes"])
    lines += [
        "",
        f"## Group photos (`scenes/dlib`) and bundled samples: {faces} hand-checked faces",
        "",
        f"Labels: `{r['scene_labels']}` (every real face a viewer can make out, at any size; how "
        "they were checked is written in the file). Found: a detection with IoU ≥ "
        f"{r['min_iou']} with the labelled box. Cells: found / labelled, then false alarms "
        "(detections matching no labelled face: printed figures, objects, dogs).",
        "",
        "| photo | H×W | faces | " + " | ".join(f"`{s}`" for s in settings) + " |",
        "|---|---|---|" + "---|" * len(settings),
    ]
    found = {s: 0 for s in settings}
    alarms = {s: 0 for s in settings}
    for p in r["scenes"]:
        cells = []
        for s in settings:
            found[s] += p["found"][s]
            alarms[s] += p["false_alarms"][s]
            cells.append(f"{p['found'][s]}/{p['faces']}, {p['false_alarms'][s]}")
        lines.append(f"| {p['photo']} | {p['size'][0]}×{p['size'][1]} | {p['faces']} | "
                     + " | ".join(cells) + " |")
    lines.append(f"| **all** | | {faces} | "
                 + " | ".join(f"**{found[s]}/{faces}**, {alarms[s]}" for s in settings) + " |")
    lines += ["", "Missed labelled faces (left, top, right, bottom):", ""]
    for s in settings:
        missed = [f"{p['photo']} {m}" for p in r["scenes"] for m in p["missed"][s]]
        lines.append(f"- `{s}`: " + ("; ".join(missed) if missed else "none"))
    return "\n".join(lines) + "\n"

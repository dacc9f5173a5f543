"""``jaxpriv demo``: every available method on the bundled sample photos, side by side.

Writes ``DIR/grid.png`` (rows = photos, columns = the original and each method, labelled with
dlib's distance of each protected face to its clean self), ``DIR/metrics.json`` and the protected
photos ``DIR/<method>/<photo>.png``; with ``--results PATH.json`` also the metrics with the
command, machine and wall time, and the table as ``PATH.md`` (the README quotes these). Methods
whose checkpoints or inputs are missing are skipped with a note. Distances use the chip cut at
the CLEAN face geometry (the attacker knows where the face is). Images are uint8 RGB.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from jaxpriv.baselines import face_region
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import DEFAULT_DETECTOR, Face, detect_faces, extract_chips
from jaxpriv.faces.detect import detector_arg
from jaxpriv.io import check_writable, load_image, save_image, write_text_atomic
from jaxpriv.methods import get_method, method_names
from jaxpriv.protect import seed_arg

SAMPLES = Path(__file__).parent / "samples"
CELL = 230
HEADER = 58
FOOTER = 24
PAD = 6


def sample_photos() -> list[Path]:
    """The bundled sample photos (package data), sorted."""
    return sorted(SAMPLES.glob("*.jpg"))


def _view_box(shape: tuple[int, ...], faces: list[Face]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a square-ish crop around all faces."""
    boxes = [face_region(f, shape, 0.6) for f in faces]
    y0, y1 = min(b[0] for b in boxes), max(b[1] for b in boxes)
    x0, x1 = min(b[2] for b in boxes), max(b[3] for b in boxes)
    side = max(y1 - y0, x1 - x0)
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    y0, x0 = max(cy - side // 2, 0), max(cx - side // 2, 0)
    return y0, min(y0 + side, shape[0]), x0, min(x0 + side, shape[1])


def _thumb(image: np.ndarray, box: tuple[int, int, int, int]) -> Image.Image:
    y0, y1, x0, x1 = box
    im = Image.fromarray(image[y0:y1, x0:x1])
    im.thumbnail((CELL, CELL), Image.Resampling.LANCZOS)
    cell = Image.new("RGB", (CELL, CELL), (245, 245, 245))
    cell.paste(im, ((CELL - im.width) // 2, (CELL - im.height) // 2))
    return cell


def run_demo(out_dir: str | Path = "jaxpriv-demo", overwrite: bool = False,
             methods: list[str] | None = None, seed: int = 0,
             progress: bool = True, detector: str = DEFAULT_DETECTOR) -> dict[str, Any]:
    """Run the demo into ``out_dir`` (faces found by ``detector``); returns the metrics written
    to ``metrics.json``."""
    from tqdm import tqdm

    from jaxpriv.metrics import ssim
    from jaxpriv.protect import image_key
    from jaxpriv.recognizers import load_recognizer

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise JaxprivError(f"{out}: exists and is not empty (use --overwrite)")
    names = [m for m in (methods or method_names()) if m != "none"]
    rec = load_recognizer("dlib_resnet")
    photos = []
    for path in sample_photos():
        image = load_image(path)
        faces = detect_faces(image, detector=detector)
        chips, _ = extract_chips(image, faces, rec)
        photos.append((path, image, faces, rec.embed(chips)))
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    outputs: dict[str, list[np.ndarray]] = {}
    for name in tqdm(names, desc="demo", unit="method", disable=not progress):
        try:
            protect = get_method(name).make()
            images, rows, seconds, n_faces = [], [], 0.0, 0
            for path, image, faces, clean in photos:
                t0 = time.perf_counter()
                prot = protect(image, faces, image_key(seed, path.name))
                seconds += time.perf_counter() - t0
                n_faces += len(faces)
                chips, _ = extract_chips(prot, faces, rec)
                d = rec.distance(rec.embed(chips), clean)
                rows.append({"photo": path.name, "distance": [round(float(v), 4) for v in d],
                             "same_person": [bool(v < rec.threshold) for v in d],
                             "ssim": round(ssim(prot, image), 4)})
                images.append(prot)
        except (JaxprivError, OSError) as e:
            skipped[name] = str(e)
            continue
        dist = [v for r in rows for v in r["distance"]]
        results[name] = {
            "options": get_method(name).defaults(),
            "mean_distance": round(float(np.mean(dist)), 4),
            "same_person": sum(v for r in rows for v in r["same_person"]),
            "faces": n_faces,
            "mean_ssim": round(float(np.mean([r["ssim"] for r in rows])), 4),
            "ms_per_face": round(1000 * seconds / max(n_faces, 1), 1),
            "photos": rows,
        }
        outputs[name] = images
    out.mkdir(parents=True, exist_ok=True)
    for name, images in outputs.items():
        for (path, *_), prot in zip(photos, images, strict=True):
            save_image(out / name / f"{path.stem}.png", prot, overwrite=overwrite)
    grid = draw_grid(photos, outputs, results)
    save_image(out / "grid.png", np.asarray(grid), overwrite=overwrite)
    report = {"recognizer": rec.name, "threshold": rec.threshold, "seed": seed,
              "detector": detector,
              "photos": [p.name for p, *_ in photos], "methods": results, "skipped": skipped}
    write_text_atomic(out / "metrics.json", json.dumps(report, indent=2) + "\n",
                      overwrite=overwrite)
    return report


UNSHOWN = {"margin", "checkpoint", "password_file"}  # options not printed under a column


def _fit(draw: ImageDraw.ImageDraw, items: list[str], font: ImageFont.ImageFont, width: int,
         max_lines: int = 2) -> list[str]:
    """``items`` joined by ", " into at most ``max_lines`` lines of ``width`` px ("…" if cut)."""
    lines: list[str] = []
    for item in items:
        joined = f"{lines[-1]}, {item}" if lines else item
        if lines and draw.textlength(joined, font=font) <= width:
            lines[-1] = joined
        else:
            lines.append(item)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] += " …"
    return [line if draw.textlength(line, font=font) <= width else
            line[: max(1, len(line) * width // int(draw.textlength(line, font=font)) - 1)] + "…"
            for line in lines]


def draw_grid(photos: list[tuple], outputs: dict[str, list[np.ndarray]],
              results: dict[str, Any]) -> Image.Image:
    """Rows = photos, columns = original + methods; each cell labelled with its distances."""
    font = ImageFont.load_default(size=17)
    small = ImageFont.load_default(size=13)
    cols = ["original", *outputs]
    w = len(cols) * (CELL + PAD) + PAD
    h = HEADER + len(photos) * (CELL + FOOTER + PAD) + PAD + 22
    grid = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(grid)
    for c, name in enumerate(cols):
        x = PAD + c * (CELL + PAD)
        draw.text((x + CELL // 2, 15), name, fill="black", font=font, anchor="mm")
        opts = results[name]["options"] if name in results else {}
        items = [f"{k}={v}" for k, v in opts.items() if k not in UNSHOWN and v is not None]
        lines = _fit(draw, items or (["clean"] if name == "original" else []), small, CELL)
        for i, line in enumerate(lines):
            draw.text((x + CELL // 2, 32 + 14 * i), line, fill=(110, 110, 110), font=small,
                      anchor="mm")
    for r, (path, image, faces, _) in enumerate(photos):
        box = _view_box(image.shape, faces)
        y = HEADER + r * (CELL + FOOTER + PAD)
        for c, name in enumerate(cols):
            x = PAD + c * (CELL + PAD)
            if name == "original":
                grid.paste(_thumb(image, box), (x, y))
                label, color = f"{path.name} · {len(faces)} face(s)", (90, 90, 90)
            else:
                grid.paste(_thumb(outputs[name][r], box), (x, y))
                row = results[name]["photos"][r]
                label = "d " + " ".join(f"{d:.2f}" for d in row["distance"])
                hidden = not any(row["same_person"])
                label += "  hidden" if hidden else "  recognised"
                color = (20, 120, 40) if hidden else (180, 30, 30)
            draw.text((x + CELL // 2, y + CELL + FOOTER // 2), label, fill=color, font=small,
                      anchor="mm")
    draw.text((PAD, h - 14), "d = dlib distance of each protected face to its clean self "
              "(same person below 0.6); crops around the faces of full photos",
              fill=(90, 90, 90), font=small, anchor="lm")
    return grid


def table(report: dict[str, Any]) -> str:
    """A short terminal table of the per-method metrics."""
    lines = [f"{'method':<10} {'mean d':>7} {'same person':>12} {'SSIM':>7} {'ms/face':>9}"]
    for name, m in report["methods"].items():
        lines.append(f"{name:<10} {m['mean_distance']:>7.3f} "
                     f"{str(m['same_person']) + '/' + str(m['faces']):>12} "
                     f"{m['mean_ssim']:>7.4f} {m['ms_per_face']:>9.1f}")
    for name, why in report["skipped"].items():
        lines.append(f"skipped {name}: {why}")
    return "\n".join(lines)


def results_paths(path: str | Path) -> tuple[Path, Path]:
    """(JSON, Markdown) paths of ``--results PATH``: PATH as given (``.json``) and beside it
    the same stem with ``.md``."""
    js = Path(path)
    if js.suffix.lower() != ".json":
        raise JaxprivError(f"--results {path}: must end in .json (a .md is written beside it)")
    return js, js.with_suffix(".md")


def results_record(report: dict[str, Any], command: str, seconds: float) -> dict[str, Any]:
    """``report`` with the command, machine and wall time: what ``--results`` writes."""
    from jaxpriv.machine import machine_description

    return {"command": command, "machine": machine_description(),
            "wall_seconds": round(seconds, 1), **report}


def results_markdown(record: dict[str, Any]) -> str:
    """The ``--results`` Markdown: command, machine, wall time and the table."""
    return (f"# jaxpriv demo\n\nCommand: `{record['command']}`  \nMachine: {record['machine']}; "
            f"wall time {record['wall_seconds']} s (ms/face includes each method's first-call "
            f"compilation); seed {record['seed']}.\n\n```\n{table(record)}\n```\n")


def cmd_demo(args: argparse.Namespace) -> int:
    """Run ``jaxpriv demo`` from parsed arguments."""
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
    if methods:
        for m in methods:
            get_method(m)  # a clear error for an unknown name
    paths = results_paths(args.results) if args.results else ()
    for p in paths:
        check_writable(p, overwrite=args.overwrite)
    t0 = time.perf_counter()
    report = run_demo(args.out, overwrite=args.overwrite, methods=methods, seed=args.seed,
                      progress=not args.quiet, detector=args.detector)
    print(table(report))
    print(f"-> {Path(args.out) / 'grid.png'}, {Path(args.out) / 'metrics.json'}")
    if paths:
        command = " ".join(["jaxpriv demo", "-o", "DIR"]  # a scratch folder: not recorded
                           + (["--methods", args.methods] if args.methods else [])
                           + ["--seed", str(args.seed)]
                           + (["--detector", args.detector]
                              if args.detector != DEFAULT_DETECTOR else [])
                           + ["--results", str(args.results)])
        record = results_record(report, command, time.perf_counter() - t0)
        js, md = paths
        write_text_atomic(js, json.dumps(record, indent=2) + "\n", overwrite=args.overwrite)
        write_text_atomic(md, results_markdown(record), overwrite=args.overwrite)
        print(f"-> {js}, {md}")
    return 0


def add_demo_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand to ``jaxpriv``'s subparsers."""
    p = sub.add_parser("demo", help="every method on the bundled samples: grid PNG + metrics",
                       description=__doc__.splitlines()[0])
    p.add_argument("-o", "--out", default="jaxpriv-demo", help="output folder (default "
                   "./jaxpriv-demo)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    p.add_argument("--methods", default=None, help="comma-separated subset (default: all)")
    p.add_argument("--seed", type=seed_arg, default=0, help="randomness of the methods")
    p.add_argument("--results", default=None, help="also write the metrics with command, machine "
                   "and wall time to this .json and the table to the .md beside it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    detector_arg(p)
    p.set_defaults(func=cmd_demo)
    return p

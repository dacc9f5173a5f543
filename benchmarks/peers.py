"""Peers side by side: `deface` (CenterFace ONNX) and jaxpriv's methods on the same full photos.

For each tool, in one run: faces it found, photos/s (detection + anonymisation, the photo already
decoded; median of interleaved rounds) and dlib's same-person rate afterwards: for every face
dlib's own detector finds in the CLEAN photo, the chip cut from the protected photo at that
clean geometry vs the clean chip (distance < 0.6 = still recognised).

`deface` is a peer, not a dependency: ``pip install --no-deps deface==1.5.0 onnxruntime onnx
imageio-ffmpeg`` (its wheel requires ``opencv-python``, which clashes with jaxpriv's
``opencv-python-headless``; both provide ``cv2``). It runs offline: the model ships in its wheel.

Run ``python benchmarks/peers.py [--quick] [--json OUT.json] [--methods blur,mosaic,...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jaxpriv.machine import machine_facts

ROOT = Path(__file__).resolve().parents[1]
SCENES = ROOT.parent / "shared" / "data" / "scenes" / "dlib"
DEFAULT_METHODS = "blur,mosaic,solid,dppix"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke test: the bundled samples only, 1 round")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 3, quick 1)")
    p.add_argument("--methods", default=DEFAULT_METHODS,
                   help=f"jaxpriv methods (default {DEFAULT_METHODS}; cloak is slow on groups)")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    return p.parse_args(argv)


def machine() -> dict[str, Any]:
    """Facts about the run's hardware and software."""
    import jax

    info: dict[str, Any] = {**machine_facts(), "python": platform.python_version(),
                            "jax": jax.__version__, "jax_backend": jax.default_backend()}
    try:
        import deface
        import onnxruntime

        info["deface"] = deface.__version__
        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:  # the same keys either way: the deface rows are then skipped
        info["deface"] = info["onnxruntime"] = None
    return info


def load_photos(quick: bool) -> list[tuple[str, np.ndarray]]:
    """The bundled samples, plus dlib's group photos beside the checkout (unless quick)."""
    import jaxpriv
    from jaxpriv.io import load_image

    paths = sorted((Path(jaxpriv.__file__).parent / "samples").glob("*.jpg"))
    if not quick and SCENES.is_dir():
        paths += sorted(SCENES.glob("*.jpg"))
    return [(p.name, load_image(p)) for p in paths]


def deface_tool() -> Callable[[np.ndarray], tuple[np.ndarray, int]] | None:
    """deface's defaults (CenterFace threshold 0.2, box ×1.3, elliptical blur) on RGB arrays."""
    try:
        from deface.centerface import CenterFace
        from deface.deface import anonymize_frame
    except ImportError:
        return None
    cf = CenterFace(in_shape=None, backend="auto", override_execution_provider=(
        "CPUExecutionProvider" if _has_onnxruntime() else None))

    def run(image: np.ndarray) -> tuple[np.ndarray, int]:
        frame = image.copy()
        dets, _ = cf(frame, threshold=0.2)
        anonymize_frame(dets, frame, mask_scale=1.3, replacewith="blur", ellipse=True,
                        draw_scores=False, replaceimg=None, mosaicsize=20)
        return frame, len(dets)

    return run


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def jaxpriv_tool(method: str) -> Callable[[np.ndarray], tuple[np.ndarray, int]]:
    """dlib HOG detection (upsample 1, as ``jaxpriv protect``) + the method, key from seed 0."""
    import jax

    from jaxpriv.faces import detect_faces
    from jaxpriv.methods import get_method

    protect = get_method(method).make()
    key = jax.random.key(0)

    def run(image: np.ndarray) -> tuple[np.ndarray, int]:
        faces = detect_faces(image)
        return (protect(image, faces, key) if faces else image.copy()), len(faces)

    return run


def main(argv: list[str] | None = None) -> int:
    """Run every tool on every photo, interleaved, and print the table."""
    args = parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    from jaxpriv.faces import detect_faces, extract_chips
    from jaxpriv.recognizers import load_recognizer

    info = machine()
    photos = load_photos(args.quick)
    rec = load_recognizer("dlib_resnet")
    truth = []  # clean dlib faces and embeddings per photo
    for _, image in photos:
        faces = detect_faces(image)
        chips = extract_chips(image, faces, rec)[0]
        truth.append((faces, rec.embed(chips) if faces else np.zeros((0, 128), np.float32)))
    tools: dict[str, Callable] = {}
    peer = deface_tool()
    if peer is not None:
        tools["deface 1.5 (CenterFace ONNX, blur)"] = peer
    else:
        print("deface not installed: pip install --no-deps deface==1.5.0 onnxruntime onnx "
              "imageio-ffmpeg", file=sys.stderr)
    for m in [m.strip() for m in args.methods.split(",") if m.strip()]:
        tools[f"jaxpriv {m} (dlib HOG)"] = jaxpriv_tool(m)

    rows = {name: {"seconds": [], "faces_found": 0, "recognised": 0, "faces_truth": 0}
            for name in tools}
    for name, tool in tools.items():  # warm-up: compiles, and the outputs to score
        row = rows[name]
        for (_, image), (faces, clean) in zip(photos, truth, strict=True):
            out, found = tool(image)
            row["faces_found"] += found
            if faces:
                chips = extract_chips(out, faces, rec)[0]
                d = rec.distance(rec.embed(chips), clean)
                row["recognised"] += int(np.sum(d < rec.threshold))
                row["faces_truth"] += len(faces)
    for _ in range(repeats):
        for name, tool in tools.items():
            t0 = time.perf_counter()
            for _, image in photos:
                tool(image)
            rows[name]["seconds"].append(time.perf_counter() - t0)
    info["loadavg_end"] = list(os.getloadavg())
    results = []
    base = None
    ratio_key = "ratio_vs_deface" if peer is not None else "ratio_vs_first"
    for name, row in rows.items():
        pps = len(photos) / statistics.median(row["seconds"])
        base = base or pps
        results.append({"implementation": name, "photos": len(photos),
                        "faces_found": row["faces_found"], "faces_dlib_clean": row["faces_truth"],
                        "same_person_rate": row["recognised"] / max(row["faces_truth"], 1),
                        "photos_per_s": pps, ratio_key: pps / base,
                        "seconds": row["seconds"]})
    print(report(info, results, len(photos), repeats))
    if args.json is not None:
        command = " ".join(["python benchmarks/peers.py", *sys.argv[1:]])
        args.json.write_text(json.dumps({"command": command, "machine": info, "results": results},
                                        indent=2) + "\n")
    return 0


def report(info: dict[str, Any], results: list[dict[str, Any]], n: int, repeats: int) -> str:
    """The printed table."""
    lines = [
        f"CPU: {info['cpu_model']}  os.cpu_count()={info['os_cpu_count']}  load "
        f"{' '.join(f'{v:.1f}' for v in info['loadavg_start'])} -> "
        f"{' '.join(f'{v:.1f}' for v in info['loadavg_end'])}",
        f"python {info['python']}  jax {info['jax']} ({info['jax_backend']})  deface "
        f"{info.get('deface')}  onnxruntime {info.get('onnxruntime')}",
        f"{n} photos (decoded), {repeats} interleaved round(s), median; same-person rate = dlib "
        "distance < 0.6 between the clean chip and the chip at the clean geometry afterwards",
        "",
        f"{'tool':<38} {'faces found':>11} {'photos/s':>9} {'ratio':>8} {'same person':>12}",
        "-" * 82,
    ]
    key = next(k for k in results[0] if k.startswith("ratio_vs_"))
    for r in results:
        lines.append(f"{r['implementation']:<38} {r['faces_found']:>5} / {r['faces_dlib_clean']:<4}"
                     f"{r['photos_per_s']:>9.2f} {r[key]:>7.2f}x "
                     f"{100 * r['same_person_rate']:>11.1f}%")
    lines.append("(faces found: by the tool's own detector / by dlib on the clean photos; "
                 "ratio = photos/s / the first row's)")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

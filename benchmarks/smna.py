"""Throughput of SMNA maps (Alg. 1) and SMGG protection (Alg. 3), ratios measured in one run.

(a) vmapped, chunked exact maps vs the literal per-pixel Python loop of Alg. 1 (queries/s; the
    loop is timed on a subset of pixels only);
(b) exact-map queries/s vs the recognizer's best batched forward throughput (``rec.apply`` jitted
    on 150×150 chips at several batch sizes: the ceiling a map can approach);
(c) the linearised map (one VJP) vs the exact map (seconds per map);
(d) the shipped SMGG generator G(x) + Alg. 3 noise (``jax.jit``, 64×64 float32 real faces already
    on the device): (d1) one face per call, ms/face (paper: 11.3 ms on a GPU); (d2) 64 faces per
    call, faces/s (paper: 60 fps); (d3) ``jaxpriv``'s ``smna`` protect function end to end on
    ``samples/obama.jpg``, faces detected once beforehand (chip extraction + G + Alg. 3 + paste
    back), ms/face.

Every configuration is timed once per round (the short ones several times) and the rounds are
interleaved, so load from other processes hits all of them alike; medians are reported. Compile
time is excluded (one warm-up).

    python benchmarks/smna.py            # < 5 min: 64×64 maps, chunks 4/8/16
    python benchmarks/smna.py --quick    # < 60 s: 24×24 map, chunk 8, fewer SMGG calls
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GLINT = ROOT.parent / "shared" / "data" / "faces" / "glint"
PHOTO = "obama.jpg"  # in jaxpriv/samples
PAPER = {"batch1_ms_per_face": 11.3, "batch64_faces_per_s": 60.0, "device": "GPU"}


@dataclasses.dataclass(frozen=True)
class Case:
    """One timed configuration: ``run()`` handles ``count`` queries or faces (``unit``); it is
    called ``reps`` times per round."""

    run: Callable[[], object]
    count: int
    unit: str = "queries"
    reps: int = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run (< 60 s): 24x24 map, chunk 8, "
                   "fewer SMGG calls")
    p.add_argument("--size", type=int, default=None, help="map side (default 64, quick 24)")
    p.add_argument("--chunks", default=None, help="comma list (default 4,8,16; quick 8)")
    p.add_argument("--batches", default=None, help="ceiling batch sizes (default 8,16,32,64; "
                   "quick 8,32)")
    p.add_argument("--rounds", type=int, default=None,
                   help="timed rounds (default 1: < 5 min on an idle 2-core CPU; 2+ steadier)")
    p.add_argument("--loop-pixels", type=int, default=None,
                   help="pixels timed in the literal loop (default 128, quick 24)")
    p.add_argument("--smgg-faces", type=int, default=None,
                   help="(d1) faces per batch-1 run, one call each (default 16, quick 4)")
    p.add_argument("--smgg-batch", type=int, default=64, help="(d2) batch size (default 64)")
    p.add_argument("--smgg-reps", type=int, default=None,
                   help="(d) timed calls per round of each SMGG case (default 5, quick 2)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    q = args.quick
    args.size = args.size or (24 if q else 64)
    args.chunks = [int(c) for c in (args.chunks or ("8" if q else "4,8,16")).split(",")]
    args.batches = [int(b) for b in (args.batches or ("8,32" if q else "8,16,32,64")).split(",")]
    args.rounds = args.rounds or 1
    args.loop_pixels = args.loop_pixels or (24 if q else 128)
    args.smgg_faces = args.smgg_faces or (4 if q else 16)
    args.smgg_reps = args.smgg_reps or (2 if q else 5)
    return args


def glint_chips(files: list[Path]) -> np.ndarray:
    """dlib chips (N, 150, 150, 3) uint8 of glint's aligned face crops."""
    from PIL import Image

    from jaxpriv.faces import chips_from_aligned_crops

    return chips_from_aligned_crops(
        np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]))


def random_chips(n: int) -> np.ndarray:
    """Random uint8 chips, when the glint faces are not there."""
    return np.random.default_rng(0).integers(0, 256, (n, 150, 150, 3), dtype=np.uint8)


def face(size: int) -> tuple[object, np.ndarray, np.ndarray]:
    """(recognizer, size×size SMNA image of a real probe face, reference embedding); random
    pixels if the glint faces are not there."""
    from jaxpriv.recognizers import load_recognizer
    from jaxpriv.smna.sensitivity import to_smna_image

    rec = load_recognizer("dlib_resnet")
    if GLINT.is_dir():
        chips = glint_chips(sorted((GLINT / "Barack_Obama").iterdir())[:2])
    else:
        chips = random_chips(2)
    return rec, to_smna_image(chips[1], size), rec.embed(chips[:1])[0]


def smgg_faces(n: int) -> Any:
    """G's input for ``n`` faces: float32 (n, 64, 64, 3) in [0, 1] on the device, made as the
    product makes it (``to_smna_image`` of dlib chips); the first crop of each glint identity,
    tiled to ``n`` (random pixels without glint)."""
    import jax.numpy as jnp

    from jaxpriv.smna.sensitivity import to_smna_image

    if GLINT.is_dir():
        chips = glint_chips([sorted(d.iterdir())[0] for d in sorted(GLINT.iterdir()) if d.is_dir()])
    else:
        chips = random_chips(n)
    chips = chips[np.arange(n) % len(chips)]
    return (jnp.asarray(to_smna_image(chips), jnp.float32) / 255.0).block_until_ready()


def g_alg3(generator: Any, x: Any, noise_level: Any, noise: str, sign: str, norm: str) -> Any:
    """G(x) then Alg. 3: x' = 255·x ± NoiseLevel·NoiseMap, float32 (N, 64, 64, 3) in 0..255;
    ``x`` float32 (N, 64, 64, 3) in [0, 1]."""
    from jaxpriv.smna.noise import add_noise
    from jaxpriv.smna.smgg import generator_apply

    g, _ = generator_apply(generator, x, train=False)
    return add_noise(255.0 * x, g, noise_level, noise, sign, norm)


def smgg_cases(args: argparse.Namespace) -> tuple[dict[str, Case], dict[str, Any]]:
    """(d): G(x) + Alg. 3 at batch 1 and ``args.smgg_batch``, and ``smna`` protect on a photo;
    with the product's defaults (noise, δ, sign, norm, shipped checkpoint). Also returns what was
    run, for the record."""
    import functools

    import jax

    import jaxpriv
    from jaxpriv.faces import detect_faces
    from jaxpriv.io import load_image
    from jaxpriv.methods import get_method
    from jaxpriv.smna.method import load_checkpoint, resolve_checkpoint

    opts = get_method("smna").defaults()
    path = resolve_checkpoint(opts["checkpoint"], opts["noise"])
    generator, meta = load_checkpoint(str(path), opts["noise"])  # as the product loads it
    run = jax.jit(functools.partial(g_alg3, noise=opts["noise"], sign=opts["noise_sign"],
                                    norm=opts["noise_norm"]))
    level = np.float32(opts["noise_level"])

    faces64 = smgg_faces(max(args.smgg_batch, args.smgg_faces))
    batch = faces64[: args.smgg_batch]
    singles = [faces64[i : i + 1] for i in range(args.smgg_faces)]
    jax.block_until_ready([batch, *singles])

    def batch1() -> None:
        for x in singles:
            run(generator, x, level).block_until_ready()

    photo = load_image(Path(jaxpriv.__file__).parent / "samples" / PHOTO)
    faces = detect_faces(photo)
    if not faces:
        raise SystemExit(f"no face found in samples/{PHOTO}")
    protect = get_method("smna").make()
    key = jax.random.key(0)
    reps = args.smgg_reps
    cases = {
        "(d1) G+Alg.3, batch 1": Case(batch1, len(singles), "faces", reps),
        f"(d2) G+Alg.3, batch {len(batch)}": Case(
            lambda: run(generator, batch, level).block_until_ready(), len(batch), "faces", reps),
        f"(d3) smna protect({PHOTO})": Case(
            lambda: protect(photo, faces, key), len(faces), "faces", reps),
    }
    # the checkpoint as the option names it ({noise} filled in): no machine folder in the record
    record = {"checkpoint": opts["checkpoint"].format(noise=opts["noise"]),
              "width": meta.get("width"),
              "generator_params": meta.get("generator_params"),
              "options": {k: v for k, v in opts.items() if k != "checkpoint"},
              "photo": PHOTO, "photo_shape": list(photo.shape), "photo_faces": len(faces)}
    return cases, record


def summary(case: Case, seconds: list[float], cpu: list[float]) -> dict[str, float]:
    """Medians of one case: seconds per run, count, count/s, count per CPU-second (and ms/face)."""
    s, u = statistics.median(seconds), case.unit
    row = {"seconds": s, u: case.count, f"{u}_per_s": case.count / s,
           f"{u}_per_cpu_s": case.count / max(statistics.median(cpu), 1e-9)}
    if u == "faces":
        row["ms_per_face"] = 1000 * s / case.count
    return row


def time_cases(cases: dict[str, Case], rounds: int) -> dict[str, dict[str, float]]:
    """Warm up every case (compiles), then time interleaved rounds; per-case medians."""
    for name, case in cases.items():
        t0 = time.perf_counter()
        case.run()
        print(f"warm-up {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(rounds):
        for name, case in cases.items():
            for _ in range(case.reps):
                t0, c0 = time.perf_counter(), time.process_time()
                case.run()
                seconds[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return {name: summary(cases[name], seconds[name], cpu[name]) for name in cases}


def print_smgg(rows: dict[str, dict[str, float]], record: dict[str, Any]) -> None:
    """The (d) table, the paper's numbers beside ours."""
    opts = record["options"]
    print(f"\nSMGG + Alg. 3 ({record['checkpoint']}: width {record['width']}, "
          f"{record['generator_params']} generator parameters; noise {opts['noise']}, "
          f"δ {opts['noise_level']}, {opts['noise_norm']}, {opts['noise_sign']}); (d1)/(d2) on "
          f"64x64 float32 real faces already on the device; (d3) on {record['photo']} "
          f"{record['photo_shape'][1]}x{record['photo_shape'][0]}, {record['photo_faces']} "
          f"face(s) detected beforehand")
    print("\n| configuration | median s | faces | ms/face | faces/s | faces/CPU-s | paper (GPU) |")
    print("|---|---|---|---|---|---|---|")
    paper = {"(d1)": f"{PAPER['batch1_ms_per_face']} ms/face",
             "(d2)": f"{PAPER['batch64_faces_per_s']:.0f} faces/s (batch 64)"}
    for name, row in rows.items():
        print(f"| {name} | {row['seconds']:.4f} | {row['faces']} | {row['ms_per_face']:.1f} | "
              f"{row['faces_per_s']:.1f} | {row['faces_per_cpu_s']:.1f} | "
              f"{paper.get(name[:4], '—')} |")
    paper_ratio = PAPER["batch64_faces_per_s"] * PAPER["batch1_ms_per_face"] / 1000
    print(f"\nPaper's own batch 64 / batch 1 throughput: {PAPER['batch64_faces_per_s']:.0f} / "
          f"(1000 / {PAPER['batch1_ms_per_face']}) = {paper_ratio:.2f} (its GPU, full-width G; "
          f"absolute numbers are not comparable across machines).")


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the table, return the numbers."""
    args = parse_args(argv)
    import jax
    import jax.numpy as jnp

    from jaxpriv.machine import machine_description
    from jaxpriv.smna.sensitivity import sensitivity_map, sensitivity_map_loop

    info = f"{machine_description()}; {jax.device_count()} device(s)"
    rec, image, ref = face(args.size)
    n_pix = args.size * args.size
    rng = np.random.default_rng(0)
    forward = jax.jit(rec.apply)
    chips = {b: jnp.asarray(rng.random((b, 150, 150, 3), np.float32)) for b in args.batches}
    step = max(1, n_pix // args.loop_pixels)
    pixels = [divmod(p, args.size) for p in range(0, n_pix, step)][: args.loop_pixels]

    cases: dict[str, Case] = {}
    for b in args.batches:  # short calls: median of 5 per round
        cases[f"forward batch {b}"] = Case(
            lambda b=b: forward(rec.params, chips[b]).block_until_ready(), b, reps=5)
    for c in args.chunks:
        cases[f"exact map chunk {c}"] = Case(
            lambda c=c: sensitivity_map(rec, image, ref, "black", chunk=c), n_pix)
    cases["literal loop"] = Case(
        lambda: sensitivity_map_loop(rec, image, ref, "black", pixels), len(pixels) + 1)
    cases["linear map (1 VJP)"] = Case(
        lambda: sensitivity_map(rec, image, ref, "black", method="linear"), 1, reps=5)
    smgg, record = smgg_cases(args)
    cases.update(smgg)

    t_start = time.perf_counter()
    rows = time_cases(cases, args.rounds)

    maps = {n: r for n, r in rows.items() if n not in smgg}
    ceiling_name = max((n for n in maps if n.startswith("forward")),
                       key=lambda n: maps[n]["queries_per_s"])
    best_map = max((n for n in maps if n.startswith("exact")),
                   key=lambda n: maps[n]["queries_per_s"])
    ceiling = maps[ceiling_name]["queries_per_s"]
    loop = maps["literal loop"]["queries_per_s"]
    exact = maps[best_map]
    d1, d2, d3 = (rows[n] for n in smgg)
    ratios = {
        "(a) exact map / literal loop (queries/s)": exact["queries_per_s"] / loop,
        f"(b) exact map / ceiling {ceiling_name} (queries/s)": exact["queries_per_s"] / ceiling,
        "(c) exact map time / linear map time": exact["seconds"]
        / maps["linear map (1 VJP)"]["seconds"],
        "(b') as (b), per CPU-second (less sensitive to other processes)":
        exact["queries_per_cpu_s"] / maps[ceiling_name]["queries_per_cpu_s"],
        f"(d) G+Alg.3 faces/s, batch {d2['faces']} / batch 1": d2["faces_per_s"]
        / d1["faces_per_s"],
        "(d) protect(photo) / G+Alg.3 batch 1, ms/face": d3["ms_per_face"] / d1["ms_per_face"],
    }
    print(f"\nSMNA maps, {args.size}x{args.size} image ({n_pix} queries per exact map), "
          f"black noise, dlib_resnet")
    print(f"Machine: {info}")
    flags = " ".join(sys.argv[1:] if argv is None else argv)
    print(f"Command: python benchmarks/smna.py {flags}")
    print("\n| configuration | median s | queries | queries/s | vs ceiling | queries/CPU-s |")
    print("|---|---|---|---|---|---|")
    for name, row in maps.items():
        print(f"| {name} | {row['seconds']:.4f} | {row['queries']} | "
              f"{row['queries_per_s']:.1f} | {row['queries_per_s'] / ceiling:.3f} | "
              f"{row['queries_per_cpu_s']:.1f} |")
    print_smgg({n: rows[n] for n in smgg}, record)
    print("\n| ratio (same run) | value |\n|---|---|")
    for name, value in ratios.items():
        print(f"| {name} | {value:.2f} |")
    print(f"\nTotal benchmark time {time.perf_counter() - t_start:.0f} s; goal (b) >= 0.8; load "
          f"avg at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())}.")
    result = {"command": f"python benchmarks/smna.py {flags}".strip(), "machine": info,
              "load_end": [round(x, 1) for x in os.getloadavg()],
              "size": args.size, "rows": rows, "ratios": ratios,
              "best_map": best_map, "ceiling": ceiling_name, "smgg": record, "paper": PAPER}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()

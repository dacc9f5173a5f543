"""One JAX process over every core vs one process pinned to each core, same recognizer forward.

Why: the exact SMNA maps (Alg. 1) are bounded by the recognizer's batched forward throughput,
and XLA's CPU backend may not scale one network over the cores. Reported: summed images/s of N
pinned processes (running at the same time) divided by that of one unpinned process, measured
in one run. Linux only (``os.sched_setaffinity``).

    python benchmarks/cores.py [--seconds 30] [--batch 8] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from jaxpriv.machine import machine_description

WORKER = """
import os, sys, time
import numpy as np
if int(sys.argv[1]) >= 0:
    os.sched_setaffinity(0, {int(sys.argv[1])})
import jax, jax.numpy as jnp
from jaxpriv.recognizers import load_recognizer
rec = load_recognizer(sys.argv[2])
f = jax.jit(lambda x: rec.apply(rec.params, x))
s = rec.input_size
x = jnp.asarray(np.random.default_rng(0).random((int(sys.argv[3]), s, s, 3), np.float32))
f(x).block_until_ready()
t, n = time.perf_counter(), 0
while time.perf_counter() - t < float(sys.argv[4]):
    f(x).block_until_ready()
    n += x.shape[0]
print(n / (time.perf_counter() - t))
"""


def run_workers(cores: list[int], recognizer: str, batch: int, seconds: float) -> list[float]:
    """Start one worker per entry (-1 = not pinned) at once; images/s of each."""
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(c), recognizer, str(batch),
                               str(seconds)], stdout=subprocess.PIPE, text=True)
             for c in cores]
    out = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError("a worker failed")
    return [float(o.strip().splitlines()[-1]) for o in out]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recognizer", default="dlib_resnet")
    p.add_argument("--batch", type=int, default=8, help="images per forward (SMNA chunk: 8)")
    p.add_argument("--seconds", type=float, default=30.0, help="timed seconds per worker")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    cores = sorted(os.sched_getaffinity(0))
    one = run_workers([-1], args.recognizer, args.batch, args.seconds)[0]
    pinned = run_workers(cores, args.recognizer, args.batch, args.seconds)
    result = {"machine": f"{machine_description()}; {len(cores)} usable cores",
              "recognizer": args.recognizer, "batch": args.batch,
              "one_process_images_per_s": one, "pinned_images_per_s": pinned,
              "ratio_pinned_vs_one": sum(pinned) / one}
    print(f"{result['machine']}; {args.recognizer}, batch {args.batch}")
    print(f"one process over all cores: {one:.1f} images/s")
    print(f"{len(cores)} processes, one per core: {' + '.join(f'{v:.1f}' for v in pinned)} = "
          f"{sum(pinned):.1f} images/s")
    print(f"ratio (pinned / one): {result['ratio_pinned_vs_one']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

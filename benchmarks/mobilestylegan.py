"""Cost of the Flax MobileStyleGAN: forward and forward + gradient w.r.t. ``w`` at 1024² and at
512² (the LL band), the OpenVINO runtime's forward on the same IR files, and the cumulative cost
of the synthesis up to each wavelet level (features only: the export has no image head there).

One round = every case once (interleaved, so load from other processes hits all alike); each case
is run once untimed first (JIT compilation). Reported: median seconds per face over the rounds and
``ratio_vs_openvino`` = that median / OpenVINO's median forward in the same run.

Run ``python benchmarks/mobilestylegan.py [--quick] [--repeats N] [--json PATH]`` (needs
random-face installed with ``--no-deps``; the OpenVINO row and ratios need ``openvino``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

try:  # before JAX starts its threads (openvino forks a helper process on import)
    import openvino
except ImportError:
    openvino = None
import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv.deid import mobilestylegan as msg
from jaxpriv.machine import machine_description

OPENVINO = "openvino forward 1024²"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds (default 3, 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 1 round, no per-level feature rows")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    return p.parse_args(argv)


def level_fn(params: dict, n_blocks: int) -> Callable[[jax.Array], jax.Array]:
    """Synthesis features after ``n_blocks`` blocks (resolution 4·2^n_blocks), summed."""
    sp = params["synthesis"]

    def run(w: jax.Array) -> jax.Array:
        x = jnp.broadcast_to(sp["input"], (w.shape[0], *sp["input"].shape))
        x = msg.StyledConv(msg.STYLE_DIM, depthwise=False).apply({"params": sp["conv1"]}, x, w)
        for i in range(n_blocks):
            block = {k: v for k, v in sp[f"layers_{i}"].items() if k != "to_img"}
            x = msg.SynthesisBlock(msg.CHANNELS[i]).apply({"params": block}, x, w)
        return x.sum()

    return jax.jit(run)


def cases(params: dict, levels: bool = True) -> dict[str, Callable[[], object]]:
    """Name → a zero-argument call that blocks until its result is ready."""
    w = msg.mapping(params, jnp.asarray(np.random.default_rng(0).standard_normal((1, 512)),
                                        jnp.float32))
    out: dict[str, Callable[[], object]] = {}
    for size in (1024, 512):
        target = jnp.zeros((1, size, size, 3))
        fwd = jax.jit(lambda w, s=size: msg.synthesis(params, w, s))
        grad = jax.jit(jax.value_and_grad(
            lambda w, s=size, t=target: jnp.mean((msg.synthesis(params, w, s) - t) ** 2)))
        out[f"jax forward {size}²"] = lambda f=fwd: f(w).block_until_ready()
        out[f"jax forward+grad(w) {size}²"] = lambda g=grad: g(w)[1].block_until_ready()
    for n in range(len(msg.CHANNELS) if levels else 0):
        f = level_fn(params, n + 1)
        out[f"jax features to block {n} ({8 << n}²)"] = lambda f=f: f(w).block_until_ready()
    if openvino is not None:
        from jaxpriv.checkpoints import random_face_file as rf

        core = openvino.Core()
        snet = core.compile_model(core.read_model(rf("SynthesisNetwork.xml"),
                                                  rf("SynthesisNetwork.bin")),
                                  "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        w_np = np.asarray(w)
        out[OPENVINO] = lambda: snet(w_np)
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    params = msg.load_params()
    todo = cases(params, levels=not args.quick)
    compile_s = {}
    for name, call in todo.items():
        t = time.perf_counter()
        call()
        compile_s[name] = time.perf_counter() - t
    times: dict[str, list[float]] = {name: [] for name in todo}
    for _ in range(repeats):
        for name, call in todo.items():
            t = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t)
    med = {n: statistics.median(ts) for n, ts in times.items()}
    rows = [{"case": n, "median_s": med[n], "min_s": min(ts), "first_call_s": compile_s[n]}
            | ({"ratio_vs_openvino": med[n] / med[OPENVINO]} if OPENVINO in med else {})
            for n, ts in times.items()]
    info = machine_description()
    print(info)
    print(f"{'case':40s} {'median s':>9s} {'min s':>8s} {'1st call s':>10s} {'vs openvino':>11s}")
    for r in rows:
        ratio = f"{r['ratio_vs_openvino']:10.1f}x" if "ratio_vs_openvino" in r else ""
        print(f"{r['case']:40s} {r['median_s']:9.3f} {r['min_s']:8.3f} "
              f"{r['first_call_s']:10.1f} {ratio:>11s}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()

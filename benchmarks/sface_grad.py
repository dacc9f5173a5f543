"""SFace's input gradient: forward vs ``value_and_grad`` w.r.t. the chips, with the depthwise
convolutions' hand-written backward (``sface.depthwise3x3_fastgrad``, the default) and with the
automatic backward of the same 9-tap shift sum (``sface.depthwise3x3``, the formulation before),
in ONE process on the same real faces.

The loss is what the mask steering differentiates: the Euclidean distance of each chip's
L2-normalised embedding to a fixed reference embedding. Each configuration is compiled and called
once untimed, then the ``--repeats`` rounds are interleaved (one round = every configuration once)
so other processes' load hits them alike; reported are medians and the ratios
``before / after`` (value_and_grad) and ``value_and_grad / forward`` per formulation.

Run ``python benchmarks/sface_grad.py [--quick] [--json OUT.json]``; the committed numbers are
``experiments/results/sface_grad_bench.json`` (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from jaxpriv.machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 8)
FORMULATIONS = ("before: autodiff of the shift sum", "after: hand-written backward")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5; quick 2)")
    p.add_argument("--quick", action="store_true", help="batch 1 only, 2 rounds")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    return p.parse_args(argv)


def sface_variants() -> dict[str, Any]:
    """``{formulation: (apply, params)}``: SFace's ``apply`` with each depthwise formulation
    (the module's ``DepthwiseConv`` is rebound while each network is traced)."""
    import flax.linen as nn
    import jax

    from jaxpriv.recognizers import load_recognizer
    from jaxpriv.recognizers import sface as sface_mod

    class AutodiffDepthwise(nn.Module):
        """The formulation before: the shift sum, differentiated by JAX."""

        stride: int = 1

        @nn.compact
        def __call__(self, x: jax.Array) -> jax.Array:
            kernel = self.param("kernel", nn.initializers.zeros, (3, 3, 1, x.shape[-1]))
            return sface_mod.depthwise3x3(x, kernel, self.stride)

    rec = load_recognizer("sface")
    return {FORMULATIONS[0]: (AutodiffDepthwise, rec), FORMULATIONS[1]: (sface_mod.DepthwiseConv,
                                                                        rec)}


def compiled(rec: Any, depthwise: Any, chips: Any, ref: Any) -> dict[str, Any]:
    """Forward and value_and_grad of SFace with ``depthwise`` as the depthwise layer, compiled
    now (``DepthwiseConv`` is only looked up while tracing)."""
    import jax
    import jax.numpy as jnp

    from jaxpriv.recognizers import sface as sface_mod

    def loss(x: jax.Array, params: Any, r: jax.Array) -> jax.Array:
        return jnp.sum(jnp.linalg.norm(rec.apply(params, x) - r, axis=-1))

    saved = sface_mod.DepthwiseConv
    sface_mod.DepthwiseConv = depthwise
    try:
        fwd = jax.jit(rec.apply).lower(rec.params, chips).compile()
        vg = jax.jit(jax.value_and_grad(loss)).lower(chips, rec.params, ref).compile()
    finally:
        sface_mod.DepthwiseConv = saved
    return {"forward": lambda: jax.block_until_ready(fwd(rec.params, chips)),
            "value_and_grad": lambda: jax.block_until_ready(vg(chips, rec.params, ref))}


def main(argv: list[str] | None = None) -> int:
    """Measure, print, and optionally write the JSON."""
    args = parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    if repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    batches = (1,) if args.quick else BATCHES
    import jax.numpy as jnp

    from benchmarks.recognizers import load_sface_chips

    faces = jnp.asarray(load_sface_chips(), jnp.float32) / 255.0
    variants = sface_variants()
    cases: dict[tuple[str, int, str], Any] = {}
    grads: dict[tuple[str, int], np.ndarray] = {}
    for batch in batches:
        chips, other = faces[:batch], faces[batch : 2 * batch]
        for name, (depthwise, rec) in variants.items():
            ref = rec.apply(rec.params, other)
            for kind, run in compiled(rec, depthwise, chips, ref).items():
                out = run()  # untimed first call
                if kind == "value_and_grad":
                    grads[name, batch] = np.asarray(out[1])
                cases[name, batch, kind] = run
    seconds: dict[tuple[str, int, str], list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for key, run in cases.items():
            t0 = time.perf_counter()
            run()
            seconds[key].append(time.perf_counter() - t0)
    rows, ratios = [], {}
    for (name, batch, kind), ts in seconds.items():
        rows.append({"implementation": f"SFace {kind}, {name}", "batch": batch,
                     "ms_per_call": 1e3 * statistics.median(ts), "seconds": ts})
    med = {k: statistics.median(v) for k, v in seconds.items()}
    before, after = FORMULATIONS
    for batch in batches:
        g0, g1 = grads[before, batch], grads[after, batch]
        ratios[f"b{batch}: value_and_grad before / after"] = (
            med[before, batch, "value_and_grad"] / med[after, batch, "value_and_grad"])
        for name in FORMULATIONS:
            ratios[f"b{batch}: value_and_grad / forward, {name.split(':')[0]}"] = (
                med[name, batch, "value_and_grad"] / med[name, batch, "forward"])
        ratios[f"b{batch}: max|grad after - grad before| / max|grad before|"] = float(
            np.abs(g1 - g0).max() / np.abs(g0).max())
    info = {"cpu_model": cpu_model(), "os_cpu_count": os.cpu_count(),
            "python": platform.python_version(), "jax": __import__("jax").__version__,
            "loadavg_end": list(os.getloadavg()), "repeats": repeats,
            "chips": "ArcFace-aligned glint crops (first two per identity): chips = faces[:b], "
                     "reference embeddings of faces[b:2b]",
            "command": " ".join(["python benchmarks/sface_grad.py",
                                 *(sys.argv[1:] if argv is None else argv)])}
    for r in rows:
        print(f"{r['implementation']:<62} b{r['batch']:<2} {r['ms_per_call']:9.1f} ms")
    for k, v in ratios.items():
        print(f"{k}: {v:.3g}")
    print(f"{info['cpu_model']}, {info['os_cpu_count']} cores, load at end {info['loadavg_end']}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "ratios": ratios, "results": rows},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())

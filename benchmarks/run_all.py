"""Run every benchmark in ``benchmarks/`` and print one table of the ratios each measured.

Each benchmark runs in its own process (``--quick`` unless ``--full``; ``--json`` into a temporary
file); ratios are read from its JSON: a top-level ``ratios`` mapping, and row fields named
``ratio*``; rows with only a throughput (``fps``, ``*_per_s``) get a ratio to the
benchmark's first row. Ratios measured within one run are what to quote: absolute speeds move
with the machine's load.

Run ``python benchmarks/run_all.py [--full] [--only peers,recognizers] [--json OUT.json]``;
the table's ratios, the command and the machine go to ``--json`` (default
``experiments/results/bench_all.json``), which is what the README quotes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE.parent / "experiments" / "results" / "bench_all.json"
NAME_KEYS = ("implementation", "case", "name", "configuration", "method")
THROUGHPUT_KEYS = ("faces_per_s", "photos_per_s", "images_per_s", "queries_per_s", "fps")


def benchmarks(only: list[str] | None = None) -> list[Path]:
    """Benchmark scripts beside this file (not this file, not private modules)."""
    found = sorted(p for p in HERE.glob("*.py")
                   if p.name != Path(__file__).name and not p.name.startswith("_"))
    if only:
        found = [p for p in found if p.stem in only]
    return found


def supports(script: Path, flag: str) -> bool:
    """Does ``script --help`` mention ``flag``?"""
    res = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                         timeout=300, cwd=HERE.parent)
    return flag in res.stdout


def _rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    for key in ("results", "rows"):
        rows = data.get(key)
        if isinstance(rows, list):
            return [r for r in rows if isinstance(r, dict)]
        if isinstance(rows, dict):
            return [{"name": k, **v} for k, v in rows.items() if isinstance(v, dict)]
    return []


def _row_name(row: dict[str, Any]) -> str:
    name = next((str(row[k]) for k in NAME_KEYS if k in row), "?")
    for extra in ("batch", "every"):
        if extra in row and not isinstance(row[extra], list):
            name += f" [{extra} {row[extra]}]"
    return name


def ratios(data: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(row, ratio name, value) triples found in one benchmark's JSON."""
    out = []
    top = data.get("ratios")
    if isinstance(top, dict):
        out += [("", str(k), float(v)) for k, v in top.items() if isinstance(v, int | float)]
    rows = _rows(data)
    for row in rows:
        for k, v in row.items():
            if isinstance(v, int | float) and not isinstance(v, bool) and k.startswith("ratio"):
                out.append((_row_name(row), k, float(v)))
    if not out and rows:
        key = next((k for k in THROUGHPUT_KEYS if isinstance(rows[0].get(k), int | float)), None)
        if key and rows[0][key]:
            out += [(_row_name(r), f"{key} / first row's", float(r[key]) / rows[0][key])
                    for r in rows if isinstance(r.get(key), int | float)]
    return out


def run(script: Path, full: bool, timeout: float, tmp: Path) -> dict[str, Any]:
    """Run one benchmark; returns its parsed JSON (or an ``error``) and its wall time."""
    out = tmp / f"{script.stem}.json"
    cmd = [sys.executable, str(script), "--json", str(out)]
    if not full and supports(script, "--quick"):
        cmd.append("--quick")
    shown = " ".join(["python", f"benchmarks/{script.name}", "--json", f"DIR/{out.name}",
                      *cmd[4:]])  # what the record says: no machine folders
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                             cwd=HERE.parent)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "command": shown,
                "seconds": time.perf_counter() - t0}
    seconds = time.perf_counter() - t0
    if res.returncode != 0 or not out.is_file():
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {res.returncode}: {tail[0]}", "command": shown,
                "seconds": seconds}
    return {"data": json.loads(out.read_text()), "command": shown, "seconds": seconds,
            "stdout": res.stdout}


def table(results: dict[str, dict[str, Any]]) -> str:
    """One table of every benchmark's ratios."""
    lines = [f"{'benchmark':<12} {'row':<52} {'ratio':<46} {'value':>8}", "-" * 121]
    for name, res in results.items():
        if "error" in res:
            lines.append(f"{name:<12} {'(failed: ' + res['error'] + ')':<52}")
            continue
        found = ratios(res["data"])
        if not found:
            lines.append(f"{name:<12} {'(no ratios in its JSON)':<52}")
        for row, key, value in found:
            lines.append(f"{name:<12} {row[:52]:<52} {key[:46]:<46} {value:>7.2f}x")
    return "\n".join(lines)


def record(results: dict[str, dict[str, Any]], info: str, full: bool,
           command: str) -> dict[str, Any]:
    """The JSON written by ``--json``: command, machine, mode, every ratio of the table (one row
    per ratio) and each benchmark's own output."""
    rows = [{"benchmark": name, "row": row, "ratio": key, "value": value}
            for name, res in results.items() if "error" not in res
            for row, key, value in ratios(res["data"])]
    return {"command": command, "machine": info, "mode": "full" if full else "quick",
            "ratios": rows,
            "failed": {k: v["error"] for k, v in results.items() if "error" in v},
            "results": {k: {kk: vv for kk, vv in v.items() if kk != "stdout"}
                        for k, v in results.items()}}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print the table (exit 1 if any failed)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="full runs (default: each with --quick)")
    p.add_argument("--only", default=None, help="comma-separated benchmark names")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON,
                   help="write the ratios and every benchmark's output as JSON (default "
                   "experiments/results/bench_all.json)")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    scripts = benchmarks(only)
    if not scripts:
        raise SystemExit("no benchmarks found")
    from jaxpriv.machine import machine_description

    info = machine_description()
    print(f"Machine: {info}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for script in scripts:
            print(f"running {script.name} ...", flush=True)
            results[script.stem] = run(script, args.full, args.timeout, Path(tmp))
            print(f"  {results[script.stem].get('error', 'ok')} "
                  f"({results[script.stem]['seconds']:.0f} s)", flush=True)
    print()
    print(f"Machine: {info}; mode {'full' if args.full else 'quick'}")
    print(table(results))
    command = " ".join(["python benchmarks/run_all.py", *(sys.argv[1:] if argv is None else argv)])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record(results, info, args.full, command), indent=2) + "\n")
    print(f"-> {args.json}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())

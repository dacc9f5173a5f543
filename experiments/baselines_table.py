"""Summary table of the baseline protections from the ``jaxpriv eval`` reports.

Reads ``experiments/results/eval_<method>.json`` (written by ``jaxpriv eval``, commands below the
table) and writes ``experiments/results/baselines.md`` (+ ``baselines.json``).

Run: ``python experiments/baselines_table.py [--results experiments/results]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

METHODS = ("none", "blur", "mosaic", "solid", "dppix", "cloak", "cloak_sweep")
DESTRUCTIVE = ("blur", "mosaic", "solid", "dppix")
SWEEP = "eval_blur_sweep"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _opts(o: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in o.items() if k != "margin") or "–"


def row(method: str, rep: dict[str, Any], res: dict[str, Any]) -> dict[str, Any]:
    """The summary numbers of one method's result."""
    tar = {t["name"]: t for t in res["tar"]}
    first = res["tar"][0]
    far3 = next((t for t in res["tar"] if t["name"] == "FAR=0.001"), None)
    u = res["utility"]
    return {
        "method": method, "options": _opts(res["options"]), "probes": rep["probes"],
        "identities": rep["identities"],
        "tar_clean": first["tar_clean"], "tar_protected": first["tar_protected"],
        "tar_clean_far1e-3": far3["tar_clean"] if far3 else None,
        "tar_protected_far1e-3": far3["tar_protected"] if far3 else None,
        "success": res["protection_success"],
        "success_matched": res["protection_success_clean_matched"],
        "jpeg": res["robustness"].get("jpeg75"), "resize": res["robustness"].get("resize0.5"),
        "detected_clean": res["face_detected"]["clean"],
        "detected_protected": res["face_detected"]["protected"],
        "ssim": u["ssim"], "chip_ssim": res["chip_ssim"], "psnr": u["psnr"], "dhash": u["dhash"],
        "ms_per_face": res["ms_per_face"]["median"], "thresholds": list(tar),
    }


def probes_text(reps: dict[str, dict[str, Any]]) -> str:
    """Probes per identity of each report, from the reports."""
    per: dict[str, list[str]] = {}
    for m, rep in reps.items():
        n = rep.get("max_per_identity")
        per.setdefault("all" if n is None else str(n), []).append(m)
    return "Probes per identity: " + "; ".join(
        f"at most {n} ({', '.join(ms)})" if n != "all" else f"all ({', '.join(ms)})"
        for n, ms in per.items()) + "."


def dark_references(data: Path) -> dict[str, float]:
    """dlib distance of each identity's reference chip (as ``jaxpriv eval`` prepares it) to an
    all-black chip, for the references within the recognizer's threshold of it: a destroyed
    (near-black) probe of those identities still "matches" its reference."""
    import numpy as np

    from jaxpriv.eval.protocol import list_identities, prepare
    from jaxpriv.recognizers import load_recognizer

    rec = load_recognizer("dlib_resnet")
    black = rec.embed(np.zeros((1, rec.input_size, rec.input_size, 3), np.uint8))[0]
    out = {}
    for ident in list_identities(data):
        ref = rec.embed(prepare(ident.reference, rec, None).chip)[0]
        d = float(rec.distance(ref, black))
        if d < rec.threshold:
            out[ident.name] = d
    return out


def floor_text(rows: list[dict[str, Any]], data: Path) -> str | None:
    """What the floor of the destructive rows (TAR protected > 0) is made of, computed from the
    data: the references that lie within the threshold of an all-black chip. ``None`` if no
    destructive row has a floor or the data is not there."""
    floors = [r for r in rows if r["method"] in DESTRUCTIVE and r["tar_protected"]]
    if not floors or not data.is_dir():
        return None
    dark = dark_references(data)
    matched = ", ".join(f"{r['method']} {round(r['tar_protected'] * r['probes'])} of "
                        f"{r['probes']}" for r in floors)
    if not dark:
        return (f"Probes still matched under destructive methods: {matched}; no reference lies "
                "within the threshold of an all-black chip.")
    refs = ", ".join(f"{n} ({d:.2f})" for n, d in sorted(dark.items()))
    return (f"Probes still matched under destructive methods: {matched}. References within the "
            f"0.6 threshold of an all-black chip (distance; computed by this script from "
            f"`{data}`): {refs}; any near-black probe of those identities matches its reference, "
            "so this part of the floor is a degenerate reference, not a protection failure.")


def markdown(rows: list[dict[str, Any]], reps: dict[str, dict[str, Any]], command: str,
             sweep: dict[str, Any] | None, peers: dict[str, Any] | None = None,
             floor: str | None = None) -> str:
    """The table and the commands that produced its inputs."""
    any_rep = next(iter(reps.values()))
    lines = [
        "# Baseline protections on the glint faces (dlib ResNet, JAX port)",
        "",
        f"Command: `{command}` (reads the `jaxpriv eval` reports listed below).  ",
        f"Machine: {any_rep['machine']}.",
        "",
        f"Data: `{any_rep['data']}`, {any_rep['identities']} identities, reference = first sorted "
        "crop of each; probes = the next crops (count per row); every crop is padded 25 % and "
        "upsampled ×3 into a photo, protected, and the recognizer's chip is cut from the "
        "protected photo at the CLEAN face geometry. Same person = distance < 0.6.",
        "",
        "| method | options | probes | TAR clean → protected (0.6) | TAR @FAR 1e-3 clean → "
        "protected | success % (all / matched) | after JPEG75 % | after 0.5× resize % | "
        "detected clean → prot. % | SSIM photo / chip | PSNR dB | dHash | ms/face |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        psnr = "∞" if r["psnr"] is None else f"{r['psnr']:.1f}"
        lines.append(
            f"| {r['method']} | {r['options']} | {r['probes']} | {_pct(r['tar_clean'])} → "
            f"{_pct(r['tar_protected'])} | {_pct(r['tar_clean_far1e-3'])} → "
            f"{_pct(r['tar_protected_far1e-3'])} | {_pct(r['success'])} / "
            f"{_pct(r['success_matched'])} | {_pct(r['jpeg'])} | {_pct(r['resize'])} | "
            f"{_pct(r['detected_clean'])} → {_pct(r['detected_protected'])} | "
            f"{r['ssim']:.3f} / {r['chip_ssim']:.3f} | {psnr} | {r['dhash']:.1f} | "
            f"{r['ms_per_face']:.0f} |")
    lines += [
        "",
        "success = protected probe no longer accepted at 0.6 (all probes / those accepted when "
        "clean); robustness = success after JPEG q75 or a 0.5× down + up resize of the protected "
        "photo; ms/face = median wall time of the method alone on a shared, loaded 2-core CPU "
        "(compare within a column only). `cloak` is white-box on the evaluating network (the only "
        "real recognizer here): an upper bound for its transfer to other recognizers. "
        + probes_text(reps),
    ]
    if floor:
        lines += ["", floor]
    if sweep:
        lines += ["", f"Sweep: `{sweep['command']}` → [`{SWEEP}.md`]({SWEEP}.md), "
                  f"![privacy-utility]({SWEEP}.png)"]
        lines += ["", "| blur strength | success % | TAR protected % | SSIM | after JPEG75 % |",
                  "|---|---|---|---|---|"]
        for res in sweep["results"]:
            lines.append(f"| {res['options']['strength']} | {_pct(res['protection_success'])} | "
                         f"{_pct(res['tar'][0]['tar_protected'])} | {res['utility']['ssim']:.3f} "
                         f"| {_pct(res['robustness']['jpeg75'])} |")
    if peers:
        m = peers["machine"]
        lines += ["", "## Peers on full photos (`benchmarks/peers.py`)", "",
                  f"Command: `{peers.get('command', 'python benchmarks/peers.py')}` → "
                  "[`baselines.peers.json`](baselines.peers.json); "
                  f"{m['cpu_model']}, {m['os_cpu_count']} cores, load "
                  f"{m['loadavg_start'][0]:.1f}, deface {m.get('deface')}, onnxruntime "
                  f"{m.get('onnxruntime')}. Photos: the 4 bundled samples + 12 dlib group photos. "
                  "Same person = dlib distance < 0.6 between the clean chip and the chip cut at "
                  "the clean geometry afterwards.", "",
                  "| tool | faces found (own detector / dlib clean) | photos/s | ratio to first "
                  "| same person % |", "|---|---|---|---|---|"]
        for r in peers["results"]:
            ratio = next(v for k, v in r.items() if k.startswith("ratio_vs_"))
            lines.append(f"| {r['implementation']} | {r['faces_found']} / "
                         f"{r['faces_dlib_clean']} | {r['photos_per_s']:.2f} | {ratio:.2f}× | "
                         f"{_pct(r['same_person_rate'])} |")
    lines += ["", "Reports and their commands:", ""]
    for m, rep in reps.items():
        lines.append(f"- [`eval_{m}.md`](eval_{m}.md): `{rep['command']}` ({rep['seconds']} s)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Build the table from the reports found."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=Path("experiments/results"))
    args = p.parse_args(argv)
    reps = {}
    for m in METHODS:
        path = args.results / f"eval_{m}.json"
        if path.is_file():
            reps[m] = json.loads(path.read_text())
        else:
            print(f"missing {path}: skipped", file=sys.stderr)
    if not reps:
        raise SystemExit(f"no eval_<method>.json in {args.results}")
    rows = [row(rep["method"], rep, res) for rep in reps.values() for res in rep["results"]]
    order = {"preset=low": 0, "preset=mid": 1, "preset=high": 2}
    rows.sort(key=lambda r: (METHODS.index(r["method"]),
                             order.get(r["options"].split(",")[0], 0)))
    sweep_path = args.results / f"{SWEEP}.json"
    sweep = json.loads(sweep_path.read_text()) if sweep_path.is_file() else None
    command = " ".join(["python experiments/baselines_table.py", *(sys.argv[1:] if argv is None
                                                                    else argv)])
    peers_path = args.results / "baselines.peers.json"
    peers = json.loads(peers_path.read_text()) if peers_path.is_file() else None
    data = Path(next(iter(reps.values()))["data"])
    text = markdown(rows, reps, command, sweep, peers, floor_text(rows, data))
    (args.results / "baselines.md").write_text(text)
    (args.results / "baselines.json").write_text(json.dumps(
        {"command": command, "rows": rows}, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Transfer table (issue 17 item 5): does a protection built on one recognizer hide the face from
another?

Every method at its default options is run by :func:`jaxpriv.eval.evaluate` on the TEST
identities (:mod:`jaxpriv.data.splits`) of each dataset, every protected probe measured by every
recognizer at its own threshold on its own chip, against the identity's reference portrait (its
first sorted photo: a different photo of the same person). A recognizer is white-box for a method
when it built the protection (:func:`jaxpriv.eval.transfer.built_with`), black-box otherwise.
The datasets are pooled: protection success = protected probes no longer matched / probes the
recognizer matched when clean, summed over datasets. A method that fails is reported as failed.

Writes ``out_json`` / ``out_md`` (with the command and machine) and ``out_png``: a heatmap of
methods × recognizers, white-box cells outlined. Per-run reports are kept in the workdir
(``<method>_<dataset>.json``, written to a temp file and renamed, so a killed run leaves none
half-written) and reused by a rerun with the same settings; an unreadable one is measured again.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from experiments.results_io import write_results
from jaxpriv.io import write_bytes_atomic, write_text_atomic
from jaxpriv.machine import machine_description

COMMAND = "python -m experiments.main --config experiments/configs/transfer.py --workdir DIR"


def _settings(config: ml_collections.ConfigDict, method: str, dataset: str) -> dict[str, Any]:
    """What a per-run report must match to be reused (its white-box / black-box labels are
    derived, not measured: :func:`relabel` redoes them by the current rule)."""
    from jaxpriv.methods import get_method

    return {"method": method, "data": config[f"{dataset}_dir"],
            "recognizers": list(config.recognizers), "max_per_identity": config.max_per_identity,
            "detector": config.detector, "split": config.split, "seed": config.seed,
            "options": json.loads(json.dumps(get_method(method).defaults()))}


def _matches(report: dict[str, Any], want: dict[str, Any]) -> bool:
    have = {"method": report.get("method"), "data": report.get("data"),
            "recognizers": report.get("recognizers"),
            "max_per_identity": report.get("max_per_identity"),
            "detector": report.get("detector"),
            "split": report.get("split", {}).get("identity_split"), "seed": report.get("seed"),
            "options": report["results"][0]["options"] if report.get("results") else None}
    return have == want


def relabel(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` with every white-box / black-box label (``built_with``, ``access``) given by
    the current rule (:func:`jaxpriv.eval.transfer.built_with` of the method and the run's
    options): a reused report measured before the rule changed is labelled like a new one."""
    from jaxpriv.eval.transfer import access, built_with

    out = json.loads(json.dumps(report))
    for section in out.get("per_recognizer", []):
        for res in section["results"]:
            res["built_with"] = built_with(out["method"], res["options"])
            res["access"] = access(section["recognizer"], res["built_with"]["recognizers"])
    return out


def run_one(config: ml_collections.ConfigDict, workdir: Path, method: str,
            dataset: str) -> dict[str, Any]:
    """The eval report of ``method`` on ``dataset`` (reused from the workdir when its settings
    match), ``{"error": ...}`` if the method failed, ``{"not_run": ...}`` if there is none and
    ``config.reuse_only`` (assemble the table from the runs made so far)."""
    from jaxpriv.eval import evaluate

    path = workdir / f"{method}_{dataset}.json"
    want = _settings(config, method, dataset)
    if path.is_file():
        try:
            report = json.loads(path.read_text())
        except (ValueError, OSError):  # not a whole report (e.g. from before writes were atomic)
            print(f"{method} on {dataset}: {path} is unreadable, not reused", flush=True)
            report = None
        if isinstance(report, dict) and _matches(report, want):
            print(f"{method} on {dataset}: reused {path}", flush=True)
            return relabel(report)
    if config.reuse_only:
        print(f"{method} on {dataset}: not run (reuse_only)", flush=True)
        return {"not_run": "no finished run in the workdir when the table was assembled"}
    t0 = time.perf_counter()
    try:
        report = evaluate(want["data"], method, recognizer=list(config.recognizers),
                          max_per_identity=config.max_per_identity, seed=config.seed,
                          progress=False, identity_split=config.split, detector=config.detector)
    except Exception as e:  # noqa: BLE001 - a failing method is reported, never hidden
        traceback.print_exc()
        print(f"{method} on {dataset}: FAILED after {time.perf_counter() - t0:.0f} s", flush=True)
        return {"error": f"{type(e).__name__}: {e}"}
    write_text_atomic(path, json.dumps(report, indent=1) + "\n", overwrite=True)  # temp + rename
    print(f"{method} on {dataset}: {report['probes']} probes, {report['seconds']} s", flush=True)
    return report


def pool(reports: dict[str, dict[str, Any]], recognizer: str) -> dict[str, Any]:
    """One method × recognizer cell over the datasets' reports: counts summed, rates from them."""
    cell: dict[str, Any] = {"probes": 0, "matched_clean": 0, "hidden_of_matched": 0,
                            "hidden_all": 0, "per_dataset": {}}
    for dataset, rep in reports.items():
        if "per_recognizer" not in rep:
            continue
        sec = next(s for s in rep["per_recognizer"] if s["recognizer"] == recognizer)
        res = sec["results"][0]
        hidden_all = round(res["protection_success"] * sec["probes"])
        cell["per_dataset"][dataset] = {
            "probes": sec["probes"], "identities": rep["identities"],
            "tar_clean": sec["tar_clean"], "matched_clean": sec["matched_clean"],
            "hidden_of_matched": res["hidden_of_matched"],
            "success_clean_matched": res["protection_success_clean_matched"],
            "success_all": res["protection_success"], "robustness": res["robustness"]}
        cell["probes"] += sec["probes"]
        cell["matched_clean"] += sec["matched_clean"]
        cell["hidden_of_matched"] += res["hidden_of_matched"]
        cell["hidden_all"] += hidden_all
        cell["access"] = res["access"]
        cell["built_with"] = res["built_with"]
    n, m = cell["probes"], cell["matched_clean"]
    cell["success_clean_matched"] = cell["hidden_of_matched"] / m if m else None
    cell["success_all"] = cell["hidden_all"] / n if n else None
    return cell


def summarise(config: ml_collections.ConfigDict,
              reports: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """The JSON result: per method its options, per-dataset errors, utility, and per recognizer
    the pooled cell (:func:`pool`)."""
    methods = {}
    for method, by_ds in reports.items():
        ok = {d: r for d, r in by_ds.items() if "per_recognizer" in r}
        first = next(iter(ok.values()), None)
        methods[method] = {
            "options": first["results"][0]["options"] if first else None,
            "errors": {d: r["error"] for d, r in by_ds.items() if "error" in r},
            "not_run": {d: r["not_run"] for d, r in by_ds.items() if "not_run" in r},
            "ssim": {d: r["results"][0]["utility"]["ssim"] for d, r in ok.items()},
            "face_detected": {d: r["results"][0]["face_detected"] for d, r in ok.items()},
            "ms_per_face": {d: r["results"][0]["ms_per_face"]["median"] for d, r in ok.items()},
            "seconds": {d: r["seconds"] for d, r in ok.items()},
            "skipped": {d: r["skipped"] for d, r in ok.items()},
            "recognizers": {rec: pool(ok, rec) for rec in config.recognizers} if ok else {},
        }
    return {"command": COMMAND, "machine": machine_description(),
            "config": json.loads(config.to_json()), "methods": methods}


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def markdown(result: dict[str, Any], seconds: float) -> str:
    """The Markdown report of :func:`summarise`'s result."""
    cfg, methods = result["config"], result["methods"]
    recs = cfg["recognizers"]
    ok = [m for m in methods.values() if m["recognizers"]]
    data_lines = []
    for ds in cfg["datasets"]:
        cells = [m["recognizers"][recs[0]]["per_dataset"].get(ds) for m in ok]
        cell = next((c for c in cells if c), None)
        if cell:
            data_lines.append(f"`{cfg[ds + '_dir']}`: {cell['probes']} probes of "
                              f"{cell['identities']} test identities")
    lines = [
        "# Transfer: every method × every recognizer, white-box and black-box",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}. Evaluation time "
        f"{sum(sum(m['seconds'].values()) for m in methods.values()):.0f} s, the wall times of "
        f"the {sum(len(m['seconds']) for m in methods.values())} method × dataset runs summed "
        f"(this process: {seconds:.0f} s; per-run reports already in the workdir are reused).",
        "",
        f"Data: {'; '.join(data_lines)}; the {cfg['split']} split of jaxpriv.data.splits, at "
        f"most {cfg['max_per_identity']} probes per identity, reference = the identity's first "
        f"sorted photo (a different photo of the same person); faces found by "
        f"{cfg['detector']} (celeba299's 256×256 loose crops are photos, not aligned crops: "
        "YuNet finds their face where dlib's HOG misses ≈ 5 %, with its own 5 ArcFace points; "
        "glint's 112×112 aligned crops are padded and upsampled ×3 first). Every protected "
        "probe is cut at the clean face geometry in each recognizer's own alignment (dlib150, "
        "arcface112) and compared at its own threshold. `mask` runs in memory as every method "
        "does in `jaxpriv eval` (its pad keyed by the probe's key, no password or key file), so "
        "its PNG-only rule for written files does not apply to these JPEG photos and crops.",
        ""]
    if cfg.get("reuse_only"):
        lines += ["Assembled with `--config.reuse_only=True` from the per-run reports of earlier "
                  "runs of this command in the same workdir (run in parallel processes).", ""]
    lines += [
        "Success = protected probe no longer matched, over the probes the recognizer matched "
        "when clean (pooled over both datasets; counts in brackets). **W** = white-box (the "
        "recognizer built the protection), B = black-box (the protection never saw it).",
        "",
        "| method | options | built with | " + " | ".join(recs) + " | SSIM (glint / celeba299) "
        "| face still detected |",
        "|---|---|---|" + "---|" * len(recs) + "---|---|",
    ]
    for name, m in methods.items():
        if not m["recognizers"]:
            what = "failed" if m["errors"] else "not measured"
            lines.append(f"| {name} | – | – | " + " | ".join(what for _ in recs) + " | – | – |")
            continue
        if m["errors"] or m.get("not_run"):
            name = f"{name} ({', '.join(m['ssim'])} only)"
        cells = []
        for rec in recs:
            c = m["recognizers"][rec]
            mark = "**W**" if c["access"] == "white-box" else "B"
            cells.append(f"{_pct(c['success_clean_matched'])} ({c['hidden_of_matched']}/"
                         f"{c['matched_clean']}) {mark}")
        built = m["recognizers"][recs[0]]["built_with"]
        opts = ", ".join(f"{k}={v}" for k, v in m["options"].items() if v is not None) or "–"
        ssim = " / ".join(f"{m['ssim'][d]:.3f}" if d in m["ssim"] else "–"
                          for d in cfg["datasets"])
        det = " / ".join(_pct(m["face_detected"][d]["protected"]) if d in m["face_detected"]
                         else "–" for d in cfg["datasets"])
        lines.append(f"| {name} | {opts} | {', '.join(built['recognizers']) or 'none'} "
                     f"({built['source']}) | " + " | ".join(cells) + f" | {ssim} | {det} |")
    lines += ["", "## Per dataset", "",
              "Success over clean-matched probes / over all probes / after JPEG q75, per dataset "
              "and recognizer; clean TAR = share of probes the recognizer matched when clean.", "",
              "| method | dataset | recognizer | access | clean TAR | success (matched) | "
              "success (all) | after JPEG q75 | ms/face |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, m in methods.items():
        for ds in cfg["datasets"]:
            for rec in recs:
                c = m["recognizers"].get(rec, {}).get("per_dataset", {}).get(ds)
                if c is None:
                    continue
                lines.append(
                    f"| {name} | {ds} | {rec} | {m['recognizers'][rec]['access']} | "
                    f"{_pct(c['tar_clean'])} | {_pct(c['success_clean_matched'])} "
                    f"({c['hidden_of_matched']}/{c['matched_clean']}) | "
                    f"{_pct(c['success_all'])} | {_pct(c['robustness'].get('jpeg75'))} | "
                    f"{m['ms_per_face'][ds]:.0f} |")
    failed = [(n, d, e) for n, m in methods.items() for d, e in m["errors"].items()]
    not_run = [(n, d) for n, m in methods.items() for d in m.get("not_run", {})]
    skipped = [(n, d, len(s)) for n, m in methods.items() for d, s in m["skipped"].items() if s]
    if failed:
        lines += ["", "## Failures", ""] + [f"- `{n}` on {d}: {e}" for n, d, e in failed]
    if not_run:
        lines += ["", "## Not measured", "", "These method × dataset runs had not finished when "
                  "the table was assembled (`--config.reuse_only=True`); a row marked "
                  "\"(… only)\" pools the datasets that finished. Rerunning the command with "
                  "the same workdir resumes them: "
                  + ", ".join(f"`{n}` on {d}" for n, d in not_run) + "."]
    if skipped:
        lines += ["", "Skipped images (no face found by the detector, or no usable reference): "
                  + "; ".join(f"{n} on {d}: {k}" for n, d, k in skipped) + "."]
    return "\n".join(lines) + "\n"


def heatmap(result: dict[str, Any], path: str | Path) -> None:
    """PNG: methods × recognizers, protection success over clean-matched probes; white-box
    cells outlined and marked W, failed cells grey."""
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    recs = result["config"]["recognizers"]
    names = list(result["methods"])
    grid = np.full((len(names), len(recs)), np.nan)
    for i, n in enumerate(names):
        for j, r in enumerate(recs):
            c = result["methods"][n]["recognizers"].get(r)
            if c and c["success_clean_matched"] is not None:
                grid[i, j] = 100 * c["success_clean_matched"]
    fig, ax = plt.subplots(figsize=(1.9 * len(recs) + 2.2, 0.5 * len(names) + 1.4))
    cmap = matplotlib.colormaps["viridis"].copy()
    cmap.set_bad("lightgrey")
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=100, aspect="auto")
    for i, n in enumerate(names):
        for j, r in enumerate(recs):
            c = result["methods"][n]["recognizers"].get(r)
            if c is None or np.isnan(grid[i, j]):
                ax.text(j, i, "failed", ha="center", va="center", fontsize=9)
                continue
            white = c["access"] == "white-box"
            ax.text(j, i, f"{grid[i, j]:.0f} %" + (" W" if white else ""), ha="center",
                    va="center", fontsize=9, fontweight="bold" if white else "normal",
                    color="black" if grid[i, j] > 60 else "white")
            if white:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2.5,
                                           edgecolor="red"))
    ax.set_xticks(range(len(recs)), recs)
    ax.set_yticks(range(len(names)), [
        n + (f"\n({', '.join(m['ssim'])} only)" if m["recognizers"] and (
            m["errors"] or m.get("not_run")) else "")
        for n, m in result["methods"].items()])
    ax.set_title("protection success (clean-matched test probes)\nW / red = white-box")
    fig.colorbar(im, ax=ax, label="%")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue(), overwrite=True)


def run(config: ml_collections.ConfigDict, workdir: Path) -> None:
    """Every method × dataset (reusing matching per-run reports), then the pooled table."""
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    reports = {m: {d: run_one(config, workdir, m, d) for d in config.datasets}
               for m in config.methods}
    result = summarise(config, reports)
    text = markdown(result, time.perf_counter() - start)
    result["seconds"] = round(time.perf_counter() - start, 1)
    Path(config.out_png).parent.mkdir(parents=True, exist_ok=True)
    heatmap(result, config.out_png)
    write_results(config, result, text)

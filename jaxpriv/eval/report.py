"""The ``jaxpriv eval`` report: Markdown tables (:func:`markdown`) and a privacy–utility plot
(:func:`plot`)."""

from __future__ import annotations

import io as _io
from pathlib import Path
from typing import Any

import numpy as np

from jaxpriv.errors import JaxprivError
from jaxpriv.eval.protocol import JPEG_QUALITY, RESIZE_FACTOR
from jaxpriv.io import write_bytes_atomic


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def _num(v: float | None, fmt: str = ".3f") -> str:
    return "∞" if v is None else format(v, fmt)


def _opts(o: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in o.items()) or "–"


def split_text(report: dict[str, Any]) -> str:
    """One sentence: which identities of the report the method's model was trained on."""
    split = report.get("split")
    if split is None:
        return "Split: not recorded (report written before splits were)."
    which = split.get("identity_split", "all")
    head = ("Identities: all of the data. " if which == "all" else
            f"Identities: the {which} split of jaxpriv.data.splits. ")
    return head + _model_split_text(report, split)


def _model_split_text(report: dict[str, Any], split: dict[str, Any]) -> str:
    if not split["models"]:
        return f"Split: `{report['method']}` has no trained model."
    models = ", ".join(f"`{m}`" for m in split["models"])
    if not split["recorded"]:
        return (f"Split: {models} does not record its training identities; an unknown share "
                "of these probes may be of identities it was trained on.")
    if split["unseen_only"]:
        return (f"Split: only identities {models} was never trained on (--unseen-only; "
                f"{len(split['seen'])} seen identities of the data left out).")
    return (f"Split: {models} was trained on {split['identities_seen']} of these "
            f"{report['identities']} identities ({split['probes_seen']} of {report['probes']} "
            "probes)" + (": numbers over all probes are partly measured on training identities "
                         "(use --unseen-only)." if split["probes_seen"] else "."))


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (tables of verification, protection and utility)."""
    r0 = report["results"][0]
    lines = [
        f"# jaxpriv eval: `{report['method']}` on `{report['data']}`",
        "",
        f"Command: `{report.get('command', '')}`  ",
        f"Machine: {report['machine']}; wall time {report['seconds']} s.",
        "",
        f"Recognizer {report['recognizer']}"
        + (f" (main tables; all: {', '.join(report['recognizers'])})"
           if len(report.get("recognizers", [])) > 1 else "")
        + f"; detector {report.get('detector', 'hog')}; {report['identities']} identities; "
        "reference = "
        f"first sorted image of each; {report['probes']} probes"
        + (f" (at most {report['max_per_identity']} per identity)"
           if report["max_per_identity"] else "")
        + f", {report['aligned_crops']} of them pre-aligned crops (padded 25 %, upsampled ×3); "
        f"{report['genuine_pairs']} genuine and {report['impostor_pairs']} clean impostor pairs; "
        f"seed {report['seed']}. Chips of protected photos are cut at the clean face geometry.",
        "",
        split_text(report),
        "",
        "## Same-person rate (TAR) of probes vs their reference",
        "",
        "| options | threshold | value | FAR clean | TAR clean | TAR protected |",
        "|---|---|---|---|---|---|",
    ]
    for res in report["results"]:
        for t, th in zip(res["tar"], report["thresholds"], strict=True):
            note = "" if th["far_resolved"] else " (unresolved)"
            lines.append(f"| {_opts(res['options'])} | {t['name']}{note} | {t['threshold']:.4f} | "
                         f"{_pct(th['far_clean'])} | {_pct(t['tar_clean'])} | "
                         f"{_pct(t['tar_protected'])} |")
    rob = list(r0["robustness"])
    lines += [
        "",
        "## Protection and utility",
        "",
        f"Success = protected probe rejected at {report['thresholds'][0]['threshold']:g} "
        "(all probes / probes matched when clean); robustness = success after "
        f"JPEG q{JPEG_QUALITY} / after a {RESIZE_FACTOR:g}× down + up resize. Utility on the whole "
        "(padded) photo (PSNR over the photos that changed; ∞ = none did); chip SSIM on the "
        "recognizer's chip; d(prot, clean) = mean distance of protected to clean probe.",
        "",
        "| options | success | success (matched) | " + " | ".join(rob) + " | detected clean → "
        "protected | SSIM | PSNR dB | L0 px | L2 | ALD_2 | dHash | chip SSIM | d(prot, clean) "
        "| ms/face |",
        "|---|---|---|" + "---|" * len(rob) + "---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in report["results"]:
        u = res["utility"]
        lines.append(
            f"| {_opts(res['options'])} | {_pct(res['protection_success'])} | "
            f"{_pct(res['protection_success_clean_matched'])} | "
            + " | ".join(_pct(res["robustness"][k]) for k in rob)
            + f" | {_pct(res['face_detected']['clean'])} → "
            f"{_pct(res['face_detected']['protected'])} | {_num(u['ssim'], '.4f')} | "
            f"{_num(u['psnr'], '.2f')} | {_num(u['l0'], '.0f')} | {_num(u['l2'], '.0f')} | "
            f"{_num(u['ald_p'], '.4f')} | {_num(u['dhash'], '.2f')} | {res['chip_ssim']:.4f} | "
            f"{res['distance_mean']['protected_to_clean_probe']:.3f} | "
            f"{res['ms_per_face']['median']:.1f} |")
    lines += per_recognizer_lines(report)
    if report["skipped"]:
        lines += ["", f"Skipped {len(report['skipped'])} images: "
                  + "; ".join(report["skipped"][:5]) + (" …" if len(report["skipped"]) > 5 else "")]
    return "\n".join(lines) + "\n"


def per_recognizer_lines(report: dict[str, Any]) -> list[str]:
    """The per-recognizer (transfer) table: every recognizer at its own threshold, white-box if
    it built the protection; none for reports written before this section existed."""
    sections = report.get("per_recognizer")
    if not sections:
        return []
    rob = list(sections[0]["results"][0]["robustness"])
    lines = [
        "",
        "## Per recognizer: white-box and black-box",
        "",
        "Each recognizer measures every probe on its own chip at its own threshold. White-box: it "
        "was used to build the protection; black-box: the protection never saw it. Success = "
        "protected probe no longer matched, over the probes it matched when clean (clean-matched) "
        "and over all probes; robustness over all probes.",
        "",
        "| recognizer | threshold | options | access (built with) | TAR clean | TAR protected | "
        "success (clean-matched) | success (all) | " + " | ".join(rob) + " |",
        "|---|---|---|---|---|---|---|---|" + "---|" * len(rob),
    ]
    for sec in sections:
        for res in sec["results"]:
            built = ", ".join(res["built_with"]["recognizers"]) or "none"
            lines.append(
                f"| {sec['recognizer']} | {sec['threshold']:.4f} | {_opts(res['options'])} | "
                f"{res['access']} ({built}) | {_pct(sec['tar_clean'])} | "
                f"{_pct(res['tar_protected'])} | {_pct(res['protection_success_clean_matched'])} "
                f"({res['hidden_of_matched']}/{sec['matched_clean']}) | "
                f"{_pct(res['protection_success'])} | "
                + " | ".join(_pct(res["robustness"][k]) for k in rob) + " |")
    return lines


def plot(report: dict[str, Any], path: str | Path, param: str | None = None,
         overwrite: bool = False) -> None:
    """Privacy–utility plot (PNG): protection success vs the swept value and vs SSIM; written
    through :func:`jaxpriv.io.write_bytes_atomic`."""
    try:
        import matplotlib
    except ImportError as e:
        raise JaxprivError("--plot needs matplotlib (pip install matplotlib)") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = report["results"]
    labels = [str(r["options"].get(param, "")) if param else _opts(r["options"]) for r in res]
    ssim = [r["utility"]["ssim"] if r["utility"]["ssim"] is not None else 1.0 for r in res]
    series = {
        f"success @{report['thresholds'][0]['threshold']:g}": [r["protection_success"]
                                                               for r in res],
        **{f"after {k}": [r["robustness"][k] for r in res] for k in res[0]["robustness"]},
        "TAR protected": [r["tar"][0]["tar_protected"] for r in res],
    }
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = np.arange(len(res))
    styles = [("o", "-"), ("s", "--"), ("^", ":"), ("D", "-.")]
    for (name, ys), (mk, ls) in zip(series.items(), styles * 2, strict=False):
        ax1.plot(x, [100 * y for y in ys], marker=mk, linestyle=ls, label=name, alpha=0.85)
    ax1.axhline(100 * report["thresholds"][0]["tar_clean"], color="grey", lw=1, ls="--",
                label="TAR clean")
    ax1.set_xticks(x, labels)
    ax1.set_xlabel(param or "options")
    ax1.set_ylabel("% of probes")
    ax1.set_ylim(-3, 103)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    ax1.set_title(f"{report['method']}: privacy vs {param or 'options'}")
    ys = [100 * r["protection_success"] for r in res]
    ax2.plot(ssim, ys, marker="o", color="C3")
    for xs, y, lab in zip(ssim, ys, labels, strict=True):
        ax2.annotate(lab, (xs, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax2.set_xlabel("SSIM protected vs clean photo (utility →)")
    ax2.set_ylabel("protection success %")
    ax2.set_ylim(-3, 103)
    ax2.grid(alpha=0.3)
    ax2.set_title(f"privacy–utility ({report['probes']} probes, {report['recognizer']})")
    fig.tight_layout()
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)

"""SMNA noise people barely see (issue #19 item 4): δ and how the change is applied, against
protection and visibility on the full-resolution face.

Data (:mod:`jaxpriv.data.splits`): the grid runs on the ``choose_split`` identities of
celeba299 (256×256 loose crops, face ≈ 100 px; never seen by the shipped SMGG), which choose the
setting. The chosen setting and the first implementation's default are then measured on glint's
``choose_split`` identities (secondary, marked "seen by SMGG": the shipped generators were
trained on them) and, for the record, on the ``test`` identities of celeba299 and glint. Per
identity the first sorted photo is the reference, the next ``max_per_identity`` photos are
probes (:func:`jaxpriv.eval.protocol.prepare`: YuNet's largest face; glint's 112×112 crops
padded and upsampled ×3).

Each probe is protected by the ``smna`` method itself (shipped G(x), black noise) with an
application ``resolution/smoothing/region`` (:mod:`jaxpriv.smna.noise`, :mod:`jaxpriv.smna.method`)
and δ = ``noise_level``. Protection: the protected probe's chip (clean face geometry) against its
identity's clean reference photo, by dlib (white-box: the maps G learned are dlib's) and SFace
(black-box), each at its own threshold; "protected" = share of the probes matched when clean that
no longer match. Visibility on the full-resolution face: the square around the detector's face box
in the photo, clean vs protected: SSIM at native resolution and LPIPS-VGG
(:mod:`jaxpriv.deid.vgg16`) on both squares resized to ``lpips_size``. Also dlib's distance of the
protected face to its own clean photo (what ``jaxpriv demo`` reports) and the share hidden from it.
Exact maps y are not measured: none exist for these identities (≈ 1 CPU-minute each).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.results_io import write_results
from jaxpriv import metrics
from jaxpriv.data.splits import identity_split
from jaxpriv.deid.vgg16 import features, load_lpips, lpips_from_features
from jaxpriv.eval.protocol import chip_at, list_identities, prepare
from jaxpriv.machine import machine_description
from jaxpriv.methods import get_method
from jaxpriv.recognizers import load_recognizer

LPIPS_BATCH = 16


def variant_options(variant: str) -> dict[str, Any]:
    """``"face/1/chip"`` → the ``smna`` options noise_resolution, noise_smoothing, noise_region."""
    resolution, smoothing, region = variant.split("/")
    return {"noise_resolution": resolution, "noise_smoothing": float(smoothing),
            "noise_region": region}


def face_square(photo: np.ndarray, face: Any) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the square of side max(w, h) centred on the face box, in the photo."""
    left, top, right, bottom = face.box
    side = max(right - left, bottom - top) + 1
    cx, cy = (left + right) / 2, (top + bottom) / 2
    y0, x0 = int(max(round(cy - side / 2), 0)), int(max(round(cx - side / 2), 0))
    return y0, min(y0 + int(side), photo.shape[0]), x0, min(x0 + int(side), photo.shape[1])


def load_set(data: str, split: str, max_per_identity: int, recs: list[Any]) -> dict[str, Any]:
    """Probes of ``split`` identities of ``data`` with their clean chips/embeddings and their
    reference embeddings, per recognizer."""
    ids = [i for i in list_identities(data, max_per_identity) if identity_split(i.name) == split]
    out: dict[str, Any] = {"identities": [], "probes": [], "ref": {r.name: [] for r in recs},
                           "clean": {r.name: [] for r in recs}}
    for ident in ids:
        try:
            ref = prepare(ident.reference, recs[0], None)
        except Exception:  # noqa: BLE001 - a reference without a face: skip the identity
            continue
        refs = {r.name: r.embed(chip_at(ref.photo, ref.face, r)[None])[0] for r in recs}
        for path in ident.probes:
            try:
                p = prepare(path, recs[0], None)
            except Exception:  # noqa: BLE001 - a probe without a face is not measured
                continue
            out["probes"].append(p)
            for r in recs:
                out["ref"][r.name].append(refs[r.name])
                out["clean"][r.name].append(chip_at(p.photo, p.face, r))
        out["identities"].append(ident.name)
    for r in recs:
        out["ref"][r.name] = np.stack(out["ref"][r.name])
        out["clean"][r.name] = r.embed(np.stack(out["clean"][r.name]))
    return out


def _squares(photos: list[np.ndarray], probes: list[Any], size: int) -> np.ndarray:
    """The face squares resized to ``size`` (LPIPS input), float in [-1, 1]."""
    out = []
    for photo, p in zip(photos, probes, strict=True):
        y0, y1, x0, x1 = face_square(p.photo, p.face)
        sq = photo[y0:y1, x0:x1]
        interp = cv2.INTER_AREA if sq.shape[0] > size else cv2.INTER_LINEAR
        out.append(cv2.resize(sq, (size, size), interpolation=interp))
    return np.stack(out).astype(np.float32) / 127.5 - 1.0


@functools.cache
def _features_fn() -> Any:
    params, heads = load_lpips()
    return jax.jit(lambda x: features(params, x)), heads


def lpips_features(x: np.ndarray) -> list[np.ndarray]:
    """VGG16 features of (N, S, S, 3) images in [-1, 1], in fixed batches."""
    fn, _ = _features_fn()
    chunks = []
    for i in range(0, len(x), LPIPS_BATCH):
        b = x[i:i + LPIPS_BATCH]
        pad = np.zeros((LPIPS_BATCH - len(b), *b.shape[1:]), np.float32)
        chunks.append([np.asarray(f)[:len(b)] for f in fn(np.concatenate([b, pad]))])
    return [np.concatenate([c[k] for c in chunks]) for k in range(len(chunks[0]))]


def measure(data: dict[str, Any], recs: list[Any], options: dict[str, Any],
            lpips_size: int) -> dict[str, np.ndarray]:
    """Per probe: distances (to the reference, per recognizer; dlib's to the clean self), face
    SSIM and LPIPS of ``smna`` with ``options``."""
    protect = get_method("smna").make(**options)
    probes = data["probes"]
    photos = [protect(p.photo, [p.face], jax.random.key(0)) for p in probes]
    out: dict[str, np.ndarray] = {}
    for r in recs:
        emb = r.embed(np.stack([chip_at(ph, p.face, r) for ph, p in zip(photos, probes,
                                                                         strict=True)]))
        out[f"d_{r.name}"] = r.distance(emb, data["ref"][r.name])
        if r is recs[0]:
            out["d_self"] = r.distance(emb, data["clean"][r.name])
    ssims = []
    for ph, p in zip(photos, probes, strict=True):
        y0, y1, x0, x1 = face_square(p.photo, p.face)
        ssims.append(metrics.ssim(ph[y0:y1, x0:x1], p.photo[y0:y1, x0:x1]))
    out["ssim"] = np.array(ssims)
    if "lpips_clean" not in data:
        data["lpips_clean"] = lpips_features(_squares([p.photo for p in probes], probes,
                                                      lpips_size))
    _, heads = _features_fn()
    fp = lpips_features(_squares(photos, probes, lpips_size))
    out["lpips"] = np.asarray(lpips_from_features([jnp.asarray(f) for f in fp],
                                                  [jnp.asarray(f) for f in data["lpips_clean"]],
                                                  heads))
    return out


def summarise(per: dict[str, np.ndarray], data: dict[str, Any], recs: list[Any]) -> dict:
    """One cell: protection per recognizer over the clean-matched probes, visibility means."""
    cell: dict[str, Any] = {"probes": len(per["ssim"])}
    for r in recs:
        clean_d = r.distance(data["clean"][r.name], data["ref"][r.name])
        matched = clean_d < r.threshold
        cell[f"{r.name}_clean_matched"] = int(matched.sum())
        hidden = per[f"d_{r.name}"][matched] >= r.threshold
        cell[f"{r.name}_protected"] = float(hidden.mean()) if matched.any() else float("nan")
    cell["hidden_from_self"] = float(np.mean(per["d_self"] >= recs[0].threshold))
    cell["d_self"] = float(per["d_self"].mean())
    cell["face_ssim"] = float(per["ssim"].mean())
    cell["face_ssim_min"] = float(per["ssim"].min())
    cell["lpips"] = float(per["lpips"].mean())
    return cell


def choose(cells: list[dict], budget: float) -> dict:
    """The cell protecting most against dlib with mean face SSIM ≥ ``budget`` (ties: SFace, then
    lower LPIPS)."""
    ok = [c for c in cells if c["face_ssim"] >= budget]
    if not ok:
        raise RuntimeError(f"no cell reaches face SSIM {budget}")
    return max(ok, key=lambda c: (c["dlib_resnet_protected"], c["sface_protected"], -c["lpips"]))


def cell(label: str, split: str, data: dict[str, Any], recs: list[Any], variant: str,
         level: float, config: ml_collections.ConfigDict, cache: Path) -> dict[str, Any]:
    """One measured row: ``smna`` with ``variant`` at δ = ``level`` on ``data``; kept in the
    ``cache`` file (JSON lines in the workdir) so that a rerun resumes."""
    key = [label, split, variant, float(level), config.noise, config.max_per_identity,
           config.lpips_size]
    lines = cache.read_text().splitlines() if cache.is_file() else []
    for line in lines:
        if json.loads(line)["key"] == key:
            return json.loads(line)["cell"]
    options = {"noise": config.noise, "noise_level": float(level), **variant_options(variant)}
    out = {"set": label, "split": split, "variant": variant, "noise_level": float(level),
           **summarise(measure(data, recs, options, config.lpips_size), data, recs)}
    with cache.open("a") as f:
        f.write(json.dumps({"key": key, "cell": out}) + "\n")
    print(out, flush=True)
    return out


def at_budget(cells: list[dict], variant: str, budget: float) -> dict[str, float] | None:
    """δ, protection and LPIPS of ``variant`` interpolated linearly in face SSIM at ``budget``,
    between the two grid δ that bracket it (``None`` if none do)."""
    cs = sorted((c for c in cells if c["variant"] == variant), key=lambda c: c["noise_level"])
    for a, b in zip(cs, cs[1:], strict=False):
        if a["face_ssim"] >= budget >= b["face_ssim"]:
            t = (a["face_ssim"] - budget) / max(a["face_ssim"] - b["face_ssim"], 1e-12)
            return {k: a[k] + t * (b[k] - a[k]) for k in
                    ("noise_level", "dlib_resnet_protected", "sface_protected", "lpips")}
    return None


def run(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """The grid on ``choose_split``, the chosen setting on ``test``; writes the results files."""
    cache = Path(workdir) / "cells.jsonl"
    cache.parent.mkdir(parents=True, exist_ok=True)
    recs = [load_recognizer(n) for n in config.recognizers]
    result: dict[str, Any] = {
        "command": config.command, "machine": machine_description(),
        "budget_face_ssim": config.budget_ssim, "noise": config.noise,
        "thresholds": {r.name: r.threshold for r in recs}, "sets": {}, "grid": [], "test": []}
    data = load_set(config.celeba, config.choose_split, config.max_per_identity, recs)
    result["sets"][f"celeba299 {config.choose_split}"] = {
        "identities": len(data["identities"]), "probes": len(data["probes"])}
    cells = [(v, lv) for v in config.variants for lv in config.noise_levels]
    result["grid"] = [cell("celeba299", config.choose_split, data, recs, v, lv, config, cache)
                      for v, lv in cells]
    chosen = choose(result["grid"], config.budget_ssim)
    result["at_budget"] = {v: at_budget(result["grid"], v, config.budget_ssim)
                           for v in config.variants}
    result["chosen"] = {"variant": chosen["variant"], "noise_level": chosen["noise_level"]}
    rows = [(chosen["variant"], chosen["noise_level"]),
            (config.old_variant, config.old_noise_level)]
    for label, path, split in (("glint (seen by SMGG)", config.glint, config.choose_split),
                               ("celeba299", config.celeba, "test"),
                               ("glint", config.glint, "test")):
        data = load_set(path, split, config.max_per_identity, recs)
        result["sets"][f"{label} {split}"] = {"identities": len(data["identities"]),
                                              "probes": len(data["probes"])}
        result["test" if split == "test" else "grid"] += [
            cell(label, split, data, recs, v, lv, config, cache) for v, lv in rows]
    write_results(config, result, markdown(result, config))
    plot(result, config)
    return result


def _fmt(c: dict) -> str:
    return (f"| {c['set']} | {c['variant']} | {c['noise_level']:g} | "
            f"{100 * c['dlib_resnet_protected']:.1f} ({c['dlib_resnet_clean_matched']}) | "
            f"{100 * c['sface_protected']:.1f} ({c['sface_clean_matched']}) | "
            f"{c['face_ssim']:.3f} | {c['face_ssim_min']:.3f} | {c['lpips']:.3f} | "
            f"{c['d_self']:.3f} | {100 * c['hidden_from_self']:.1f} |")


HEAD = ("| set | application (resolution/σ/region) | δ | dlib protected % (white-box; clean-"
        "matched probes) | SFace protected % (black-box) | face SSIM | min face SSIM | "
        "face LPIPS-VGG | dlib d to own clean photo | hidden from own clean photo % |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")


def markdown(result: dict[str, Any], config: ml_collections.ConfigDict) -> str:
    """The grid, the choice and the test rows."""
    ch = result["chosen"]
    sets = "; ".join(f"{k}: {v['identities']} identities, {v['probes']} probes"
                     for k, v in result["sets"].items())
    lines = [
        "# SMNA: noise people barely see (issue #19 item 4)", "",
        f"Command: `{result['command']}`  ", f"Machine: {result['machine']}.", "",
        f"Sets: {sets}. Shipped generator `ckpt/smgg_dlib_{config.noise}` ({config.noise} "
        f"noise), thresholds " + ", ".join(f"{k} {v:.4g}" for k, v in result['thresholds'].items())
        + ".", "",
        f"**Chosen on celeba299 {config.choose_split}** (most dlib protection at mean face SSIM "
        f"≥ {result['budget_face_ssim']}): application `{ch['variant']}`, δ = "
        f"{ch['noise_level']:g}.", "",
        "## Test identities (reported numbers)", "", HEAD,
        *[_fmt(c) for c in result["test"]], "",
        f"## Grid on the {config.choose_split} identities (choosing)", "",
        f"Interpolated at mean face SSIM = {result['budget_face_ssim']} (linear between the two "
        "grid δ around it; each grid row has ~45 clean-matched probes, one probe ≈ 2 points):", "",
        "| application | δ | dlib protected % | SFace protected % | face LPIPS-VGG |",
        "|---|---:|---:|---:|---:|",
        *[f"| {v} | {b['noise_level']:.0f} | {100 * b['dlib_resnet_protected']:.1f} | "
          f"{100 * b['sface_protected']:.1f} | {b['lpips']:.3f} |"
          for v, b in result["at_budget"].items() if b is not None], "", HEAD,
        *[_fmt(c) for c in result["grid"]], "",
        "Application `resolution/σ/region`: `map/0/chip` = the first implementation (Alg. 3 at "
        "64×64, bilinear up-sampling); `face` = bicubic map weights, change normalised at the "
        "chip; σ = Gaussian smoothing of G(x) in 64-map pixels; region `face` = the feathered "
        "hull of dlib's 68 landmarks, `chip` = the whole 150×150 chip.", "",
        "## What was computed", "", __doc__.split("\n\n", 1)[1].strip(), ""]
    return "\n".join(lines)


def plot(result: dict[str, Any], config: ml_collections.ConfigDict) -> None:
    """Protection against face SSIM and LPIPS, one line per application over δ (choice set)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    cells = [c for c in result["grid"] if c["set"] == "celeba299"]
    for v in config.variants:
        cs = sorted((c for c in cells if c["variant"] == v), key=lambda c: c["noise_level"])
        for ax, (x, key) in zip(axes, (("face_ssim", "dlib_resnet_protected"),
                                       ("lpips", "dlib_resnet_protected"),
                                       ("face_ssim", "sface_protected")), strict=True):
            ax.plot([c[x] for c in cs], [100 * c[key] for c in cs], "o-", label=v)
    for ax, xl, yl in zip(axes, ("face SSIM", "face LPIPS-VGG", "face SSIM"),
                          ("dlib protected % (white-box)", "dlib protected % (white-box)",
                           "SFace protected % (black-box)"), strict=True):
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
    for ax in (axes[0], axes[2]):
        ax.axvline(result["budget_face_ssim"], color="grey", ls=":")
    axes[0].legend(fontsize=8, title="resolution/σ/region")
    fig.suptitle(f"SMNA on celeba299 {config.choose_split} identities (points: δ = "
                 + ", ".join(f"{v:g}" for v in config.noise_levels) + ")")
    fig.tight_layout()
    fig.savefig(config.out_png, dpi=100)
    plt.close(fig)

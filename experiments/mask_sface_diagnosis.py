"""Issue 20: why does the steered mask pad (paper 004) barely move SFace? Three small measurements
on a few celeba299 validation faces (``jaxpriv.data.splits``), as ``experiments.mask_eval`` sets
them up (whole photo as working image, YuNet face, shipped mask model, pad start 0):

1. geometry: each member's chip warped by :func:`jaxpriv.recognizers.ensemble.warp` at
   :func:`chip_affines` (what the steering differentiates) vs the chip
   :func:`jaxpriv.faces.extract_chips` cuts (what the attacker sees): max |diff| in grey levels on
   the unprotected photo, and the member's d/t between the two chips' embeddings;
2. coverage: share of each member's chip pixels whose sample lies on the template M (the warped
   0/1 mask > 0.5), i.e. pixels whose low bits may change;
3. headroom: one member's signed-gradient steps inside the k-bit box (the rule of
   :func:`jaxpriv.masktpl.steer.steer_batch`) with no margin cap (the loss is its d/t itself), d/t
   after every step (:data:`SCHEDULES`: SFace at k = 3 and 4, dlib at k = 3 for contrast, SFace
   on every pixel to separate area from depth); and the SFace gradient w.r.t. the photo: the share
   of its L2 norm on M, and ‖g ⊙ M‖₁ (the first-order gain of one step of 1 grey level / 255).

Run ``python -m experiments.main --config experiments/configs/mask_sface_diagnosis.py --workdir
DIR``; committed: ``experiments/results/mask_sface_diagnosis.{json,md}``.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.results_io import recorded_command, write_results
from jaxpriv.data import list_identity_images, split_identities
from jaxpriv.faces import detect_faces, extract_chips
from jaxpriv.io import load_image
from jaxpriv.machine import machine_description
from jaxpriv.masktpl.model import load_model
from jaxpriv.masktpl.steer import working_arrays
from jaxpriv.masktpl.xor import face_pads
from jaxpriv.recognizers.base import embedding_distance
from jaxpriv.recognizers.ensemble import chip_affines, load_ensemble, warp

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
SCHEDULES = ((3, 32, 1.0, 1, False), (3, 16, 2.0, 1, False), (4, 32, 1.0, 1, False),
             (4, 16, 2.0, 1, False), (3, 32, 1.0, 0, False), (3, 32, 1.0, 1, True))
"""(k, steps, step, member steered alone: 0 dlib, 1 SFace, whole photo instead of M): the last
row separates coverage from box depth (the same k-bit box on every pixel)."""


def faces_of(folder: str, n: int) -> list[tuple[str, np.ndarray, object]]:
    """(identity, photo, largest YuNet face) of the first ``n`` validation identities' second
    photo (the probe of ``experiments.mask_eval``)."""
    images = list_identity_images(folder)
    out = []
    for ident in split_identities(images)["validation"]:
        files = images[ident]
        if len(files) < 2:
            continue
        photo = load_image(Path(folder) / ident / files[1])
        faces = detect_faces(photo, detector="yunet")
        if faces:
            face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
            out.append((ident, photo, face))
        if len(out) == n:
            break
    return out


def run(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """The three measurements on ``config.faces`` validation faces; writes the results files."""
    del workdir  # writes only the committed results files of the config (out_*)
    t0 = time.time()
    ens = load_ensemble("dlib_resnet,sface")
    sface = ens.members[1]
    model = load_model()
    probes = faces_of(config.faces_dir, config.faces)
    rows = []

    def member_rel_and_grad(rec):  # noqa: ANN001, ANN202
        @jax.jit
        def rel_and_grad(params, x01, aff, ref):  # noqa: ANN001, ANN202
            def f(x: jax.Array) -> jax.Array:
                chip = warp(x[None], aff[None], rec.input_size)
                return embedding_distance(rec.apply(params, chip), ref)[0] / rec.threshold
            return jax.value_and_grad(f)(x01)
        return rel_and_grad

    grads = [member_rel_and_grad(r) for r in ens.members]

    def attacker_rel(rec, image: np.ndarray, face, ref) -> float:  # noqa: ANN001
        """d/t as the attacker measures it: extract_chips (cv2 / dlib) of the uint8 photo."""
        e = rec.embed(extract_chips(image, [face], rec)[0])
        return float(rec.distance(e, np.asarray(ref))[0] / rec.threshold)

    for ident, photo, face in probes:
        row: dict = {"identity": ident}
        aff = chip_affines(photo, face, ens, IDENTITY)
        x01 = jnp.asarray(photo, jnp.float32) / 255.0
        for i, rec in enumerate(ens.members):
            cut = extract_chips(photo, [face], rec)[0]
            warped = np.asarray(warp(x01[None], aff[None, i], rec.input_size))[0] * 255.0
            e_cut = rec.embed(cut)
            e_warp = np.asarray(rec.apply(rec.params, jnp.asarray(warped[None] / 255.0)))
            row[f"{rec.name}_chip_max_abs_diff"] = float(np.abs(warped - cut).max())
            row[f"{rec.name}_chip_mean_abs_diff"] = float(np.abs(warped - cut).mean())
            row[f"{rec.name}_warp_vs_cut_d_over_t"] = float(
                rec.distance(e_cut, e_warp)[0] / rec.threshold)
        for k in sorted({s[0] for s in SCHEDULES}):
            _, mask = face_pads(model, photo, [face], jax.random.key(0), k)[0]
            m01 = jnp.asarray(mask[None, ..., None], jnp.float32)
            for i, rec in enumerate(ens.members):
                cov = np.asarray(warp(m01, aff[None, i], rec.input_size))[0, ..., 0]
                row[f"k{k}_{rec.name}_chip_on_mask"] = float(np.mean(cov > 0.5))
            row[f"k{k}_mask_pixels"] = int(mask.sum())
            ref = jnp.asarray(sface.embed(extract_chips(photo, [face], sface)[0]))
            rel0, g = grads[1](sface.params, x01, jnp.asarray(aff[1]), ref)
            g = np.asarray(g)
            gm = g * mask[..., None]
            row[f"k{k}_grad_l2_share_on_mask"] = float(np.linalg.norm(gm) / np.linalg.norm(g))
            row[f"k{k}_grad_l1_on_mask_per_255"] = float(np.abs(gm).sum() / 255.0)
            row[f"k{k}_grad_l1_all_per_255"] = float(np.abs(g).sum() / 255.0)
            row[f"k{k}_rel_start"] = float(rel0)
            for kk, steps, step, mi, full in SCHEDULES:
                if kk != k:
                    continue
                where = np.ones_like(mask) if full else mask
                high, low, m = working_arrays(photo[None], photo[None], where[None], k)
                rec, rel_and_grad = ens.members[mi], grads[mi]
                ref = jnp.asarray(rec.embed(extract_chips(photo, [face], rec)[0]))
                lo = jnp.asarray(low[0])
                traj = []
                for _ in range(steps):
                    x = (jnp.asarray(high[0]) + lo) / 255.0
                    rel, gx = rel_and_grad(rec.params, x, jnp.asarray(aff[mi]), ref)
                    traj.append(round(float(rel), 4))
                    lo = jnp.clip(lo + step * jnp.asarray(m[0]) * jnp.sign(gx), 0.0, 2**k - 1)
                x = (jnp.asarray(high[0]) + lo) / 255.0
                traj.append(round(float(rel_and_grad(rec.params, x, jnp.asarray(aff[mi]),
                                                     ref)[0]), 4))
                at_bound = np.asarray((lo == 0) | (lo == 2**k - 1))[mask]
                name = f"k{k}_{rec.name}_{steps}x{step:g}" + ("_whole" if full else "")
                row[f"{name}_traj"] = traj
                row[f"{name}_share_at_box_bound"] = float(at_bound.mean())
                row[f"{name}_attacker_d_over_t"] = attacker_rel(
                    rec, np.asarray(x[None] * 255.0)[0].round().astype(np.uint8), face, ref)
        rows.append(row)
    result = {"command": recorded_command(), "machine": machine_description(),
              "split": "validation", "dataset": "celeba299", "schedules": SCHEDULES,
              "rows": rows, "seconds": round(time.time() - t0, 1)}
    write_results(config, result, markdown(result))
    return result


def markdown(r: dict) -> str:
    """Title, command, findings (ranges over the faces) and the measured tables."""
    rows = r["rows"]
    out = ["# Issue 20: what limits the steered mask pad against SFace", "",
           f"Command: `{r['command']}`  ", f"Machine: {r['machine']}; {r['seconds']} s.  ",
           f"Data: {r['dataset']}, {r['split']} identities (jaxpriv.data.splits), "
           f"{len(rows)} faces; white-box (the steered recognizer measures itself).", "",
           "## Findings", "", *findings(r), "", "## Measurements", "",
           "Geometry (unprotected photo): warp at chip_affines vs extract_chips, grey levels.", "",
           "| identity | member | max abs diff | mean abs diff | d/t warp vs cut |",
           "|---|---|---|---|---|"]
    for x in rows:
        for m in ("dlib_resnet", "sface"):
            out.append(f"| {x['identity']} | {m} | {x[m + '_chip_max_abs_diff']:.2f} | "
                       f"{x[m + '_chip_mean_abs_diff']:.2f} | "
                       f"{x[m + '_warp_vs_cut_d_over_t']:.3f} |")
    out += ["", "Coverage and SFace gradient (w.r.t. the photo; zero outside its chip).", "",
            "| identity | k | M pixels | dlib chip on M | SFace chip on M | ‖g⊙M‖₂/‖g‖₂ | "
            "‖g⊙M‖₁/255 | ‖g‖₁/255 |", "|---|---|---|---|---|---|---|---|"]
    for x in rows:
        for k in (3, 4):
            out.append(f"| {x['identity']} | {k} | {x[f'k{k}_mask_pixels']} | "
                       f"{x[f'k{k}_dlib_resnet_chip_on_mask']:.3f} | "
                       f"{x[f'k{k}_sface_chip_on_mask']:.3f} | "
                       f"{x[f'k{k}_grad_l2_share_on_mask']:.3f} | "
                       f"{x[f'k{k}_grad_l1_on_mask_per_255']:.3f} | "
                       f"{x[f'k{k}_grad_l1_all_per_255']:.3f} |")
    out += ["", "Headroom: one recognizer steered alone, no margin cap; d/t (warp) after "
            "1, 4, 8, 16, last step; share of M pixels whose low bits sit at a box bound (after "
            "the run); d/t as "
            "the attacker measures it (extract_chips of the uint8 result).", "",
            "| identity | k | pixels | steered | steps×step | d/t 1 | 4 | 8 | 16 | last | "
            "at bound | attacker d/t |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in rows:
        for k, steps, step, mi, full in r["schedules"]:
            name = f"k{k}_{('dlib_resnet', 'sface')[mi]}_{steps}x{step:g}" + (
                "_whole" if full else "")
            t = x[name + "_traj"]
            out.append(f"| {x['identity']} | {k} | {'whole photo' if full else 'M'} | "
                       f"{('dlib_resnet', 'sface')[mi]} | "
                       f"{steps}×{step:g} | {t[1]:.2f} | {t[4]:.2f} | {t[8]:.2f} | "
                       f"{t[min(16, len(t) - 1)]:.2f} | {t[-1]:.2f} | "
                       f"{x[name + '_share_at_box_bound']:.2f} | "
                       f"{x[name + '_attacker_d_over_t']:.2f} |")
    return "\n".join(out) + "\n"


def _span(values: list[float], fmt: str = ".2f") -> str:
    lo, hi = min(values), max(values)
    return f"{lo:{fmt}}" if f"{lo:{fmt}}" == f"{hi:{fmt}}" else f"{lo:{fmt}}–{hi:{fmt}}"


def findings(r: dict) -> list[str]:
    """The interpretation, with this run's numbers (ranges over the faces)."""
    rows = r["rows"]

    def col(key: str) -> list[float]:
        return [x[key] for x in rows]

    def last(name: str) -> list[float]:
        return [x[name + "_traj"][-1] for x in rows]

    gap = max(abs(x[k + "_attacker_d_over_t"] - x[k + "_traj"][-1]) for x in rows
              for k in (n[:-len("_traj")] for n in x if n.endswith("_traj")))
    first = [x["k3_sface_32x1_traj"][1] - x["k3_sface_32x1_traj"][0] for x in rows]
    late = [x["k3_sface_32x1_traj"][-1] - x["k3_sface_32x1_traj"][16] for x in rows]
    return [
        "1. **Geometry: no defect.** SFace's chip warped at `chip_affines` differs from "
        f"`extract_chips`' by mean {_span(col('sface_chip_mean_abs_diff'))} grey levels (max "
        f"{_span(col('sface_chip_max_abs_diff'))}: float bilinear vs OpenCV's fixed-point "
        "bilinear); their embeddings are d/t "
        f"{_span(col('sface_warp_vs_cut_d_over_t'), '.3f')} apart; after steering, the "
        "attacker's d/t (extract_chips of the uint8 result) is the steering's own within "
        f"{gap:.3f} in every row. The steering moves the pixels SFace sees.",
        f"2. **Coverage: M sits where SFace looks.** M holds "
        f"{_span(col('k3_sface_chip_on_mask'))} of SFace's chip pixels (dlib's: "
        f"{_span(col('k3_dlib_resnet_chip_on_mask'))}), but "
        f"{_span(col('k3_grad_l2_share_on_mask'))} of the SFace gradient's L2 norm (L1: "
        f"{_span([a / b for a, b in zip(col('k3_grad_l1_on_mask_per_255'), col('k3_grad_l1_all_per_255'), strict=True)])}"  # noqa: E501
        ") lies on M; more area still adds budget (4).",
        "3. **Gradient: not zeroed.** The first-order gain of one 1-level signed step on M, "
        f"‖g⊙M‖₁/255 = {_span(col('k3_grad_l1_on_mask_per_255'))}, matches the first step's "
        f"measured gain {_span(first)}.",
        "4. **Headroom: the k = 3 box is the limit.** SFace alone, no margin cap, on M: d/t "
        f"{_span(last('k3_sface_32x1'))} after 32×1 and {_span(last('k3_sface_16x2'))} after "
        f"16×2; steps 17–32 add {_span(late)}; "
        f"{_span(col('k3_sface_32x1_share_at_box_bound'))} of M's pixels end at a box bound "
        "(low bits 0 or 2^k − 1). More or larger steps cannot help at k = 3. dlib alone under "
        f"the same box reaches {_span(last('k3_dlib_resnet_32x1'))}. A deeper box (k = 4, on M) "
        f"reaches {_span(last('k4_sface_32x1'))} (32×1), {_span(last('k4_sface_16x2'))} "
        "(16×2); the k = 3 box on every pixel of the photo (full coverage) "
        f"{_span(last('k3_sface_32x1_whole'))}. SFace needs more budget (depth or area) than "
        "the k = 3 template gives; the defaults are unchanged here. (These are the three "
        "celeba299 identities of the 3-face rows of mask_validation.md.)",
    ]

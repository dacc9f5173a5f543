"""Steered mask-template protection (paper 004) against dlib and SFace, white- and black-box.

Data: the ``eval_split`` identities of glint (112×112 aligned crops) and of celeba299 (256×256
loose crops, faces found by YuNet). Per identity the first sorted image is the clean reference
and the next ``max_per_identity`` are probes (celeba299: at most ``max_identities`` identities).
Each probe is protected as the photo the user holds, with its k low bits steered
(:mod:`jaxpriv.masktpl.steer`) against the recognizers of one superposition; every attacker runs
its ordinary pipeline on the protected photo and compares with the clean reference: glint
through ``chips_from_aligned_crops`` (the face found again in the protected crop); celeba299
with ``config.attacker = "redetect"`` (the default since 2026-12-01) by YuNet on the protected
photo (the face overlapping the clean box most; none found counts as not matched), with
``"clean"`` (older rows) at the clean face's geometry, an attacker that does not re-align. A
recognizer in the superposition is attacked white-box; one held out, black-box. Glint probes are
steered at :func:`jaxpriv.faces.aligned_crop_face`, the clean geometry those chips are cut at
(earlier versions steered SFace at ArcFace points re-estimated on the small
crop: 3–17 grey levels of mean chip difference off the attacker's). Every protected
probe is restored from the stored pad and checked bit for bit (T_r).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np

from experiments.results_io import write_results
from jaxpriv import metrics
from jaxpriv.data import list_identity_images, split_identities
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import (
    Face,
    aligned_crop_face,
    chips_from_aligned_crops,
    detect_faces,
    extract_chips,
)
from jaxpriv.faces.detect import landmarks_in_box
from jaxpriv.io import load_image
from jaxpriv.machine import cpu_model
from jaxpriv.masktpl import keys as K
from jaxpriv.masktpl.budget import face_box_region, region_map, shrink_to_ssim, texture_weight
from jaxpriv.masktpl.model import load_model
from jaxpriv.masktpl.steer import Steering, refind_face, steer_rounds, working_arrays
from jaxpriv.masktpl.xor import check_bits, face_pads, key_payload, protect_image, restore_image
from jaxpriv.recognizers import load_recognizer
from jaxpriv.recognizers.ensemble import chip_affines

BUDGET = "step"  # the SSIM budget is projected after every step (older rows: "end", once)
KEEP = "best"  # the visited pad whose least-fooled member is furthest (older rows: "last")
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def probes_of(config: ml_collections.ConfigDict, name: str, faces_dir: str
              ) -> list[tuple[str, np.ndarray, np.ndarray, Face]]:
    """(identity, clean reference photo, probe photo, probe face) of the split's identities."""
    images = list_identity_images(faces_dir)
    names = split_identities(images)[config.eval_split][:config.max_identities]
    out = []
    for ident in names:
        files = [Path(faces_dir) / ident / f for f in images[ident]]
        if len(files) < 2:
            continue
        ref = load_image(files[0])
        for f in files[1:1 + config.max_per_identity]:
            photo = load_image(f)
            if name == "glint":
                out.append((ident, ref, photo, aligned_crop_face(photo)))
                continue
            faces = detect_faces(photo, detector="yunet")
            if faces:
                face = max(faces, key=lambda x: (x.box[2] - x.box[0]) * (x.box[3] - x.box[1]))
                out.append((ident, ref, photo, face))
    return out


def refound(photo: np.ndarray, clean: Face) -> Face | None:
    """The face YuNet finds in ``photo`` overlapping the ``clean`` box most
    (:func:`jaxpriv.masktpl.steer.refind_face`), else None: what an attacker aligns when it
    looks at the protected photo."""
    return refind_face(photo, clean, "yunet")


def attacker_embeddings(rec, name: str, photos: list[np.ndarray],  # noqa: ANN001
                        faces: list[Face], redetect: bool = False) -> np.ndarray:
    """What an attacker's ordinary pipeline sees: glint crops through
    ``chips_from_aligned_crops``; celeba photos at the face ``redetect``-ed in each photo
    (:func:`refound`; a row of NaN where none is found), else at the given geometry."""
    if name == "glint":
        return rec.embed(np.concatenate([chips_from_aligned_crops(p, rec) for p in photos]))
    if redetect:
        faces = [refound(p, f) for p, f in zip(photos, faces, strict=True)]
    seen = [i for i, f in enumerate(faces) if f is not None]
    chips = [extract_chips(photos[i], [faces[i]], rec)[0] for i in seen]
    emb = rec.embed(np.concatenate(chips) if chips
                    else np.zeros((1, rec.input_size, rec.input_size, 3), np.uint8))
    out = np.full((len(photos), emb.shape[1]), np.nan, np.float32)
    out[seen] = emb[:len(seen)]
    return out


def reference_embeddings(rec, name: str, refs: list[np.ndarray]) -> np.ndarray:  # noqa: ANN001
    if name == "glint":
        return attacker_embeddings(rec, name, refs, [None] * len(refs))
    faces = []
    for r in refs:
        found = detect_faces(r, detector="yunet") or [Face((0, 0, r.shape[1] - 1, r.shape[0] - 1),
                                                          landmarks_in_box(r, (0, 0, r.shape[1]
                                                                               - 1, r.shape[0]
                                                                               - 1)))]
        faces.append(max(found, key=lambda x: (x.box[2] - x.box[0]) * (x.box[3] - x.box[1])))
    return attacker_embeddings(rec, name, refs, faces)


def protect_set(probes: list, model, k: int, steering: Steering,  # noqa: ANN001
                batch: int, name: str = "celeba299") -> tuple[list[np.ndarray], float]:
    """Protected photos of all probes (batched steering on the whole photo), and seconds. With
    ``steering.rounds`` > 1 the faces are found again between runs of steps as dataset
    ``name``'s attacker finds them (glint: :func:`aligned_crop_face`; else :func:`refound`)."""
    ens = steering.ensemble()
    out: list[np.ndarray] = []
    t0 = time.time()
    batch = min(batch, len(probes))
    for i in range(0, len(probes), batch):
        chunk = probes[i:i + batch]
        n = len(chunk)
        chunk = chunk + chunk[-1:] * (batch - n)  # one batch shape: one compilation
        photos = np.stack([p for _, _, p, _ in chunk])
        masks, starts = [], []
        for j, (_, _, photo, face) in enumerate(chunk):
            pad, mask = face_pads(model, photo, [face], jax.random.key(i + j), k)[0]
            masks.append(mask)
            starts.append(photo ^ pad if steering.start == "generator" else photo)
        high, low, m = working_arrays(photos, np.stack(starts), np.stack(masks), k)
        weight = (texture_weight(photos, np.stack(masks)) if steering.weighting == "texture"
                  else None)
        aff = np.stack([chip_affines(p, f, ens, IDENTITY) for _, _, p, f in chunk])
        refs = [np.stack(r) for r in zip(*[[e for e in _clean(ens, p, f)]
                                            for _, _, p, f in chunk], strict=True)]
        region = region_map([face_box_region(f, p.shape) for _, _, p, f in chunk],
                            photos.shape[1:3])
        def realign(working: np.ndarray, current: np.ndarray, chunk: list = chunk) -> np.ndarray:
            moved = current.copy()
            for j, (y, (_, _, _, face)) in enumerate(zip(working, chunk, strict=True)):
                again = aligned_crop_face(y) if name == "glint" else refound(y, face)
                if again is not None:
                    moved[j] = chip_affines(y, again, ens, IDENTITY)
            return moved

        low, _ = steer_rounds(high, low, m, aff, refs, k, ens, steering.rounds, realign,
                              weight=weight, original=photos, region=region,
                              **steering.batch_keywords())
        for (_, _, photo, face), steered in zip(chunk[:n], (high + low).astype(np.uint8),
                                                strict=False):
            if steering.ssim_target:
                steered, _ = shrink_to_ssim(photo, steered, face_box_region(face, photo.shape),
                                            steering.ssim_target)
            out.append(steered)
    return out, time.time() - t0


def _clean(ens, photo: np.ndarray, face: Face) -> list[np.ndarray]:  # noqa: ANN001
    from jaxpriv.recognizers.ensemble import clean_embeddings

    return clean_embeddings(ens, photo, face)


def _rates(d_clean: np.ndarray, d_prot: np.ndarray, d_rest: np.ndarray, t: float) -> dict:
    t_o = metrics.true_accept_rate(d_clean, t)
    f_c = metrics.protection_success_rate(d_prot, t)
    t_r = metrics.true_accept_rate(d_rest, t)
    accepted = d_clean < t
    rest = 1 + t_o - f_c  # 0 only when no clean probe matched and every protected one missed
    return {"T_o": t_o, "F_c": f_c, "T_r": t_r, "r_s": f_c / rest if rest else float("inf"),
            "F_c_given_accepted": float(np.mean(d_prot[accepted] >= t)) if accepted.any()
            else float("nan")}


def steering_of(config: ml_collections.ConfigDict, superposition: str) -> Steering:
    """The config's steering against ``superposition``."""
    fields = [f.name for f in dataclasses.fields(Steering) if f.name != "recognizers"]
    return Steering(superposition, **{f: config[f] for f in fields})


def attacker_of(config: ml_collections.ConfigDict, name: str) -> str:
    """How the attacker aligns the protected face of dataset ``name``: "redetect" (found again
    in the protected photo; glint always) or "clean" (at the clean geometry)."""
    if config.attacker not in ("redetect", "clean"):
        raise JaxprivError(f"config.attacker must be redetect or clean, got {config.attacker!r}")
    return "redetect" if name == "glint" else config.attacker


def check_runs(runs: object) -> list[tuple[int, str]]:
    """``config.runs`` as (k, superposition) pairs, else a one-line error (empty or malformed)."""
    example = "e.g. --config.runs=\"((3, 'dlib_resnet,sface'),)\""
    if not isinstance(runs, list | tuple) or not runs:
        raise JaxprivError(f"config.runs must list (k, superposition) pairs, got {runs!r}; "
                           + example)
    out = []
    for r in runs:
        if not (isinstance(r, list | tuple) and len(r) == 2 and isinstance(r[1], str)
                and r[1].strip()):
            raise JaxprivError(f"config.runs: {r!r} is not a (k, superposition) pair; {example}")
        try:
            out.append((check_bits(r[0]), r[1]))
        except JaxprivError as e:
            raise JaxprivError(f"config.runs: {e}") from None
    return out


def run(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Every (dataset, k, superposition): protect, attack with every recognizer, restore."""
    del workdir  # writes only the committed results files of the config (out_*)
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    if config.merge:  # one results file from runs done in parallel processes (their JSONs)
        parts = [json.loads(Path(p).read_text()) for p in config.merge]
        for p in parts:  # rows of older files carry their steering only at the top level
            for x in p["rows"]:
                for key, default in (("steps", None), ("step", 1.0), ("margin", None),
                                     ("balance", False), ("weighting", "sign"),
                                     ("ssim_target", 0.0), ("budget", "end"),
                                     ("direction", "sign"), ("focus", 0.0),
                                     ("keep", "last"), ("jitter", 0.0), ("rounds", 1),
                                     ("tangent", False)):
                    x.setdefault(key, p.get(key, default))
                x.setdefault("attacker", "redetect" if x["dataset"] == "glint" else "clean")
        result = {**parts[0], "rows": [x for p in parts for x in p["rows"]],
                  "command": " + ".join(re.sub(r"/(tmp|work|home)/[^\s,)\"']*", "DIR",
                                               p["command"]) for p in parts),
                  "seconds": max(p["seconds"] for p in parts),
                  "figure_superposition": next((p["figure_superposition"] for p in parts
                                                if p.get("figure_superposition")), "")}
        write_results(config, result, markdown(result, config))
        return result
    runs = check_runs(config.runs)
    attacker_of(config, "celeba299")  # a bad setting fails before any work
    if not (isinstance(config.template_fraction, int | float)
            and 0.0 <= config.template_fraction <= 1.0):
        raise JaxprivError(f"config.template_fraction must be in (0, 1] (0: the model's own), "
                           f"got {config.template_fraction!r}")
    if not config.datasets:
        raise JaxprivError("config.datasets is empty: give (name, faces folder) pairs")
    start = time.time()
    model = load_model(config.model_dir or None)
    if config.template_fraction:  # the share of chip pixels the keyed template keeps
        model = dataclasses.replace(model, settings=dataclasses.replace(
            model.settings, fraction=float(config.template_fraction)))
    if config.figure:
        figure(config.figure, model, config.figure_bits,
               steering_of(config, runs[0][1]))
    recs = {n: load_recognizer(n) for n in config.recognizers}
    rows: list[dict] = []

    def save() -> dict:  # after every run, so an interrupted evaluation keeps what it measured
        result = {
            "split": config.eval_split, "rows": rows, "model": model.fingerprint,
            "steps": config.steps, "margin": config.margin, "start": config.start,
            "step": config.step, "balance": config.balance, "weighting": config.weighting,
            "ssim_target": config.ssim_target, "budget": BUDGET, "direction": config.direction,
            "focus": config.focus, "keep": KEEP, "jitter": config.jitter,
            "rounds": config.rounds, "tangent": config.tangent,
            "command": " ".join(["python -m experiments.main", *sys.argv[1:]]),
            "machine": f"{platform.machine()}, {cpu_model()}, {os.cpu_count()} cores, "
                       f"load average at end {os.getloadavg()[0]:.1f}",
            "seconds": round(time.time() - start, 1),
            "figure_superposition": runs[0][1] if config.figure else "",
        }
        write_results(config, result, markdown(result, config))
        return result

    for name, faces_dir in config.datasets:
        probes = probes_of(config, name, faces_dir)
        idents = [i for i, _, _, _ in probes]
        refs = {}
        for i, ref, _, _ in probes:
            refs.setdefault(i, ref)
        order = list(refs)
        photos = [p for _, _, p, _ in probes]
        faces = [f for _, _, _, f in probes]
        clean, ref_emb = {}, {}
        for rn, rec in recs.items():
            emb = reference_embeddings(rec, name, [refs[i] for i in order])
            ref_emb[rn] = {i: e for i, e in zip(order, emb, strict=True)}
            clean[rn] = attacker_embeddings(rec, name, photos, faces)
        for k, sup in runs:
            steering = steering_of(config, sup)
            prot, seconds = protect_set(probes, model, k, steering, config.batch, name)
            pads = [p ^ q for p, q in zip(photos, prot, strict=True)]
            exact = sum(np.array_equal(restore_image(q, d), p)
                        for p, q, d in zip(photos, prot, pads, strict=True))
            keys = K.DerivedKeys(bytes(32), bytes(32))  # the size does not depend on the key
            key_bytes = [len(K.seal(key_payload(p, q, k, 1, model.fingerprint), keys,
                                    bytes(16))) for p, q in zip(photos, prot, strict=True)]
            regions = [face_box_region(f, p.shape) for p, f in zip(photos, faces, strict=True)]
            ssims = [metrics.ssim(q[r], p[r]) for p, q, r in zip(photos, prot, regions,
                                                                   strict=True)]
            psnrs = [metrics.psnr(q[r], p[r]) for p, q, r in zip(photos, prot, regions,
                                                                   strict=True)]
            members = [n.split(":")[0] for n in sup.split(",")]
            for rn, rec in recs.items():
                emb = attacker_embeddings(rec, name, prot, faces,
                                          redetect=config.attacker == "redetect")
                missed = np.isnan(emb).any(axis=1)
                ref = np.stack([ref_emb[rn][i] for i in idents])
                d_clean = np.linalg.norm(clean[rn] - ref, axis=1)
                d_prot = np.where(missed, np.inf, np.linalg.norm(emb - ref, axis=1))
                d_rest = d_clean if exact == len(probes) else np.full_like(d_clean, np.nan)
                rows.append({
                    "dataset": name, "k": k, "superposition": sup, "recognizer": rn,
                    "steps": config.steps, "step": config.step, "margin": config.margin,
                    "balance": config.balance, "weighting": config.weighting,
                    "ssim_target": config.ssim_target, "budget": BUDGET,
                    "direction": config.direction, "focus": config.focus, "keep": KEEP,
                    "jitter": config.jitter, "rounds": config.rounds,
                    "tangent": config.tangent, "template_fraction": model.settings.fraction,
                    "attacker": attacker_of(config, name),
                    "not_found": int(missed.sum()),
                    "box": "white" if rn in members else "black",
                    **_rates(d_clean, d_prot, d_rest, rec.threshold),
                    "shift_same_image": float(np.mean(np.linalg.norm(
                        emb[~missed] - clean[rn][~missed], axis=1)) / rec.threshold),
                    "n": len(probes), "identities": len(order), "exact_restores": int(exact),
                    "face_ssim": float(np.mean(ssims)), "face_ssim_min": float(np.min(ssims)),
                    "face_psnr": float(np.mean([v for v in psnrs if np.isfinite(v)])),
                    "pad_bytes_per_face": float(np.mean(key_bytes)),
                    "protect_seconds_per_face": seconds / len(probes)})
            result = save()
    return result


def figure(path: str, model, k: int, steering: Steering) -> None:  # noqa: ANN001
    """original | protected | restored | |difference|·255/(2^k − 1) of the two-people sample,
    whole and (second row) the faces enlarged."""
    from PIL import Image

    import jaxpriv
    from jaxpriv.io import save_image

    image = load_image(Path(jaxpriv.__file__).parent / "samples" / "two_people.jpg")
    faces = detect_faces(image)
    p, pad = protect_image(image, faces, jax.random.key(0), k, model, steering)
    r = restore_image(p, pad)
    assert np.array_equal(r, image)
    diff = (np.abs(p.astype(int) - image) * (255 // (2**k - 1))).clip(0, 255).astype(np.uint8)
    panels = [image, p, r, diff]
    x0 = int(max(0, min(f.box[0] for f in faces) - 20))
    y0 = int(max(0, min(f.box[1] for f in faces) - 20))
    x1 = int(min(image.shape[1], max(f.box[2] for f in faces) + 20))
    y1 = int(min(image.shape[0], max(f.box[3] for f in faces) + 20))

    def row(images: list[np.ndarray]) -> np.ndarray:
        gap = np.full((images[0].shape[0], 8, 3), 255, np.uint8)
        parts = [x for im in images for x in (im, gap)][:-1]
        return np.concatenate(parts, axis=1)

    def width(a: np.ndarray, w: int = 1600) -> np.ndarray:
        size = (w, round(a.shape[0] * w / a.shape[1]))
        return np.asarray(Image.fromarray(a).resize(size, Image.Resampling.NEAREST))

    zoom = row([x[y0:y1, x0:x1] for x in panels])  # the faces, pixel for pixel (enlarged)
    strip = np.concatenate([width(row(panels)), np.full((8, 1600, 3), 255, np.uint8),
                            width(zoom)], axis=0)
    Path(path).unlink(missing_ok=True)
    save_image(path, strip)


def findings(r: dict) -> list[str]:
    """The interpretation, with this run's numbers: per steering setting, whether dlib and SFace
    (both white-box) reach F_c ≥ 0.9 at mean face SSIM ≥ 0.97, per k."""
    rows = r["rows"]
    groups: dict[tuple[int, str, str], list[dict]] = {}
    for x in rows:
        if {n.split(":")[0] for n in x["superposition"].split(",")} == {"dlib_resnet", "sface"}:
            groups.setdefault((x["k"], x["superposition"], steering_label(x, r)), []).append(x)
    out = []
    for (k, sup, label), both in groups.items():
        reached = all(x["F_c"] >= 0.9 and x["face_ssim"] >= 0.97 for x in both)
        verdict = "reached" if reached else "not reached"
        out.append(f"- **k = {k}, {sup}, {label}: target {verdict}** "
                   "(F_c ≥ 0.9 for dlib and for SFace at face SSIM ≥ 0.97), both white-box: "
                   + "; ".join(f"{x['dataset']} {x['recognizer']} F_c {x['F_c']:.2f} "
                               f"(clean-accepted {x['F_c_given_accepted']:.2f}), SSIM "
                               f"{x['face_ssim']:.3f}" for x in both) + ".")
    runs = {(x["dataset"], x["k"], x["superposition"], steering_label(x, r), x["n"]): x
            for x in rows}.values()
    out += [f"- Restores: {sum(x['exact_restores'] for x in runs)}/"
            f"{sum(x['n'] for x in runs)} exact from the stored pad (T_r = T_o when all are).",
            "- Samples are small (n per row above; CPU time on a shared 2-core machine): treat "
            "the rates as rough. Settings are chosen on validation identities only "
            "([mask_validation.md](mask_validation.md), the sweep), reported on test."]
    return out


def attacker_label(x: dict) -> str:
    """The table's attacker cell: "re-found" (with the faces not found) or "clean geom."."""
    if x.get("attacker", "redetect" if x["dataset"] == "glint" else "clean") == "clean":
        return "clean geom."
    return "re-found" + (f" ({x['not_found']})" if x.get("not_found") else "")


def steering_label(x: dict, r: dict) -> str:
    """``"8×1, m 1.3, bal"`` for a row (its own settings, else the file's)."""
    def get(key: str, default: object) -> object:
        return x.get(key, r.get(key, default))

    return (f"{get('steps', '?')}×{get('step', 1.0):g}, m {get('margin', '?'):g}"
            + (", scaled" if get("direction", "sign") == "scaled" else "")
            + (f", softmin {get('focus', 0.0):g}" if get("focus", 0.0) else "")
            + (f", jitter {get('jitter', 0.0):g}" if get("jitter", 0.0) else "")
            + (f", {get('rounds', 1)} rounds" if get("rounds", 1) > 1 else "")
            + (", best" if get("keep", "last") == "best" else "")
            + (", bal" if get("balance", False) else "")
            + (", tex" if get("weighting", "sign") == "texture" else "")
            + (", tangent" if get("tangent", False) else "")
            + (f", M {get('template_fraction', 0.4):g}" if get("template_fraction", 0.4) != 0.4
               else "")
            + (f", SSIM ≥ {get('ssim_target', 0.0):g}" if get("ssim_target", 0.0) else "")
            + (" each step" if get("ssim_target", 0.0) and get("budget", "end") == "step"
               else ""))


def markdown(r: dict, config: ml_collections.ConfigDict) -> str:
    """The results file."""
    lines = [
        f"# Steered mask template (paper 004): dlib and SFace, {r['split']} identities",
        "",
        f"Command: `{r['command']}`  ",
        f"Machine: {r['machine']}; wall time {r['seconds']} s.  ",
        f"Mask model `{r['model']}` (template M); start: {r['start']}. The pad is steered by "
        "at most *steps* gradient steps of *step* grey levels inside the k-bit box, "
        "stopping once every recognizer of the superposition has d/t ≥ *margin* (the steering "
        "column: steps × step, m margin; a step is the gradient's sign unless \"scaled\": "
        "the gradient over its RMS on the template, clipped at ±3; \"softmin f\": each "
        "recognizer's gradient weighted by softmax(−d/(t·f)) as well as τ, so the "
        "least-fooled steers most; \"jitter j\": each step sees every recognizer's chip "
        "re-aligned by a random similarity moving its edge by ≤ j chip pixels per component "
        "(`steer.jitter_affines`); \"r rounds\": after each run of steps the face is found "
        "again in the protected photo as the attacker finds it and the next run steers at "
        "that geometry (`steer.steer_rounds`); \"best\": the best visited pad is kept (its "
        "least-fooled recognizer furthest away), else (older rows) the last step's; \"bal\": each "
        "recognizer's gradient scaled to unit mean magnitude before the sign, so neither "
        "dominates; \"tex\": each pixel's step "
        "scaled by the local contrast SSIM forgives, `jaxpriv.masktpl.budget.texture_weight`; "
        "\"M f\": the keyed template keeps a share f of the dlib chip's pixels (else the "
        "model's 0.4); \"tangent\": once the face box's SSIM is within 0.002 of the target, "
        "each step first loses its component along −∇SSIM (`budget.tangent_to_ssim`); "
        "\"SSIM ≥ s each step\": each step's change projected back (scaled) until the face "
        "box's SSIM ≥ s, in the jitted loop, and the final image checked by `shrink_to_ssim`; "
        "\"SSIM ≥ s\" alone (older rows): the change scaled down once, after the steps).",
        "",
        "Definitions (paper, eq. 8): **T_o** = share of original probes matched to their own "
        "clean reference (distance < the recognizer's threshold); **F_c** = share of protected "
        "probes not matched; **T_r** = share of restored probes matched; **r_s** = F_c / (1 + "
        "T_o − F_c). F_c|acc: F_c among probes matched when clean. shift: mean ‖R(protected) − "
        "R(original)‖ / threshold. white: the recognizer is in the superposition; black: held "
        "out. attacker: \"re-found\": it finds the face again in the protected photo (glint: "
        "`chips_from_aligned_crops`; celeba299: YuNet, the face overlapping the clean box most, "
        "(m) = m protected faces not found, counted as not matched); \"clean geom.\" (older "
        "celeba299 rows): it aligns at the clean face's geometry, so it never re-aligns. SSIM/PSNR "
        "on the face box; key B/face: the sealed key file of a one-face photo.",
        "",
        "| data | k | superposition | steering | recognizer | box | attacker | n | T_o | F_c | T_r "
        "| r_s | F_c\\|acc | shift | restores | face SSIM mean (min) | PSNR dB | key B/face "
        "| s/face |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["rows"]:
        lines.append(
            f"| {x['dataset']} | {x['k']} | {x['superposition']} | {steering_label(x, r)} | "
            f"{x['recognizer']} | {x['box']} | {attacker_label(x)} | {x['n']} | "
            f"{x['T_o']:.3f} | {x['F_c']:.3f} | {x['T_r']:.3f} | "
            f"{x['r_s']:.3f} | {x['F_c_given_accepted']:.3f} | {x['shift_same_image']:.2f} | "
            f"{x['exact_restores']}/{x['n']} | {x['face_ssim']:.4f} ({x['face_ssim_min']:.4f}) | "
            f"{x['face_psnr']:.1f} | {x['pad_bytes_per_face']:.0f} | "
            f"{x['protect_seconds_per_face']:.1f} |")
    lines += ["", "## Reading", ""] + findings(r) + [f"- {n}" for n in config.notes]
    if not (config.figure or r.get("figure_superposition")):
        return "\n".join(lines) + "\n"
    lines += ["", "![original | protected | restored | amplified difference](mask.png)", "",
              f"`mask.png`: `jaxpriv/samples/two_people.jpg` at k = {config.figure_bits}"
              + (f", steered against {r['figure_superposition']}"
                 if r.get("figure_superposition") else "") + ": "
              "original | protected | restored | |protected − original| × 255/(2^k − 1); "
              "second row: the two faces enlarged (nearest neighbour).", ""]
    return "\n".join(lines) + "\n"

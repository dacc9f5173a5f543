"""DP face de-identification (paper 001) vs blur and mosaic, in the layout of its Tables 1–2.

Two sets: held-out glint faces (identities the GAN never saw; each 112×112 crop made a photo by
padding 25 % and upsampling ×3) and full photos (bundled samples + MIT face_recognition scenes).
Per face: projection ``w*`` once (eq. 18–19), then for every ε of each mode
``G(w* + Lap(Δf/ε))`` swapped in (eq. 10, Alg. 2). The same Laplace draw is scaled across ε
(common random numbers), keyed like ``jaxpriv protect`` (seed, photo name, face index).

Privacy per face: dlib distance between the original face and the face at the same place in the
protected photo (5 landmarks re-predicted in the original box, dlib-exact chip) — "different
person" when > 0.6; "still a face" when dlib's HOG detector finds a box with IoU ≥ 0.3 to the
original one (same upsampling as for the original). Utility per photo:
:func:`jaxpriv.metrics.utility_metrics` of the whole photo (SSIM, L0, L2, ALD_p, dHash, PSNR).
Reconstruction quality of the projection: SSIM of ``G(w*)`` vs the 64×64 target chip and dlib
distances of ``G(w*)`` (upsampled to 150) to the original chip and to the upsampled target.
"""

from __future__ import annotations

import glob
import hashlib
import json
import time
from pathlib import Path

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm import tqdm

from jaxpriv import metrics
from jaxpriv.deid.blend import face_mask, swap_face
from jaxpriv.deid.generator import load_generator
from jaxpriv.deid.method import checkpoint_path, mechanism
from jaxpriv.deid.project import (
    ProjectConfig,
    Projector,
    make_projector,
    render,
    resize_chips,
)
from jaxpriv.faces import Face, detect_faces, extract_chips
from jaxpriv.faces.align import photo_from_aligned_crop
from jaxpriv.faces.detect import landmarks_in_box
from jaxpriv.io import load_image
from jaxpriv.machine import machine_description
from jaxpriv.methods import get_method
from jaxpriv.protect import image_key
from jaxpriv.recognizers import load_recognizer
from jaxpriv.recognizers.base import Recognizer

THRESHOLD = 0.6


# ---------------------------------------------------------------- inputs


def glint_photos(config: ml_collections.ConfigDict) -> list[dict]:
    """Glint crops of the ``eval_split`` identities as photos: [{name, image, faces, upsample}]."""
    from experiments.face_gan import chip_cache
    from jaxpriv.data import in_split, load_identity_faces

    # the GAN's own data-source order (built here if this machine lacks it)
    meta = chip_cache(config.faces_dir, config.tfds_dir, config.cache_dir)["meta"]
    held = np.flatnonzero(in_split(meta["identity_name"], config.eval_split))
    source = load_identity_faces(config.faces_dir, config.tfds_dir)
    per: dict[str, int] = {}
    out = []
    for i in held:
        name = meta["identity_name"][i]
        if per.get(name, 0) >= config.glint_per_identity:
            continue
        per[name] = per.get(name, 0) + 1
        image, face = photo_from_aligned_crop(source[int(i)]["image"])
        out.append({"name": meta["filename"][i], "image": image, "faces": [face], "upsample": 0,
                    "identity": name})
    return out


def scene_photos(config: ml_collections.ConfigDict) -> list[dict]:
    """Full photos with their HOG faces (upsample 1, as ``jaxpriv protect``)."""
    paths = sorted({p for g in config.scene_globs for p in glob.glob(g)})
    out, n = [], 0
    for p in paths:
        image = load_image(p)
        faces = detect_faces(image, upsample=1, detector="hog")  # as its recorded results
        if not faces or n >= config.max_scene_faces:
            continue
        faces = faces[: config.max_scene_faces - n]
        n += len(faces)
        out.append({"name": Path(p).name, "image": image, "faces": faces, "upsample": 1})
    return out


# ---------------------------------------------------------------- measurement


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(area, 1e-9)


def face_outcomes(rec: Recognizer, protected: np.ndarray, photo: dict,
                  ) -> tuple[list[bool], np.ndarray]:
    """Per original face: still detected (bool) and dlib distance to the original face."""
    dets = detect_faces(protected, upsample=photo["upsample"], detector="hog")
    detected = [any(iou(d.box, f.box) >= 0.3 for d in dets) for f in photo["faces"]]
    faces = [Face(f.box, landmarks_in_box(protected, f.box)) for f in photo["faces"]]
    chips, _ = extract_chips(protected, faces)
    d = np.linalg.norm(rec.embed(chips) - photo["emb"], axis=-1)
    return detected, d


def _up(chips: np.ndarray) -> np.ndarray:
    """Bilinear upsampling of uint8 chips to dlib's 150×150."""
    return np.stack([cv2.resize(c, (150, 150), interpolation=cv2.INTER_LINEAR) for c in chips])


def masked(image: np.ndarray, other: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """``other`` inside the union of ``masks``, ``image`` elsewhere."""
    m = np.any(masks, axis=0)
    out = image.copy()
    out[m] = other[m]
    return out


# ---------------------------------------------------------------- run


def cached_projection(config: ml_collections.ConfigDict, ckpt: Path, project: Projector,
                      targets: np.ndarray, target_emb: np.ndarray,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(w*, G(w*) in [0, 1], loss per step)`` of every target, projected in fixed batches of
    ``project_batch`` (one compiled shape) and cached in ``cache_dir/eval_projection`` by a hash
    of the checkpoint, the projection settings and the targets."""
    h = hashlib.sha256()
    h.update((ckpt / "config.json").read_bytes())
    for f in sorted((ckpt / "params").rglob("*")):
        if f.is_file():
            h.update(f.read_bytes())
    h.update(repr(project.config).encode())
    h.update(targets.tobytes())
    h.update(np.asarray(target_emb, np.float32).tobytes())
    path = Path(config.cache_dir) / "eval_projection" / f"{h.hexdigest()[:20]}.npz"
    if path.exists():
        z = np.load(path)
        return z["w"], z["recon"], z["losses"]
    ws, recon, losses = [], [], []
    b = config.project_batch
    for s in tqdm(range(0, len(targets), b), desc="project", unit="batch"):
        batch, emb = targets[s:s + b], target_emb[s:s + b]
        n = len(batch)
        w, loss, img = project(np.concatenate([batch, np.repeat(batch[:1], b - n, 0)]),
                               np.concatenate([emb, np.repeat(emb[:1], b - n, 0)]))
        ws.append(w[:n])
        recon.append(img[:n])
        losses.append(loss[:n])
    out = np.concatenate(ws), np.concatenate(recon), np.concatenate(losses)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, w=out[0], recon=out[1], losses=out[2])
    return out


def run(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Measure every mechanism and the baselines; write ``out_json``, ``out_md``, ``out_png``
    (caches in ``cache_dir``, default ``workdir/cache``)."""
    if config.generator == "mobilestylegan":
        from experiments import deid_msg

        return deid_msg.run(config, workdir)
    t0 = time.time()
    config = config.copy_and_resolve_references()
    for ext in ("json", "md", "png"):  # deid.{json,md,png} are MobileStyleGAN's (the default)
        config[f"out_{ext}"] = f"{config.face_gan_results}.{ext}"
    config.cache_dir = config.cache_dir or str(Path(workdir) / "cache")
    ckpt = checkpoint_path(config.checkpoint)
    gen = load_generator(ckpt)
    rec = load_recognizer("dlib_resnet")
    size = gen.config.resolution
    pc = ProjectConfig(steps=config.steps, lr=config.lr, lambda_mse=config.lambda_mse,
                       lambda_id=config.lambda_id)
    project = make_projector(gen, pc)
    mechs = [(f"paper ε={e:g}", mechanism(gen, "paper", e, config.sensitivity, config.clip))
             for e in config.paper_epsilons]
    mechs += [(f"bounded ε={e:g}" + (f" ψ={t:g}" if t != 1 else ""),
               mechanism(gen, "bounded", e, config.sensitivity, config.clip, t))
              for t in config.truncations for e in config.bounded_epsilons]
    baselines = {name: get_method(name).make() for name in ("blur", "mosaic")}
    sets = {f"glint {config.eval_split} faces": glint_photos(config),
            "photos": scene_photos(config)}
    results: dict = {"sets": {}, "mechanisms": {}}
    for label, mech in mechs:
        results["mechanisms"][label] = mech.describe()
    examples: dict[str, dict] = {}

    for set_name, photos in sets.items():
        # chips, embeddings, projection
        flat = []
        for p in photos:
            chips, transforms = extract_chips(p["image"], p["faces"])
            p["chips"], p["transforms"] = chips, transforms
            p["emb"] = rec.embed(chips)
            p["masks"] = [face_mask(p["image"], f, t, config.mask) for f, t in
                          zip(p["faces"], transforms, strict=True)]
            flat += [(p, i) for i in range(len(chips))]
        targets = np.stack([resize_chips(p["chips"][i:i + 1], size)[0] for p, i in flat])
        target_emb = np.concatenate([p["emb"][i:i + 1] for p, i in flat])
        ws, recon_f, losses = cached_projection(config, ckpt, project, targets, target_emb)
        recon_u8 = np.round(recon_f * 255).astype(np.uint8)
        emb_recon, emb_target_up = rec.embed(_up(recon_u8)), rec.embed(_up(targets))
        d_recon = np.linalg.norm(emb_recon - target_emb, axis=-1)
        d_recon_up = np.linalg.norm(emb_recon - emb_target_up, axis=-1)
        d_target_up = np.linalg.norm(emb_target_up - target_emb, axis=-1)
        recon_stats = {
            "faces": len(flat),
            "ssim_G(w*)_vs_target64": metrics.mean_ssim(list(recon_u8), list(targets)),
            "dlib_dist_G(w*)_vs_original150": float(d_recon.mean()),
            "share_G(w*)_different_person": float(np.mean(d_recon > THRESHOLD)),
            "dlib_dist_G(w*)_vs_target64_upsampled": float(d_recon_up.mean()),
            "dlib_dist_target64_upsampled_vs_original150": float(d_target_up.mean()),
            "projection_loss_first": float(losses[:, 0].mean()),
            "projection_loss_last": float(losses[:, -1].mean()),
        }
        # keys (as jaxpriv protect) and one Laplace draw per face, scaled per ε
        key_of = [jax.random.fold_in(image_key(config.seed, p["name"]), i) for p, i in flat]

        variants: dict[str, list[np.ndarray]] = {}
        variants["original"] = [p["image"] for p in photos]
        for name, fn in baselines.items():
            outs = [fn(p["image"], p["faces"], jax.random.key(0)) for p in photos]
            variants[f"{name} (box+25 %)"] = outs
            variants[f"{name} (our mask)"] = [masked(p["image"], o, p["masks"])
                                              for p, o in zip(photos, outs, strict=True)]
        w_by_face = {(id(p), i): ws[k] for k, (p, i) in enumerate(flat)}
        key_by_face = {(id(p), i): key_of[k] for k, (p, i) in enumerate(flat)}

        def swap_all(chips_of: dict, photo: dict) -> np.ndarray:
            out = photo["image"]
            for i, (face, t) in enumerate(zip(photo["faces"], photo["transforms"], strict=True)):
                out, _ = swap_face(out, face, chips_of[(id(photo), i)], t, config.mask)
            return out

        recon_of = {(id(p), i): recon_u8[k] for k, (p, i) in enumerate(flat)}
        variants["ours, no noise: G(w*)"] = [swap_all(recon_of, p) for p in photos]
        for label, mech in tqdm(mechs, desc=f"ε sweep ({set_name})"):
            if config.figure_only and f"ours {label}" not in config.figure_variants:
                continue
            noisy = jnp.stack([mech(key_by_face[k], jnp.asarray(w_by_face[k]), gen.w_avg,
                                    gen.w_std) for k in w_by_face])
            chips_new = render(gen, noisy)
            chips_of = {k: chips_new[j] for j, k in enumerate(w_by_face)}
            variants[f"ours {label}"] = [swap_all(chips_of, p) for p in photos]

        examples[set_name] = {"photos": photos, "variants": variants}
        if config.figure_only:
            continue
        rows = {}
        for vname, outs in tqdm(variants.items(), desc=f"measure ({set_name})"):
            det, dist = [], []
            for p, o in zip(photos, outs, strict=True):
                d1, d2 = face_outcomes(rec, o, p)
                det += d1
                dist += list(d2)
            dist = np.asarray(dist)
            um = metrics.utility_metrics(outs, variants["original"])
            rows[vname] = {"different_person": float(np.mean(dist > THRESHOLD)),
                           "detected": float(np.mean(det)), "mean_distance": float(dist.mean()),
                           **{k: float(v) for k, v in um.items()}}
        results["sets"][set_name] = {"photos": len(photos), "faces": len(flat),
                                     "reconstruction": recon_stats, "rows": rows}

    if config.figure_only:
        figure(examples, config)
        return results
    results["meta"] = {
        "checkpoint": str(config.checkpoint), "generator": gen.info, "projection": pc.__dict__,
        "mask": config.mask, "seed": config.seed, "command": config.command,
        "wall_minutes": (time.time() - t0) / 60,
        "machine": f"{machine_description()}; {jax.device_count()} device(s)",
    }
    Path(config.out_json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    Path(config.out_md).write_text(markdown(results, config))
    figure(examples, config)
    print(Path(config.out_md).read_text())
    return results


# ---------------------------------------------------------------- report


def markdown(results: dict, config: ml_collections.ConfigDict) -> str:
    lines = ["# DP face de-identification (paper 001) vs blur and mosaic", "",
             f"Command: `{config.command}`  ",
             f"Generator: `{config.checkpoint}` ({results['meta']['generator'].get('step', '?')} "
             f"steps); projection {config.steps} Adam steps (eq. 18–19, dlib-ResNet features); "
             f"mask {config.mask}; seed {config.seed}; wall time "
             f"{results['meta']['wall_minutes']:.1f} min on {results['meta']['machine']}.", ""]
    lines += [summary_line(results, config.default_variant), ""]
    cols = [("different_person", "different person (d > 0.6) %", 100, ".0f"),
            ("detected", "still a face (HOG) %", 100, ".0f"),
            ("mean_distance", "mean dlib d", 1, ".3f"),
            ("dhash", "dHash", 1, ".2f"), ("ssim", "SSIM (10⁻²)", 100, ".2f"),
            ("l0", "L0 (10²)", 0.01, ".1f"), ("l2", "L2", 1, ".0f"),
            ("ald_p", "ALD_p (10⁻²)", 100, ".2f")]
    for set_name, s in results["sets"].items():
        lines += [f"## {set_name}: {s['faces']} faces in {s['photos']} photos", ""]
        lines += ["| method | " + " | ".join(c[1] for c in cols) + " |",
                  "|---|" + "---:|" * len(cols)]
        for name, r in s["rows"].items():
            lines.append(f"| {name} | " + " | ".join(
                format(r[k] * mul, fmt) for k, _, mul, fmt in cols) + " |")
        rs = s["reconstruction"]
        lines += ["", "Projection quality (no noise): "
                  f"SSIM(G(w*), 64×64 target) = {rs['ssim_G(w*)_vs_target64']:.3f}; "
                  f"dlib d(G(w*)↑150, original chip) = {rs['dlib_dist_G(w*)_vs_original150']:.3f} "
                  f"({100 * rs['share_G(w*)_different_person']:.0f} % > 0.6); "
                  f"d(G(w*)↑, target64↑) = {rs['dlib_dist_G(w*)_vs_target64_upsampled']:.3f}; "
                  f"the 64-px bottleneck alone: d(target64↑, original) = "
                  f"{rs['dlib_dist_target64_upsampled_vs_original150']:.3f}; loss "
                  f"{rs['projection_loss_first']:.3f} → {rs['projection_loss_last']:.3f}.", ""]
    lines += ["## Mechanisms", ""]
    lines += [f"- {k}: {v}" for k, v in results["mechanisms"].items()]
    lines += ["", "## How to read this", "",
              "- *different person*: dlib distance > 0.6 between the original face and the face "
              "at the same place in the protected photo (5 landmarks re-predicted in the original "
              "box, dlib-exact chip). *still a face*: dlib's HOG detector (same upsampling as for "
              "the original) finds a box with IoU ≥ 0.3. Utility columns are whole-photo means "
              "(`jaxpriv.metrics.utility_metrics`; dHash with 64-bit hashes, so not on the "
              "paper's scale).",
              "- *blur/mosaic (box+25 %)* are the registered baselines on their own region (the "
              "detector box grown by 25 %); *(our mask)* are the same pixels kept only inside the "
              "region our swap replaces (68-landmark hull ∩ generated chip), i.e. the same "
              "region as ours.",
              "- *paper* mode uses the user's Δf = 1 as the paper does: its ε is nominal (w* is "
              "unbounded). *bounded* mode clips w to w_avg ± C per coordinate, so Δf = 2·C·dim is "
              "a true L1 sensitivity and ε is the real budget for the latent code (pose, "
              "position, size and everything outside the mask are not privatised).",
              "- *ψ* (truncation, `--truncation`): the released code is pulled toward the "
              "generator's mean w, w̃ → w_avg + ψ·(w̃ − w_avg), after the mechanism; a function "
              "of the released value only (post-processing), so ε is unchanged.",
              "- One Laplace draw per face is scaled across ε (common random numbers), keyed "
              "as `jaxpriv protect --seed` keys faces."]
    return "\n".join(lines) + "\n"


def summary_line(results: dict, variant: str) -> str:
    """Pooled shares of one variant over every set (and the originals' detection rate)."""
    n = sum(s["faces"] for s in results["sets"].values())

    def pooled(row: str, key: str) -> float:
        return sum(s["rows"][row][key] * s["faces"] for s in results["sets"].values()) / n

    return (f"**Default of `jaxpriv protect --method deid` ({variant}), pooled over all {n} "
            f"faces:** {100 * pooled(variant, 'different_person'):.0f} % a different person to "
            f"dlib, {100 * pooled(variant, 'detected'):.0f} % still detected as a face by HOG "
            f"(unprotected originals: {100 * pooled('original', 'detected'):.0f} %); without "
            f"noise, G(w*) alone: {100 * pooled('ours, no noise: G(w*)', 'different_person'):.0f}"
            " % different.")


def _crop(image: np.ndarray, face: Face, grow: float = 0.6, size: int = 192) -> np.ndarray:
    x0, y0, x1, y1 = face.box
    w, h = x1 - x0, y1 - y0
    cx, cy, s = (x0 + x1) / 2, (y0 + y1) / 2, max(w, h) * (1 + grow)
    a = np.array([[size / s, 0, size / 2 - cx * size / s], [0, size / s, size / 2 - cy * size / s]])
    return cv2.warpAffine(image, a, (size, size), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT)


def figure(examples: dict, config: ml_collections.ConfigDict, per_set: int = 3) -> None:
    """Rows of face crops: original | blur | mosaic | ours (``config.figure_variants``)."""
    cols = ["original", "blur (box+25 %)", "mosaic (box+25 %)", *config.figure_variants]
    rows = []
    for ex in examples.values():
        photos = ex["photos"]
        pick = np.linspace(0, len(photos) - 1, min(per_set, len(photos))).round().astype(int)
        for j in pick:
            p = photos[j]
            rows.append(np.concatenate([_crop(ex["variants"][c][j], p["faces"][0])
                                        for c in cols], 1))
    grid = np.concatenate(rows, 0)
    header = np.full((44, grid.shape[1], 3), 255, np.uint8)
    labels = ["original", "blur", "mosaic"] + [
        v.replace("ours, no noise: G(w*)", "G(w*) no noise").replace("ours ", "")
        .replace("ε", "eps").replace("ψ", "psi")
        for v in config.figure_variants]
    for k, label in enumerate(labels):  # two lines: mode, then its parameters
        for i, line in enumerate(label.split(" ", 1)):
            cv2.putText(header, line, (k * 192 + 6, 18 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(config.out_png, cv2.cvtColor(np.concatenate([header, grid], 0),
                                             cv2.COLOR_RGB2BGR))

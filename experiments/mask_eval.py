"""Mask-template protection against dlib on held-out glint identities (paper 004, eq. 8).

Protocol (same as ``verify_baseline``): per held-out identity the first sorted image is the clean
reference portrait, the next ``max_per_identity`` images are probes. Each probe (a 112×112
aligned crop, i.e. the photo file a user holds) is protected with a password-derived key at k
low bits; the attacker then runs the ordinary dlib pipeline (``chips_from_aligned_crops`` +
ResNet) on the protected crop and compares it with the clean reference. Every protected crop is
restored and checked bit for bit against the original.
"""

from __future__ import annotations

import functools
import json
import platform
import secrets
import sys
import time
from pathlib import Path

import ml_collections
import numpy as np
from tqdm import tqdm

from jaxpriv import metrics
from jaxpriv.data import list_identity_images, split_identities
from jaxpriv.faces import Face, chips_from_aligned_crops, detect_faces
from jaxpriv.faces.detect import landmarks_in_box
from jaxpriv.io import load_image
from jaxpriv.machine import cpu_model
from jaxpriv.masktpl import keys as K
from jaxpriv.masktpl.model import load_model
from jaxpriv.masktpl.xor import protect_image, restore_image
from jaxpriv.recognizers import load_recognizer


def crop_face(crop: np.ndarray, border: float = 0.25, scale: int = 3) -> Face:
    """Face geometry of a pre-aligned crop in the crop's own coordinates: found exactly as
    :func:`chips_from_aligned_crops` finds it (zero border, ×``scale``, dlib detector, else the
    crop square), then mapped back."""
    import cv2

    h, w = crop.shape[:2]
    pad = int(round(border * max(h, w)))
    big = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    big = cv2.resize(big, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    faces = detect_faces(big, upsample=0)
    if faces:
        centre = np.array(big.shape[1::-1]) / 2
        face = min(faces, key=lambda f: np.linalg.norm(f.landmarks.mean(0) - centre))
    else:
        box = (pad * scale, pad * scale, (pad + w) * scale - 1, (pad + h) * scale - 1)
        face = Face(box, landmarks_in_box(big, box))
    return Face(tuple(v / scale - pad for v in face.box), face.landmarks / scale - pad)


def oracle_protect(crop: np.ndarray, face: Face, key, k: int, model, rec) -> np.ndarray:  # noqa: ANN001
    """Reference point, *not* the shipped method: inside the same template M, set the k low bits
    to 2^k − 1 or 0 following the sign of ∂d/∂x of dlib (one gradient, at x + δ). Such a pad
    depends on the low bits, so it could not be regenerated; it would have to be stored in the
    sealed key file. Shows what the regeneration constraint costs."""
    import jax

    from jaxpriv.faces import extract_chips
    from jaxpriv.masktpl.model import chip_pad
    from jaxpriv.masktpl.xor import high_bits, place_pad

    chips_hi, transforms = extract_chips(high_bits(crop, k), [face])
    _, mask = chip_pad(model, chips_hi[0], key, k)
    chip = extract_chips(crop, [face])[0][0]
    g = np.asarray(_grad_dir(rec.apply)(rec.params, chip[None].astype(np.float32) / 255.0,
                                        jax.random.fold_in(key, 9)))[0]
    code = np.where(g > 0, 1, 2).astype(np.uint8) * mask[..., None]  # 1 = up, 2 = down
    placed = place_pad(code, transforms[0], crop.shape)
    low = np.uint8((1 << k) - 1)
    out = high_bits(crop, k)
    return np.where(placed == 1, out | low, np.where(placed == 2, out, crop)).astype(np.uint8)


@functools.lru_cache(maxsize=2)
def _grad_dir(apply):  # noqa: ANN001, ANN202
    import jax
    import jax.numpy as jnp

    @jax.jit
    def fn(params, x01, key):  # noqa: ANN001, ANN202
        clean = jax.lax.stop_gradient(apply(params, x01))
        delta = jax.random.uniform(key, x01.shape, minval=-2 / 255, maxval=2 / 255)
        return jax.grad(lambda x: jnp.sum(jnp.sqrt(jnp.sum((apply(params, x) - clean) ** 2, -1)
                                                   + 1e-12)))(x01 + delta)

    return fn


def _rates(d_clean: np.ndarray, d_prot: np.ndarray, d_rest: np.ndarray, t: float) -> dict:
    t_o = metrics.true_accept_rate(d_clean, t)
    f_c = metrics.protection_success_rate(d_prot, t)
    t_r = metrics.true_accept_rate(d_rest, t)
    accepted = d_clean < t
    return {"T_o": t_o, "F_c": f_c, "T_r": t_r, "r_s": f_c / (1 + t_o - f_c),
            "F_c_given_accepted": float(np.mean(d_prot[accepted] >= t)) if accepted.any()
            else float("nan")}


def run(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Protect, attack, restore every probe for each k; write Markdown + JSON + the figure."""
    del workdir  # writes only the committed results files of the config (out_*)
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # orbax logs every restore at INFO
    if config.render_only:  # rewrite the Markdown from the JSON of the last run
        result = json.loads(Path(config.out_json).read_text())
        Path(config.out_md).write_text(markdown(result, config))
        figure(config.figure, load_model(config.model_dir or None), config.figure_bits,
               config.password.encode(), config.kdf)
        return result
    start = time.time()
    rec = load_recognizer("dlib_resnet")
    model = load_model(config.model_dir or None)
    images = list_identity_images(config.faces_dir)
    held = split_identities(images)[config.eval_split]
    password = config.password.encode()
    refs, probes = {}, []
    for name in held:
        files = images[name]
        refs[name] = load_image(Path(config.faces_dir) / name / files[0])
        probes += [(name, Path(config.faces_dir) / name / f)
                   for f in files[1:1 + config.max_per_identity]]
    ref_emb = {n: rec.embed(chips_from_aligned_crops(c))[0] for n, c in refs.items()}
    crops = [load_image(p) for _, p in probes]
    faces = [crop_face(c) for c in tqdm(crops, desc="faces", unit="img")]
    clean = rec.embed(np.concatenate([chips_from_aligned_crops(c) for c in crops]))
    d_clean = np.array([np.linalg.norm(e - ref_emb[n]) for e, (n, _) in zip(clean, probes,
                                                                           strict=True)])
    rows, oracle_rows = [], []
    for k in config.bits:
        prot, ssims, psnrs, exact, d_self = [], [], [], 0, []
        for crop, face in tqdm(list(zip(crops, faces, strict=True)), desc=f"k={k}", unit="img"):
            key = K.prng_key(K.derive_keys(password, secrets.token_bytes(16), config.kdf).secret)
            p, pad = protect_image(crop, [face], key, k, model)
            restored = restore_image(p, pad)
            exact += int(np.array_equal(restored, crop))
            prot.append(p)
            ssims.append(metrics.ssim(p, crop))
            psnrs.append(metrics.psnr(p, crop))
        emb = rec.embed(np.concatenate([chips_from_aligned_crops(p) for p in prot]))
        d_prot = np.array([np.linalg.norm(e - ref_emb[n]) for e, (n, _) in zip(emb, probes,
                                                                              strict=True)])
        d_self = np.linalg.norm(emb - clean, axis=1)
        # restored images are the originals (checked bit for bit), so their distances are d_clean
        d_rest = d_clean if exact == len(crops) else np.full_like(d_clean, np.nan)
        rows.append({"k": k, **_rates(d_clean, d_prot, d_rest, rec.threshold),
                     "exact_restores": exact, "n": len(crops),
                     "ssim": float(np.mean(ssims)), "ssim_min": float(np.min(ssims)),
                     "psnr": float(np.mean([v for v in psnrs if np.isfinite(v)])),
                     "mean_d_to_ref_clean": float(d_clean.mean()),
                     "mean_d_to_ref_protected": float(d_prot.mean()),
                     "mean_d_protected_vs_clean_same_image": float(d_self.mean()),
                     "max_d_protected_vs_clean_same_image": float(d_self.max())})
        if config.oracle:
            orc = []
            for crop, face in tqdm(list(zip(crops, faces, strict=True)), desc=f"oracle k={k}",
                                   unit="img"):
                key = K.prng_key(K.derive_keys(password, secrets.token_bytes(16),
                                               config.kdf).secret)
                orc.append(oracle_protect(crop, face, key, k, model, rec))
            emb_o = rec.embed(np.concatenate([chips_from_aligned_crops(p) for p in orc]))
            d_o = np.array([np.linalg.norm(e - ref_emb[n]) for e, (n, _) in zip(emb_o, probes,
                                                                               strict=True)])
            oracle_rows.append({"k": k, **_rates(d_clean, d_o, d_clean, rec.threshold),
                                "ssim": float(np.mean([metrics.ssim(p, c)
                                                       for p, c in zip(orc, crops, strict=True)])),
                                "mean_d_to_ref_protected": float(d_o.mean())})
    result = {
        "split": config.eval_split, "held_out": held, "probes": len(probes),
        "threshold": rec.threshold,
        "model": model.fingerprint, "model_info": model.info, "rows": rows,
        "oracle_rows": oracle_rows,
        "command": " ".join(["python -m experiments.main", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {cpu_model()}, {__import__('os').cpu_count()} cores, "
                   f"load average at end {__import__('os').getloadavg()[0]:.1f}",
        "seconds": round(time.time() - start, 1),
    }
    figure(config.figure, model, config.figure_bits, password, config.kdf)
    Path(config.out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(config.out_json).write_text(json.dumps(result, indent=2) + "\n")
    Path(config.out_md).write_text(markdown(result, config))
    print(markdown(result, config))
    return result


def figure(path: str, model, k: int, password: bytes, kdf: K.KdfParams) -> None:  # noqa: ANN001
    """original | protected | restored | |difference|·255/(2^k − 1) of the two-people sample,
    whole and (second row) the faces enlarged."""
    from PIL import Image

    import jaxpriv
    from jaxpriv.io import save_image

    image = load_image(Path(jaxpriv.__file__).parent / "samples" / "two_people.jpg")
    faces = detect_faces(image)
    key = K.prng_key(K.derive_keys(password, secrets.token_bytes(16), kdf).secret)
    p, pad = protect_image(image, faces, key, k, model)
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
    """The interpretation paragraph, with this run's numbers."""
    rows = r["rows"]
    t_o = rows[0]["T_o"]
    extra = ", ".join(f"k={x['k']}: {100 * x['F_c_given_accepted']:.1f} %" for x in rows)
    out = [
        f"- **T_r = T_o = {t_o:.3f} exactly** for every k: all "
        f"{sum(x['exact_restores'] for x in rows)}/{sum(x['n'] for x in rows)} protected crops "
        "restored bit for bit, so the recognizer sees the originals again.",
        f"- **F_c is almost only the recognizer's own misses** (1 − T_o = {1 - t_o:.3f}): among "
        f"probes dlib accepted when clean, the protection alone flipped {extra}. The same-image "
        "embedding shift grows with k but stays far below the 0.6 threshold on average (the "
        "single large maxima, ≈ 0.8, are most likely crops where dlib's detector or landmarks "
        "moved on the protected crop; not investigated further).",
        "- Why: exact regeneration lets P depend on the high bits only, and flipping low bit b "
        "changes a pixel by 2^b·(1 − 2·x_b), whose sign is set by the very bits the generator "
        "cannot see. The generator can choose where and how many bits flip (it learned to flip "
        "nearly all of them inside M), not the direction: the pad acts as keyed random-sign "
        "noise of amplitude < 2^k on the template, which dlib tolerates.",
    ]
    if r.get("oracle_rows"):
        pairs = "; ".join(
            f"k={o['k']}: {100 * o['F_c_given_accepted']:.1f} % vs "
            f"{100 * x['F_c_given_accepted']:.1f} % (SSIM {o['ssim']:.3f} vs {x['ssim']:.3f})"
            for o, x in zip(r["oracle_rows"], rows, strict=True))
        out.append(
            "- With the direction known (reference point below: same M and k, low bits pushed "
            "along one dlib gradient) the protection flips, among clean-accepted probes, "
            f"{pairs} (reference vs shipped). So the limit is the regeneration constraint, not "
            "the template: storing the k-bit pad (compressed) in the sealed key file instead of "
            "regenerating it would allow directional pads, still restoring exactly.")
    return out


def markdown(r: dict, config: ml_collections.ConfigDict) -> str:
    """The results file."""
    info = r["model_info"]
    lines = [
        "# Mask-template protection (paper 004) against dlib, held-out glint identities "
        f"({r.get('split', 'old hold-out')} split of jaxpriv.data.splits)",
        "",
        f"Command: `{r['command']}`  ",
        f"Machine: {r['machine']}; wall time {r['seconds']} s.  ",
        f"Model `{r['model']}` (ckpt/mask_perturb_dlib): {info.get('trained_on')}; template "
        f"{info.get('template_steps')} steps, generator {info.get('generator_steps')} steps, "
        f"budget {info.get('budget')} σ = {info.get('sigma')}.",
        "",
        f"Held-out identities ({len(r['held_out'])}): {', '.join(r['held_out'])}. Reference = "
        f"first sorted image of each (clean); probes = the next {config.max_per_identity} "
        f"images of each ({r['probes']} probes). A probe is a 112×112 aligned crop, protected "
        "as a photo (face geometry found as `chips_from_aligned_crops` finds it); the attacker "
        "runs the plain dlib pipeline (`chips_from_aligned_crops` + ResNet, threshold "
        f"{r['threshold']}) on the protected crop and compares it with the clean reference.",
        "",
        "Definitions (paper, eq. 8): **T_o** = share of original probes correctly classified "
        "(distance to own reference < threshold); **F_c** = share of protected probes "
        "incorrectly classified (distance ≥ threshold); **T_r** = share of restored probes "
        "correctly classified; **r_s** = F_c / (1 + T_o − F_c). Also shown: F_c among the "
        "probes the recognizer accepted when clean (the protection's own effect), and the "
        "embedding shift ‖R(protected) − R(original)‖ of the same image.",
        "",
        "| k | T_o | F_c | T_r | r_s | F_c (clean-accepted) | exact restores | SSIM mean (min) "
        "| PSNR dB | mean d to ref clean → protected | shift same image mean (max) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["rows"]:
        lines.append(
            f"| {x['k']} | {x['T_o']:.3f} | {x['F_c']:.3f} | {x['T_r']:.3f} | {x['r_s']:.3f} | "
            f"{x['F_c_given_accepted']:.3f} | {x['exact_restores']}/{x['n']} | "
            f"{x['ssim']:.4f} ({x['ssim_min']:.4f}) | {x['psnr']:.1f} | "
            f"{x['mean_d_to_ref_clean']:.3f} → {x['mean_d_to_ref_protected']:.3f} | "
            f"{x['mean_d_protected_vs_clean_same_image']:.3f} "
            f"({x['max_d_protected_vs_clean_same_image']:.3f}) |")
    if r.get("oracle_rows"):
        lines += ["", "Reference point, **not the shipped method** (pad not regenerable): same "
                  "template M and k, but the k low bits set to 2^k − 1 or 0 following the sign of "
                  "one dlib gradient, i.e. a pad that depends on the low bits and would have to "
                  "be stored in the key file. T_r is again T_o if that pad is stored.", "",
                  "| k | F_c | r_s | F_c (clean-accepted) | SSIM mean | mean d to ref protected |",
                  "|---|---|---|---|---|---|"]
        for x in r["oracle_rows"]:
            lines.append(f"| {x['k']} | {x['F_c']:.3f} | {x['r_s']:.3f} | "
                         f"{x['F_c_given_accepted']:.3f} | {x['ssim']:.4f} | "
                         f"{x['mean_d_to_ref_protected']:.3f} |")
    lines += ["", "## Reading", ""] + findings(r)
    lines += ["", "![original | protected | restored | amplified difference](mask.png)", "",
              f"`mask.png`: `jaxpriv/samples/two_people.jpg` at k = {config.figure_bits}: "
              "original | protected | restored | |protected − original| × 255/(2^k − 1); "
              "second row: the two faces enlarged (nearest neighbour).", ""]
    return "\n".join(lines) + "\n"

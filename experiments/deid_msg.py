"""``deid --generator mobilestylegan`` measured (issue 18): projection cost/quality and the
de-identification acceptance, on one split's identities (``config.eval_split``: validation while
choosing defaults, test for the reported table).

Faces: glint identities of the split (each 112×112 crop made a photo by padding 25 % and
upsampling ×3, as ``experiments/deid_eval.py``) and celeba299 identities of the split (256×256
loose crops); for each identity, photo 0 is protected and photo 1 is the reference ("a different
photo of the same identity").

Per face, timed (wall and process CPU seconds): alignment (FFHQ crop), projection (``steps`` Adam
steps of eq. 9), render (1024²), blend. Projection quality after each step ``s`` (no noise):
LPIPS-VGG(↓G(w_s), the 256² target crop) and the identity distances of the photo with ``G(w_s)``
pasted in to the original face (dlib, SFace). De-identification, per variant (ε, ψ): share of
faces that are another person than the reference photo for dlib AND for SFace (each at its own
threshold), and share still detected by HOG AND by YuNet (a box of IoU ≥ 0.3 with the original).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.results_io import write_results
from jaxpriv.data import split_identities
from jaxpriv.deid import msg_deid, vgg16
from jaxpriv.deid import w_project as wp
from jaxpriv.faces import Face, detect_faces, extract_chips
from jaxpriv.faces.align import photo_from_aligned_crop
from jaxpriv.faces.detect import arcface_landmarks_in_box, landmarks_in_box
from jaxpriv.io import load_image
from jaxpriv.machine import machine_description
from jaxpriv.protect import image_key
from jaxpriv.recognizers import load_recognizer


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(union, 1e-9)


def _photo(path: Path, glint: bool) -> tuple[np.ndarray, Face] | None:
    image = load_image(path)
    if glint:
        return photo_from_aligned_crop(image)
    faces = detect_faces(image)
    return (image, max(faces, key=lambda f: f.box[2] - f.box[0])) if faces else None


def faces_of_split(config: ml_collections.ConfigDict) -> list[dict]:
    """[{name, image, face, ref_image, ref_face}] for the split's identities (module doc)."""
    out = []
    for folder, glint, per in ((config.faces_dir, True, config.glint_identities),
                               (config.celeba_dir, False, config.celeba_identities)):
        names = split_identities(p.name for p in Path(folder).iterdir() if p.is_dir())
        for name in names[config.eval_split][:per]:
            files = sorted(p for p in (Path(folder) / name).iterdir()
                           if p.suffix in (".png", ".jpg"))
            photos = [x for x in (_photo(f, glint) for f in files[:4]) if x is not None]
            if len(photos) >= 2:
                (image, face), (ref, ref_face) = photos[:2]
                out.append({"name": f"{Path(folder).name}/{name}", "image": image, "face": face,
                            "ref_image": ref, "ref_face": ref_face})
    return out


class Judge:
    """Identity (dlib, SFace) and detection (HOG, YuNet) outcomes of protected photos."""

    def __init__(self) -> None:
        self.dlib, self.sface = load_recognizer("dlib_resnet"), load_recognizer("sface")

    def embed(self, image: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """dlib and SFace embeddings of the face in ``face.box`` (landmarks re-predicted)."""
        f = Face(face.box, landmarks_in_box(image, face.box), 0.0,
                 arcface_landmarks_in_box(image, face.box))
        return (self.dlib.embed(extract_chips(image, [f], self.dlib)[0])[0],
                self.sface.embed(extract_chips(image, [f], self.sface)[0])[0])

    def outcome(self, image: np.ndarray, face: Face, ref: tuple[np.ndarray, np.ndarray]) -> dict:
        e_dlib, e_sface = self.embed(image, face)
        d_dlib = float(np.linalg.norm(e_dlib - ref[0]))
        d_sface = float(np.linalg.norm(e_sface - ref[1]))
        hog = any(_iou(d.box, face.box) >= 0.3 for d in detect_faces(image, detector="hog"))
        yunet = any(_iou(d.box, face.box) >= 0.3 for d in detect_faces(image, detector="yunet"))
        return {"d_dlib": d_dlib, "d_sface": d_sface,
                "other_dlib": d_dlib > self.dlib.threshold,
                "other_sface": d_sface > self.sface.threshold, "hog": hog, "yunet": yunet}


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(t: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - t[0], time.process_time() - t[1]


def run(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Measure (module doc); write ``<msg_results>_<eval_split>.{json,md}`` (raw outcomes so
    far in ``workdir/deid_msg_raw.json`` after every face)."""
    t_start = time.time()
    judge, faces = Judge(), faces_of_split(config)
    project = msg_deid.projector(int(config.msg_steps))
    mean, std = wp.w_stats()
    vgg, heads = vgg16.load_lpips()
    lpips = jax.jit(lambda a, b: vgg16.lpips(vgg, heads, a, b))
    variants = [(f"bounded ε={e:g} ψ={p:g}", msg_deid.mechanism("bounded", e, 1.0, config.clip, p))
                for e, p in config.msg_variants]
    timing = {k: [] for k in ("align", "project", "render", "blend")}
    quality: dict[int, dict[str, list]] = {s: {"lpips": [], "d_dlib": [], "d_sface": []}
                                           for s in range(config.msg_steps + 1)}
    rows: dict[str, list[dict]] = {"original": [], **{n: [] for n, _ in variants}}
    for k, item in enumerate(faces):
        image, face = item["image"], item["face"]
        ref = judge.embed(item["ref_image"], item["ref_face"])
        own = judge.embed(image, face)
        rows["original"].append(judge.outcome(image, face, ref))
        t = _clock()
        target, transforms = msg_deid.align_faces(image, [face])
        timing["align"].append(_since(t))
        t = _clock()
        trace, _ = project.trace(target)
        timing["project"].append(_since(t) if k else (np.nan, np.nan))  # 1st: + compilation
        for s in range(config.msg_steps + 1):  # projection quality after s steps, no noise
            render = wp.render(trace[:, s])
            small = wp.downsample(wp.from_uint8(render), wp.WProjectConfig.loss_size)
            quality[s]["lpips"].append(float(lpips(small, wp.from_uint8(target))[0]))
            pasted = msg_deid.blend_faces(image, [face], render, transforms, config.mask)
            e_dlib, e_sface = judge.embed(pasted, face)
            quality[s]["d_dlib"].append(float(np.linalg.norm(e_dlib - own[0])))
            quality[s]["d_sface"].append(float(np.linalg.norm(e_sface - own[1])))
        key = jax.random.fold_in(image_key(config.seed, item["name"]), 0)
        for name, mech in variants:
            w = mech(key, jnp.asarray(trace[0, -1]), mean, std)[None]
            t = _clock()
            render = wp.render(w)
            timing["render"].append(_since(t))
            t = _clock()
            out = msg_deid.blend_faces(image, [face], render, transforms, config.mask)
            timing["blend"].append(_since(t))
            rows[name].append(judge.outcome(out, face, ref))
        print(f"{k + 1}/{len(faces)} {item['name']}", flush=True)
        raw = {"rows": rows, "quality": quality, "timing": timing}
        Path(workdir).mkdir(parents=True, exist_ok=True)
        (Path(workdir) / "deid_msg_raw.json").write_text(json.dumps(raw, default=float))
    result = summarise(config, faces, variants, rows, quality, timing)
    result["meta"] = {"command": config.command, "machine": machine_description(),
                      "wall_minutes": (time.time() - t_start) / 60}
    out = ml_collections.ConfigDict({"out_json": f"{config.msg_results}_{config.eval_split}.json",
                                     "out_md": f"{config.msg_results}_{config.eval_split}.md"})
    write_results(out, result, markdown(config, result))
    return result


def _mean_pair(xs: list[tuple[float, float]]) -> list[float]:
    a = np.asarray(xs, np.float64)
    return [float(np.nanmean(a[:, 0])), float(np.nanmean(a[:, 1]))]


def summarise(config: ml_collections.ConfigDict, faces: list[dict], variants: list,
              rows: dict, quality: dict, timing: dict) -> dict:
    """Shares, means and the per-face time split."""
    table = {}
    for name, outs in rows.items():
        table[name] = {k: float(np.mean([o[k] for o in outs])) for k in outs[0]}
        table[name]["other_both"] = float(np.mean([o["other_dlib"] and o["other_sface"]
                                                   for o in outs]))
        table[name]["detected_both"] = float(np.mean([o["hog"] and o["yunet"] for o in outs]))
    return {"split": config.eval_split, "faces": [f["name"] for f in faces],
            "mechanisms": {n: m.describe() for n, m in variants}, "deid": table,
            "projection": {str(s): {k: float(np.mean(v)) for k, v in q.items()}
                           for s, q in quality.items()},
            "seconds_per_face": {k: _mean_pair(v) for k, v in timing.items()}}


def markdown(config: ml_collections.ConfigDict, r: dict) -> str:
    """The report."""
    sec = r["seconds_per_face"]
    lines = [f"# deid with MobileStyleGAN on {r['split']} identities ({len(r['faces'])} faces)",
             "", f"Command: `{config.command}`  ",
             f"Machine: {r['meta']['machine']}; wall {r['meta']['wall_minutes']:.1f} min.", "",
             "## Time per face (wall s / process CPU s; projection without its compilation)", "",
             "| alignment | projection | render | blend | total |", "|---:|---:|---:|---:|---:|",
             "| " + " | ".join(f"{sec[k][0]:.2f} / {sec[k][1]:.2f}"
                              for k in ("align", "project", "render", "blend"))
             + f" | {sum(sec[k][0] for k in sec):.2f} / {sum(sec[k][1] for k in sec):.2f} |",
             "", "## Projection (eq. 9) after s Adam steps, no noise", "",
             "| steps | LPIPS(↓G(w), target 256²) | dlib d to original | SFace d to original |",
             "|---:|---:|---:|---:|"]
    for s, q in r["projection"].items():
        lines.append(f"| {s} | {q['lpips']:.3f} | {q['d_dlib']:.3f} | {q['d_sface']:.3f} |")
    lines += ["", "## De-identification (against another photo of the same identity)", "",
              "| variant | other (dlib) % | other (SFace) % | other (both) % | HOG % | YuNet % "
              "| detected (both) % | mean dlib d | mean SFace d |", "|---|" + "---:|" * 8]
    for name, t in r["deid"].items():
        lines.append(f"| {name} | {100 * t['other_dlib']:.0f} | {100 * t['other_sface']:.0f} | "
                     f"{100 * t['other_both']:.0f} | {100 * t['hog']:.0f} | "
                     f"{100 * t['yunet']:.0f} | {100 * t['detected_both']:.0f} | "
                     f"{t['d_dlib']:.3f} | {t['d_sface']:.3f} |")
    lines += ["", "## Mechanisms", ""] + [f"- {k}: {v}" for k, v in r["mechanisms"].items()]
    return "\n".join(lines) + "\n"

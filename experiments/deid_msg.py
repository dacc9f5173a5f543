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
Each variant is blended into ``config.msg_region``; ``config.msg_regions`` adds a row per other
region (``"<variant> region=<r>"``) blended from the same render — same projection, same noised
``w`` — so only the region differs between those rows.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.results_io import recorded_command, write_results
from jaxpriv.data import split_identities
from jaxpriv.deid import ffhq, msg_deid, vgg16
from jaxpriv.deid import w_project as wp
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face, detect_faces, extract_chips
from jaxpriv.faces.align import photo_from_aligned_crop
from jaxpriv.faces.detect import arcface_landmarks_in_box, landmarks_in_box
from jaxpriv.io import load_image
from jaxpriv.machine import machine_description
from jaxpriv.methods import get_method
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
    """[{name, image, face, ref_image, ref_face}] for the split's identities (module doc):
    ``config.glint_pairs`` (protected, reference) photo pairs per glint identity, one per
    celeba299 identity."""
    out = []
    for folder, glint, per, pairs in (
            (config.faces_dir, True, config.glint_identities, config.glint_pairs),
            (config.celeba_dir, False, config.celeba_identities, 1)):
        names = split_identities(p.name for p in Path(folder).iterdir() if p.is_dir())
        for name in names[config.eval_split][:per]:
            files = sorted(p for p in (Path(folder) / name).iterdir()
                           if p.suffix in (".png", ".jpg"))
            photos = [x for x in (_photo(f, glint) for f in files[:2 * pairs + 2])
                      if x is not None]
            for i in range(min(pairs, len(photos) // 2)):
                (image, face), (ref, ref_face) = photos[2 * i:2 * i + 2]
                out.append({"name": f"{Path(folder).name}/{name}" + (f"#{i}" if i else ""),
                            "image": image, "face": face, "ref_image": ref,
                            "ref_face": ref_face})
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


def _crop(image: np.ndarray, face: Face, size: int = 192) -> np.ndarray:
    """The face's box + 25 % as a ``size``² tile (for the figure)."""
    x0, y0, x1, y1 = face.box
    c, r = ((x0 + x1) / 2, (y0 + y1) / 2), 0.625 * max(x1 - x0, y1 - y0)
    a = np.array([[size / (2 * r), 0, size / 2 - c[0] * size / (2 * r)],
                  [0, size / (2 * r), size / 2 - c[1] * size / (2 * r)]])
    return cv2.warpAffine(image, a, (size, size), flags=cv2.INTER_AREA)


def figure(tiles: list[list[np.ndarray]], labels: list[str], path: str) -> None:
    """Rows of face tiles under a header of column labels."""
    grid = np.concatenate([np.concatenate(row, 1) for row in tiles], 0)
    header = np.full((28, grid.shape[1], 3), 255, np.uint8)
    for k, label in enumerate(labels):
        cv2.putText(header, label, (k * 192 + 6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    cv2.imwrite(path, cv2.cvtColor(np.concatenate([header, grid], 0), cv2.COLOR_RGB2BGR))


def row_names(config: ml_collections.ConfigDict, variants: list) -> list[str]:
    """The rows of the variants: each in ``config.msg_region``, then in every other region of
    ``config.msg_regions``."""
    return [n for n, _ in variants] + [f"{n} region={r}" for n, _ in variants
                                       for r in config.msg_regions]


def measure(config: ml_collections.ConfigDict, workdir: str | Path, variants: list, raw: dict,
            raw_path: Path) -> None:
    """Measure the faces not yet in ``raw`` (up to ``msg_max_faces``), saving ``raw`` to
    ``raw_path`` after every face (module doc)."""
    t_start, minutes = time.time(), raw["minutes"]
    judge, faces = Judge(), faces_of_split(config)
    eval_step = int(config.msg_eval_step)  # the noised w is w after eval_step ≤ msg_steps steps
    project = msg_deid.projector(int(config.msg_steps))
    mean, std = wp.w_stats()
    vgg, heads = vgg16.load_lpips()
    lpips = jax.jit(lambda a, b: vgg16.lpips(vgg, heads, a, b))
    baselines = {label: get_method(name).make(**dict(opts))
                 for label, name, opts in config.msg_baselines}
    rows = raw["rows"] or {"original": [], **{n: [] for n in row_names(config, variants)},
                           **{n: [] for n in baselines}}
    timing = raw["timing"] or {k: [] for k in ("align", "project", "render", "blend",
                                               *baselines)}
    quality = {int(s): q for s, q in raw["quality"].items()} or {
        s: {"lpips": [], "d_dlib": [], "d_sface": []} for s in range(config.msg_steps + 1)}
    raw["rows"], raw["timing"], raw["quality"] = rows, timing, quality
    tiles_path = Path(workdir) / "deid_msg_tiles.npz"
    tiles = dict(np.load(tiles_path)) if tiles_path.exists() else {}
    first = True  # its times include compilation: left out
    for k, item in enumerate(faces[:config.msg_max_faces or len(faces)]):
        if k < len(raw["names"]):
            continue
        image, face = item["image"], item["face"]
        ref = judge.embed(item["ref_image"], item["ref_face"])
        own = judge.embed(image, face)
        rows["original"].append(judge.outcome(image, face, ref) | {"lpips_photo": 0.0})
        t = _clock()
        target, transforms = msg_deid.align_faces(image, [face])
        timing["align"].append(_since(t))
        t = _clock()
        trace, _ = project.trace(target)  # w after 0 … msg_steps steps
        timing["project"].append((np.nan, np.nan) if first else _since(t))
        w_star = trace[:, eval_step]
        for s in range(config.msg_steps + 1) if config.msg_quality else ():  # no noise
            render = wp.render(trace[:, s])
            small = wp.downsample(wp.from_uint8(render), wp.WProjectConfig.loss_size)
            quality[s]["lpips"].append(float(lpips(small, wp.from_uint8(target))[0]))
            pasted = msg_deid.blend_faces(image, [face], render, transforms, config.msg_region)
            e_dlib, e_sface = judge.embed(pasted, face)
            quality[s]["d_dlib"].append(float(np.linalg.norm(e_dlib - own[0])))
            quality[s]["d_sface"].append(float(np.linalg.norm(e_sface - own[1])))
        key = jax.random.fold_in(image_key(config.seed, item["name"]), 0)
        outs = {}
        for name, mech in variants:
            w = mech(key, jnp.asarray(w_star[0]), mean, std)[None]
            t = _clock()
            render = wp.render(w)
            timing["render"].append((np.nan, np.nan) if first else _since(t))
            for region in (config.msg_region, *config.msg_regions):
                t = _clock()
                row = name if region == config.msg_region else f"{name} region={region}"
                outs[row] = msg_deid.blend_faces(image, [face], render, transforms, region)
                timing["blend"].append(_since(t))
        for name, protect in baselines.items():
            t = _clock()
            outs[name] = protect(image, [face], key)
            timing[name].append((np.nan, np.nan) if first else _since(t))
        whole = wp.from_uint8(image[None])
        for name, out in outs.items():
            d = float(lpips(wp.from_uint8(out[None]), whole)[0])
            rows[name].append(judge.outcome(out, face, ref) | {"lpips_photo": d})
        if k < config.figure_faces:
            tiles |= {f"{k}/original": _crop(image, face)}
            tiles |= {f"{k}/{n}": _crop(o, face) for n, o in outs.items()}
            np.savez(tiles_path, **tiles)
        print(f"{k + 1}/{len(faces)} {item['name']}", flush=True)
        first = False
        raw["names"].append(item["name"])
        raw["minutes"] = minutes + (time.time() - t_start) / 60
        raw_path.write_text(json.dumps(raw, default=float))


def run(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Measure (module doc); write ``<msg_results>_<eval_split>.{json,md}`` (test: ``out_json``,
    ``out_md`` and the figure ``out_png``). Outcomes so far are kept in
    ``workdir/deid_msg_raw_<split>.json`` after every face; a rerun with the same workdir
    resumes after them, and ``msg_max_faces`` > 0 stops after that many faces (a rerun with it
    at most the faces done only writes the results)."""
    Path(workdir).mkdir(parents=True, exist_ok=True)
    variants = [(f"bounded ε={e:g} ψ={p:g}", msg_deid.mechanism("bounded", e, 1.0, config.clip, p))
                for e, p in config.msg_variants]
    regions = (config.msg_region, *config.msg_regions)
    if len(set(regions)) < len(regions) or not set(regions) <= set(ffhq.REGIONS):
        raise JaxprivError(f"msg_region {config.msg_region!r} and msg_regions "
                         f"{config.msg_regions!r} must be distinct names of {ffhq.REGIONS}")
    raw_path = Path(workdir) / f"deid_msg_raw_{config.eval_split}.json"
    raw = (json.loads(raw_path.read_text()) if raw_path.exists() else
           {"names": [], "rows": {}, "timing": {}, "quality": {}, "minutes": 0.0})
    if not 0 < config.msg_max_faces <= len(raw["names"]):
        measure(config, workdir, variants, raw, raw_path)
    n = config.msg_max_faces or len(raw["names"])
    faces = [{"name": name} for name in raw["names"][:n]]
    rows = {k: v[:n] for k, v in raw["rows"].items()}
    per_face = {"render": len(variants), "blend": len(variants) * len(regions)}
    timing = {k: v[:n * per_face.get(k, 1)] for k, v in raw["timing"].items()}
    quality = {int(s): {k: v[:n] for k, v in q.items()} for s, q in raw["quality"].items()}
    tiles = []
    columns, labels = config.figure_columns, config.figure_labels
    if config.eval_split != "test":  # every row, labelled in ASCII (cv2 text)
        columns = row_names(config, variants)
        labels = [c.split("region=")[-1] if "region=" in c else
                  c.replace("bounded ε=", "e=").replace("ψ=", "psi=") for c in columns]
    if config.figure_faces and (Path(workdir) / "deid_msg_tiles.npz").exists():
        with np.load(Path(workdir) / "deid_msg_tiles.npz") as z:
            tiles = [{c: z[f"{i}/{c}"] for c in ("original", *columns)}
                     for i in range(min(config.figure_faces, n))]
    result = summarise(config, faces, variants, rows, quality, timing)
    result["regions"] = {r: ffhq.REGION_HELP[r] for r in regions}
    argv = [a for a in sys.argv[1:] if not a.startswith("--config.msg_note")]  # printed apart
    result["meta"] = {"command": recorded_command(argv), "machine": machine_description(),
                      "wall_minutes": raw["minutes"]}  # of the measuring run(s)
    out = ml_collections.ConfigDict({"out_json": f"{config.msg_results}_{config.eval_split}.json",
                                     "out_md": f"{config.msg_results}_{config.eval_split}.md"})
    png = f"{config.msg_results}_{config.eval_split}.png"
    if config.eval_split == "test":
        out = ml_collections.ConfigDict({"out_json": config.out_json, "out_md": config.out_md})
        png = config.out_png
    if tiles:
        figure([[row[c] for c in ("original", *columns)] for row in tiles],
               ["original", *labels], png)
    write_results(out, result, markdown(config, result))
    return result


def _mean_pair(xs: list[tuple[float, float]]) -> list[float]:
    a = np.asarray(xs, np.float64)
    return [float(np.nanmean(a[:, 0])), float(np.nanmean(a[:, 1]))]


def chosen(table: dict, names: list[str]) -> str | None:
    """The default rule: of the variants with ≥ 95 % another person for dlib AND SFace and ≥ 95 %
    detected by HOG AND YuNet, the smallest ε (the most noise), then the lowest photo LPIPS."""
    ok = [n for n in names if table[n]["other_both"] >= 0.95 and table[n]["detected_both"] >= 0.95]
    eps = {n: float(n.split("ε=")[1].split()[0]) for n in ok}
    return min(ok, key=lambda n: (eps[n], table[n]["lpips_photo"])) if ok else None


def summarise(config: ml_collections.ConfigDict, faces: list[dict], variants: list,
              rows: dict, quality: dict, timing: dict) -> dict:
    """Shares, means, the per-face time split and (validation) the chosen default."""
    table = {}
    for name, outs in rows.items():
        table[name] = {k: float(np.mean([o[k] for o in outs])) for k in outs[0]}
        table[name]["other_both"] = float(np.mean([o["other_dlib"] and o["other_sface"]
                                                   for o in outs]))
        table[name]["detected_both"] = float(np.mean([o["hog"] and o["yunet"] for o in outs]))
    return {"split": config.eval_split, "faces": [f["name"] for f in faces],
            "eval_step": int(config.msg_eval_step),
            "mechanisms": {n: m.describe() for n, m in variants}, "deid": table,
            "chosen": (chosen(table, row_names(config, variants))  # the rule, on validation only
                       if config.eval_split == "validation" else None),
            "projection": {str(s): {k: float(np.mean(v)) for k, v in q.items()}
                           for s, q in quality.items() if q["lpips"]},
            "seconds_per_face": {k: _mean_pair(v) for k, v in timing.items()}}


def _table(r: dict, names: list[str], mark: str) -> list[str]:
    lines = ["| variant | other (dlib) % | other (SFace) % | other (both) % | HOG % | YuNet % "
             "| detected (both) % | mean dlib d | mean SFace d | LPIPS photo |",
             "|---|" + "---:|" * 9]
    for name in names:
        t = r["deid"][name]
        label = f"**{name}** (default)" if name == mark else name
        lines.append(f"| {label} | {100 * t['other_dlib']:.0f} | {100 * t['other_sface']:.0f} | "
                     f"{100 * t['other_both']:.0f} | {100 * t['hog']:.0f} | "
                     f"{100 * t['yunet']:.0f} | {100 * t['detected_both']:.0f} | "
                     f"{t['d_dlib']:.3f} | {t['d_sface']:.3f} | {t['lpips_photo']:.3f} |")
    return lines


def _default_row(config: ml_collections.ConfigDict, r: dict) -> str:
    """The row of ``jaxpriv.deid.method``'s default (ε, ψ: ``msg_default``; its region) in the
    results ``r`` (rows without ``region=`` are in the run's first region)."""
    from jaxpriv.deid.method import DEFAULT_REGION

    own = next(iter(r.get("regions", {"hull68": ""})))  # files before regions: hull68
    default = DEFAULT_REGION["mobilestylegan"]
    return config.msg_default + ("" if own == default else f" region={default}")


def markdown(config: ml_collections.ConfigDict, r: dict) -> str:
    """The report (test: the table at the default, then the validation sweep if written)."""
    sec, msg = r["seconds_per_face"], ("align", "project", "render", "blend")
    total = [sum(sec[k][i] for k in msg) for i in (0, 1)]
    title = ("# DP face de-identification (paper 001) with MobileStyleGAN" if r["split"] == "test"
             else "# deid with MobileStyleGAN: choosing the default")
    lines = [title, "", f"{len(r['faces'])} faces of the **{r['split']}** identities of glint and "
             f"celeba299 (`jaxpriv.data.splits`); each protected photo is compared with a "
             "*different* photo of the same identity, each recognizer at its own threshold. "
             "MobileStyleGAN deid, blur and mosaic use no recognizer: **black-box** for dlib and "
             "SFace; the old 64×64 deid projects with dlib ResNet features: **white-box** for "
             "dlib, black-box for SFace.", "",
             f"Command: `{r['meta']['command']}`  ",
             *([f"Note: {config.msg_note}  "] if config.msg_note else []),
             f"Machine: {r['meta']['machine']}; wall {r['meta']['wall_minutes']:.1f} min.", "",
             f"## Time per face (wall s / process CPU s, {r['eval_step']} projection step(s); "
             "first face left out: compilation)", "",
             "| alignment | projection | render | blend | total |", "|---:|---:|---:|---:|---:|",
             "| " + " | ".join(f"{sec[k][0]:.2f} / {sec[k][1]:.2f}" for k in msg)
             + f" | {total[0]:.2f} / {total[1]:.2f} |", ""]
    others = [k for k in sec if k not in msg]
    if others:
        lines += ["| other method | wall s / CPU s per face | MobileStyleGAN deid ÷ it "
                  "(wall, CPU) |",
                  "|---|---:|---:|"]
        lines += [f"| {k} | {sec[k][0]:.2f} / {sec[k][1]:.2f} | {total[0] / sec[k][0]:.1f}, "
                  f"{total[1] / sec[k][1]:.1f} |" for k in others]
        lines.append("")
    if r["projection"]:
        lines += ["## Projection (eq. 9) after s Adam steps from w_avg, no noise", "",
                  "| steps | LPIPS(↓G(w), target 256²) | dlib d to original "
                  "| SFace d to original |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {s} | {q['lpips']:.3f} | {q['d_dlib']:.3f} | {q['d_sface']:.3f} |"
                  for s, q in r["projection"].items()]
        lines.append("")
    lines += ["## De-identification (against another photo of the same identity)", ""]
    lines += _table(r, list(r["deid"]), _default_row(config, r))
    lines += ["", "LPIPS photo: LPIPS-VGG of the whole protected photo vs the original.", ""]
    if len(r.get("regions", {})) > 1:
        lines += [f"Face region (`jaxpriv.deid.ffhq`): rows without `region=` use "
                  f"{config.msg_region}; a `region=` row blends the same render (same "
                  "projection, same noised w) into that region instead:", ""]
        lines += [f"- {k}: {v}" for k, v in r["regions"].items()]
        lines.append("")
    lines += ["## Mechanisms", ""] + [f"- {k}: {v}" for k, v in r["mechanisms"].items()]
    for what, stem in (("ε and ψ", config.msg_results), ("face region", config.msg_region_results)):
        sweep = Path(f"{stem}_validation.json")
        if r["split"] == "test" and sweep.exists():
            v = json.loads(sweep.read_text())
            lines += ["", f"## Sweep of {what} (validation identities, {len(v['faces'])} faces; "
                      f"`{sweep.name[:-5]}.md`)", ""]
            lines += _table(v, list(v["deid"]), _default_row(config, v))
    if r["split"] == "validation":
        lines += ["", "Rule: of the variants with ≥ 95 % another person for dlib AND SFace and "
                  "≥ 95 % detected by HOG AND YuNet, the smallest ε (the most noise), then the "
                  "lowest LPIPS photo: "
                  + (f"**{r['chosen']}**." if r["chosen"] else "**no variant meets it**; the "
                     f"default stays {_default_row(config, r)} (jaxpriv.deid.method's "
                     "MSG_EPSILON and DEFAULT_REGION).")]
    return "\n".join(lines) + "\n"

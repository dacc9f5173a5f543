"""How repeatable is an exact SMNA map (Alg. 1)? The ceiling for any map predictor (issue 19).

For each of the first `n_faces` identities of `config.split` (sorted names) with a face in its
first two photos: photo 1 is the portrait (reference embedding of its chip), photo 2 the face
``x``. Its black map m(x) at `image_size` is compared (Spearman over the pixels) with

* ``flip``: m(mirror(x)) mirrored back — is the map of the flipped face the flipped map?
* ``shift``: m(x') where x' comes from the photo shifted right by one pixel (edge repeated)
  through the whole pipeline again (detection, dlib chip, area resize): alignment jitter;
* ``jpeg``: m(x') with x' from the photo after a JPEG round trip at `jpeg_quality`;
* ``other_faces`` (the floor): m(x) of one face vs m(x) of every other face.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import ml_collections
import numpy as np
from scipy.stats import spearmanr

from experiments.results_io import recorded_command, write_results
from jaxpriv.eval.protocol import jpeg
from jaxpriv.machine import machine_description

VARIANTS = ("flip", "shift", "jpeg")


def _shifted(photo: np.ndarray) -> np.ndarray:
    """The photo moved one pixel right (first column repeated)."""
    return np.concatenate([photo[:, :1], photo[:, :-1]], axis=1)


def run(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Maps of `n_faces` faces and their variants; Spearman per variant (module doc)."""
    from jaxpriv.data.identity_faces import list_identity_images
    from jaxpriv.data.splits import identity_split
    from jaxpriv.io import load_image
    from jaxpriv.recognizers import load_recognizer
    from jaxpriv.smna.dataset import central_face, chips_of
    from jaxpriv.smna.sensitivity import sensitivity_maps, to_smna_image

    rec = load_recognizer(config.recognizer)
    root = Path(config.faces_dir)

    def smna_image(photo: np.ndarray) -> np.ndarray | None:
        face = central_face(photo, config.detector)
        if face is None:
            return None
        return to_smna_image(chips_of([photo], [face], rec.input_size, config.detector),
                             config.image_size)[0]

    faces, images, refs = [], [], []
    for name, files in list_identity_images(root).items():
        if len(faces) == config.n_faces:
            break
        if identity_split(name) != config.split or len(files) < 2:
            continue
        portrait, photo = (load_image(root / name / f) for f in files[:2])
        ref_face = central_face(portrait, config.detector)
        variants = {"x": photo, "shift": _shifted(photo),
                    "jpeg": jpeg(photo, config.jpeg_quality)}
        smna = {k: smna_image(v) for k, v in variants.items()}
        if ref_face is None or any(v is None for v in smna.values()):
            continue
        chip = chips_of([portrait], [ref_face], rec.input_size, config.detector)
        refs.append(rec.embed(chip)[0])
        smna["flip"] = smna["x"][:, ::-1]
        images.append(smna)
        faces.append(f"{name}/{files[1]}")
    keys = ("x", *VARIANTS)
    batch = np.stack([im[k] for im in images for k in keys])
    ref_batch = np.repeat(np.stack(refs), len(keys), axis=0)
    maps, _ = sensitivity_maps(rec, batch, ref_batch, "black", chunk=config.chunk)
    maps = maps.reshape(len(images), len(keys), *maps.shape[1:])
    maps[:, keys.index("flip")] = maps[:, keys.index("flip"), :, ::-1]  # flip the map back

    def rho(a: np.ndarray, b: np.ndarray) -> float:
        return float(spearmanr(a.ravel(), b.ravel()).statistic)

    per_face = {v: [rho(m[0], m[keys.index(v)]) for m in maps] for v in VARIANTS}
    per_face["other_faces"] = [rho(maps[i, 0], maps[j, 0])
                               for i, j in itertools.combinations(range(len(images)), 2)]
    diff = {v: [float(np.abs(smna_images[keys.index(v)].astype(int)
                             - smna_images[0].astype(int)).mean())
                for smna_images in [[im[k] for k in keys] for im in images]]
            for v in ("shift", "jpeg")}
    result = {
        "command": recorded_command(),
        "machine": machine_description(), "recognizer": config.recognizer,
        "image_size": config.image_size, "color": "black", "split": config.split,
        "detector": config.detector, "jpeg_quality": config.jpeg_quality, "faces": faces,
        "spearman": per_face,
        "summary": {k: {"mean": float(np.mean(v)), "min": float(np.min(v)),
                        "max": float(np.max(v)), "n": len(v)} for k, v in per_face.items()},
        "image_mean_abs_diff": {k: float(np.mean(v)) for k, v in diff.items()},
    }
    write_results(config, result, _markdown(result))
    return result


def _markdown(r: dict) -> str:
    s = r["summary"]
    what = {"flip": "map of the mirrored face vs the mirrored map",
            "shift": "photo shifted 1 px (full pipeline again)",
            "jpeg": f"photo after a JPEG round trip (quality {r['jpeg_quality']})",
            "other_faces": "floor: map of one face vs another face's"}
    lines = [
        "# SMNA: repeatability of exact maps (Alg. 1), the ceiling for a map predictor",
        "",
        f"Command: `{r['command']}`  ",
        f"Machine: {r['machine']}.  ",
        f"{len(r['faces'])} faces of {r['split']} identities (photo 2 of the first identities in "
        f"sorted order; reference = photo 1), {r['detector']} detection, dlib chip, "
        f"{r['image_size']}×{r['image_size']} SMNA image, {r['recognizer']}, black noise only "
        "(kept small: it shares the CPU with the long map run). Spearman ρ over the pixels of "
        "the two maps (scipy.stats.spearmanr).",
        "",
        "| comparison | mean ρ | min ρ | max ρ | pairs |",
        "|---|---|---|---|---|",
    ]
    for k in ("flip", "shift", "jpeg", "other_faces"):
        lines.append(f"| {what[k]} | {s[k]['mean']:.3f} | {s[k]['min']:.3f} | "
                     f"{s[k]['max']:.3f} | {s[k]['n']} |")
    lines += ["", f"Mean absolute change of the {r['image_size']}² uint8 SMNA image (grey levels): "
              + ", ".join(f"{k} {v:.2f}" for k, v in r["image_mean_abs_diff"].items()) + ".",
              "", "Per face (flip, shift, jpeg):", ""]
    for i, f in enumerate(r["faces"]):
        lines.append(f"- `{f}`: " + ", ".join(f"{r['spearman'][k][i]:.3f}" for k in VARIANTS))
    return "\n".join(lines) + "\n"

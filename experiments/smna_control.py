"""Does the SMGG map matter? Alg. 3 noise of one budget δ with four maps (paper 000 lacks this).

For each probe chip (dlib-exact, from a pre-aligned glint crop) the change is
``noise_delta(map, δ)`` (Alg. 3: centred, scaled to L2 = δ in grey levels at 64×64, up-sampled to
the chip), with ``map`` = G(x) of the shipped SMGG checkpoint; an i.i.d. Gaussian map; G(x) with
its pixels shuffled (same values, no spatial structure); the mean of G(x) over all probes (a
fixed, face-shaped map that ignores the image). Same-person rate (dlib distance < 0.6) of each
protected probe against its identity's reference image.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from jaxpriv.faces import chips_from_aligned_crops
from jaxpriv.machine import machine_description
from jaxpriv.methods import get_method
from jaxpriv.recognizers import load_recognizer
from jaxpriv.smna import noise as alg3
from jaxpriv.smna.method import load_checkpoint, resolve_checkpoint
from jaxpriv.smna.sensitivity import to_smna_image
from jaxpriv.smna.smgg import generator_apply

THRESHOLD = 0.6


def probes(config: ml_collections.ConfigDict) -> tuple[np.ndarray, list[int]]:
    """(probe chips uint8 (N, 150, 150, 3), identity index per probe); references first."""
    chips, owner = [], []
    for i, name in enumerate(config.identities):
        files = sorted((Path(config.faces_dir) / name).iterdir())[: config.probes_per_identity + 1]
        crops = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
        chips.append(chips_from_aligned_crops(crops))
        owner += [i] * len(files)
    return np.concatenate(chips), owner


def control_maps(g: jnp.ndarray, seed: int) -> dict[str, jnp.ndarray]:
    """The four (N, 64, 64) maps compared."""
    rng = np.random.default_rng(seed)
    n = g.shape[0]
    perm = rng.permutation(g.shape[1] * g.shape[2])
    return {
        "SMGG G(x)": g,
        "i.i.d. Gaussian": jnp.asarray(rng.standard_normal(g.shape), jnp.float32),
        "G(x), pixels shuffled": g.reshape(n, -1)[:, perm].reshape(g.shape),
        "mean of G(x) (fixed map)": jnp.broadcast_to(g.mean(0), g.shape),
    }


def run(config: ml_collections.ConfigDict) -> dict:
    rec = load_recognizer("dlib_resnet")
    opts = get_method("smna").defaults()
    path = resolve_checkpoint(opts["checkpoint"], config.noise)
    generator, meta = load_checkpoint(str(path), config.noise)
    chips, owner = probes(config)
    is_ref = np.r_[True, np.diff(owner) != 0]
    refs = rec.embed(chips[is_ref])[np.asarray(owner)[~is_ref]]
    probe = chips[~is_ref]
    g, _ = generator_apply(generator, jnp.asarray(to_smna_image(probe), jnp.float32) / 255.0,
                           train=False)
    maps = control_maps(alg3.noise_map(g), config.seed)
    clean = np.linalg.norm(rec.embed(probe) - refs, axis=1)
    rows = []
    for level in config.noise_levels:
        for name, m in maps.items():
            delta = alg3.noise_delta(m, level, config.noise, config.noise_sign, config.noise_norm)
            out = jnp.clip(probe.astype(np.float32) + alg3.upsample_delta(delta, 150)[..., None],
                           0, 255)
            d = np.linalg.norm(rec.embed(np.asarray(out).round().astype(np.uint8)) - refs, axis=1)
            rows.append((level, name, float(np.mean(d < THRESHOLD)), float(d.mean())))
    lines = ["# SMNA: does the map matter? Alg. 3 noise with four maps of the same budget", "",
             f"Command: `{config.command}`  ",
             f"Machine: {machine_description()}. Checkpoint `ckpt/{path.name}`"
             f" ({meta.get('train_images')} training maps, width {meta.get('width')}); noise "
             f"{config.noise}, sign {config.noise_sign}, |·| = {config.noise_norm}.", "",
             f"Probes: {len(probe)} glint crops of {len(config.identities)} identities the "
             f"checkpoint never saw ({', '.join(config.identities)}); reference = first sorted "
             f"image of each. Clean same-person rate (d < 0.6): {np.mean(clean < THRESHOLD):.1%}, "
             f"mean d {clean.mean():.3f}.", "",
             "| δ (L2, grey levels at 64×64) | map | same person % | mean dlib d |",
             "|---:|---|---:|---:|"]
    lines += [f"| {lv:g} | {name} | {100 * tar:.1f} | {d:.3f} |" for lv, name, tar, d in rows]
    lines += ["", __doc__.split("\n\n", 1)[1].replace("\n", " ").strip(), ""]
    Path(config.out_md).write_text("\n".join(lines))
    print("\n".join(lines))
    return {"rows": rows}

"""Table III of paper 000 (SMNA) on held-out identities, with the controls the paper lacks.

Data: the ``config.eval_split`` split (``test`` by default; :mod:`jaxpriv.data.splits`) of the
ground-truth map set (:func:`jaxpriv.smna.dataset.load_maps`):
64×64 SMNA images of identities that no SMGG checkpoint was trained on, their exact Alg. 1 maps y
(black and white) and the embedding of their identity's reference portrait.

For each noise colour, δ in ``noise_levels`` and weighting map, the protected image is
``round(clip(x + change))`` at 64×64 with the Alg. 3 change ``noise_delta(map, δ)`` (|·| = L2 in
grey levels, the working sign; :mod:`jaxpriv.smna.noise`). It reaches dlib through the same
64 → 150 resize as the maps (``sensitivity.to_chip``). Per cell: mean dlib distance to the
reference, share still the same person (d < 0.6) and mean SSIM(x', x).

Weighting maps (columns):

- ``y``: the image's own ground-truth map of that colour (what SMGG tries to predict);
- ``G(x)``: the SMGG checkpoint of that colour;
- ``random, same L2``: an i.i.d. Gaussian map through Alg. 3: zero mean, L2 = δ;
- ``random, same L1``: that Gaussian change rescaled to the L1 norm of the G(x) change
  (zero mean, same L1);
- ``mean training map``: the mean normalised y of the ``train`` split, a fixed face-shaped map
  that ignores the image (what a generator without per-image information could learn).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.results_io import write_results
from jaxpriv.errors import JaxprivError
from jaxpriv.machine import machine_description
from jaxpriv.metrics import ssim_jax
from jaxpriv.smna import noise as alg3
from jaxpriv.smna.dataset import load_maps
from jaxpriv.smna.method import load_checkpoint, resolve_checkpoint
from jaxpriv.smna.smgg import generator_apply, normalize_maps

THRESHOLD = 0.6
MAPS = ("y", "G(x)", "random, same L2", "random, same L1", "mean training map")


def weighting_maps(y: jax.Array, g: jax.Array, mean_train: jax.Array, seed: int,
                   ) -> dict[str, jax.Array]:
    """The (N, 64, 64) maps of the columns, before Alg. 3 (the L1-matched one is made later)."""
    gauss = jax.random.normal(jax.random.key(seed), y.shape, jnp.float32)
    return {"y": y, "G(x)": g, "random, same L2": gauss,
            "mean training map": jnp.broadcast_to(mean_train, y.shape)}


def changes(maps: dict[str, jax.Array], level: float, noise: str, sign: str,
            ) -> dict[str, jax.Array]:
    """Alg. 3 change of every column at δ = ``level`` (L2); the L1-matched random change has the L1
    norm of the G(x) change."""
    out = {k: alg3.noise_delta(m, level, noise, sign, "l2") for k, m in maps.items()}
    l1 = alg3.map_norm(out["G(x)"], "l1") / alg3.map_norm(out["random, same L2"], "l1")
    out["random, same L1"] = out["random, same L2"] * l1[:, None, None]
    return {k: out[k] for k in MAPS}


def score(x: jax.Array, change: jax.Array, ref: jax.Array, distance: Any,
          ) -> dict[str, np.ndarray]:
    """Per image: dlib distance and SSIM of the protected image (uint8-rounded) and the L1 / L2
    norm of the change (the budget, before clipping and rounding)."""
    xp = jnp.round(jnp.clip(x + change[..., None], 0.0, 255.0))
    return {"d": np.asarray(distance(xp, ref)), "ssim": np.asarray(ssim_jax(xp, x)),
            "l1": np.asarray(alg3.map_norm(change, "l1")),
            "l2": np.asarray(alg3.map_norm(change, "l2"))}


def run(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Table III cells on the held-out maps of ``maps_path``; writes ``out_md``, ``out_json`` and
    ``out_png`` (committed results: nothing goes to ``workdir``)."""
    from experiments.smgg import chip_distance_fn

    del workdir
    if not config.maps_path:
        raise JaxprivError("set --config.maps_path to the --workdir of "
                           "experiments/configs/smna_maps.py")
    held = load_maps(config.maps_path, config.eval_split, with_metadata=True)
    train = load_maps(config.maps_path, "train")
    n = len(held["image"])
    x = jnp.asarray(held["image"], jnp.float32)
    ref = jnp.asarray(held["reference_embedding"])
    distance = chip_distance_fn("dlib_resnet")
    clean = np.asarray(distance(x, ref))
    gap = float(np.abs(clean - held["clean_distance"]).max())
    if gap > 1e-3:  # same pipeline as Alg. 1's clean query
        raise RuntimeError(f"clean distance differs from the stored one by {gap}")
    result: dict[str, Any] = {
        "command": config.command, "machine": machine_description(), "threshold": THRESHOLD,
        "heldout_images": n, "heldout_identities": sorted(set(held["identity_name"].tolist())),
        "train_maps": len(train["image"]),
        "clean": {"d": float(clean.mean()), "same_person": float(np.mean(clean < THRESHOLD))},
        "checkpoints": {}, "cells": []}
    for noise in ("black", "white"):
        path = resolve_checkpoint(config.checkpoint, noise)
        generator, meta = load_checkpoint(str(path), noise)
        overlap = set(meta.get("train_identity_names", [])) & set(result["heldout_identities"])
        if overlap:
            raise RuntimeError(f"{path} was trained on held-out identities {sorted(overlap)}")
        result["checkpoints"][noise] = {
            "path": str(config.checkpoint).format(noise=noise),
            "train_images": meta.get("train_images"), "trained_steps": meta.get("trained_steps"),
            "width": meta.get("width")}
        g, _ = generator_apply(generator, x / 255.0, train=False)
        mean_train = jnp.asarray(normalize_maps(train[f"map_{noise}"]).mean(0))
        maps = weighting_maps(jnp.asarray(held[f"map_{noise}"]), alg3.noise_map(g), mean_train,
                              config.seed)
        for level in config.noise_levels:
            for name, change in changes(maps, level, noise, config.noise_sign).items():
                s = score(x, change, ref, distance)
                result["cells"].append({
                    "noise": noise, "noise_level": float(level), "map": name,
                    "d": float(s["d"].mean()), "same_person": float(np.mean(s["d"] < THRESHOLD)),
                    "ssim": float(s["ssim"].mean()), "l1": float(s["l1"].mean()),
                    "l2": float(s["l2"].mean())})
    write_results(config, result, markdown(result, config))
    plot(result, config.out_png)
    return result


def _cell(cells: list[dict], noise: str, level: float, name: str) -> dict:
    key = (noise, level, name)
    return next(c for c in cells if (c["noise"], c["noise_level"], c["map"]) == key)


def markdown(result: dict[str, Any], config: ml_collections.ConfigDict) -> str:
    """The Table III layout (rows δ, columns black/white × map) once per metric."""
    levels, cells = config.noise_levels, result["cells"]
    ck = result["checkpoints"]
    columns = [f"{noise} {m}" for noise in ("black", "white") for m in MAPS]
    head = "| δ | " + " | ".join(columns) + " |"
    rule = "|---:|" + "---:|" * (2 * len(MAPS))
    lines = [
        "# SMNA Table III on held-out identities, with random-noise and mean-map controls", "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}.", "",
        f"Held-out images: {result['heldout_images']} of {len(result['heldout_identities'])} "
        f"identities no checkpoint was trained on ({', '.join(result['heldout_identities'])}); "
        f"exact Alg. 1 maps y with the JAX dlib ResNet. Checkpoints: "
        + "; ".join(f"`{c['path']}` ({c['train_images']} training maps, {c['trained_steps']} "
                    f"steps, width {c['width']})" for c in ck.values())
        + f". Mean training map over {result['train_maps']} train-split maps.", "",
        f"**Clean**: mean dlib distance {result['clean']['d']:.3f}, same person (d < "
        f"{result['threshold']}) {100 * result['clean']['same_person']:.1f} %. "
        f"Paper's Table III (FaceNet, its own test set, clean 0.788): δ = 500…1250 gives "
        f"0.831…0.935 with G(x) and 1.033…1.188 with y (black).", ""]
    for title, key, fmt in (("Mean dlib distance to the reference (higher = better protected)",
                             "d", "{:.3f}"),
                            ("Same person, d < 0.6, % (lower = better protected)",
                             "same_person", "{:.1%}"),
                            ("SSIM(x', x) at 64×64 (higher = less visible)", "ssim", "{:.3f}"),
                            ("L1 norm of the change (per channel, before rounding; L2 = δ except "
                             "random, same L1)",
                             "l1", "{:.0f}")):
        lines += [f"## {title}", "", head, rule]
        for level in levels:
            row = [fmt.format(_cell(cells, noise, level, m)[key]).replace("%", "")
                   for noise in ("black", "white") for m in MAPS]
            lines.append(f"| {level:g} | " + " | ".join(row) + " |")
        lines.append("")
    lines += ["## What was computed", "", __doc__.split("\n\n", 1)[1].strip(), ""]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str) -> None:
    """Same-person rate and SSIM against δ, one panel per colour and metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    for col, noise in enumerate(("black", "white")):
        for row, (key, label) in enumerate((("same_person", "same person (d < 0.6)"),
                                            ("ssim", "SSIM(x', x)"))):
            ax = axes[row, col]
            for m in MAPS:
                cs = [c for c in result["cells"] if c["noise"] == noise and c["map"] == m]
                ax.plot([c["noise_level"] for c in cs], [c[key] for c in cs], "o-", label=m)
            if key == "same_person":
                ax.axhline(result["clean"]["same_person"], color="grey", ls=":", label="clean")
            ax.set_title(f"{noise} noise: {label}")
            ax.set_xlabel("δ (L2 of the 64×64 change, grey levels)")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"SMNA on {result['heldout_images']} held-out faces (dlib ResNet)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

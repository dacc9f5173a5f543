"""Train the style-based face generator G(·) of paper 001 (§4.2, eq. 9–10) on dlib-geometry chips.

Data: the glint 112×112 ArcFace crops → dlib-exact 150×150 chips
(:func:`jaxpriv.faces.chips_from_aligned_crops`) → area-resized to ``resolution``; cached as .npy
in ``cache_dir`` (default ``workdir/cache``; computed once, ≈ 13 min on this machine). Only the
train identities of :mod:`jaxpriv.data.splits` are seen by the GAN (validation and test
identities are the evaluation faces).

Loop (built on the shared :mod:`jaxpriv.train` pieces): sharded jit step (batch on the mesh's
``data`` axis, state replicated and donated), orbax checkpoints (``workdir/checkpoints``) every
``ckpt_every_minutes``, metrics in ``workdir/metrics.jsonl``, sample grids in
``workdir/samples/``. Resumable after a kill: the batch of step ``s`` and its randomness depend
only on ``(seed, s)`` (:func:`jaxpriv.train.batch_indices`; key ``fold_in(key, s)``).
At the end the EMA generator and its ``w`` statistics are exported to ``export_dir``.
"""

from __future__ import annotations

import functools
import json
import platform
import time
from pathlib import Path

import cv2
import jax
import ml_collections
import numpy as np
from absl import logging
from tqdm import tqdm

from jaxpriv import train as jt
from jaxpriv.data.splits import in_split
from jaxpriv.deid import gan_train
from jaxpriv.deid.generator import (
    GeneratorConfig,
    generate,
    param_count,
    save_generator,
    to_uint8,
    w_statistics,
)
from jaxpriv.deid.project import resize_chips
from jaxpriv.parallel import batch_sharding, make_mesh

# ---------------------------------------------------------------- data


def chip_cache(faces_dir: str, tfds_dir: str, cache_dir: str | Path) -> dict:
    """dlib chips of every glint crop, cached: ``chips150.npy`` (uint8 (N, 150, 150, 3), memory
    mapped), ``chips64.npy`` and ``meta.json`` (filename, identity, identity_name lists in
    data-source order). Built on first use."""
    from jaxpriv.data import load_identity_faces
    from jaxpriv.faces import chips_from_aligned_crops

    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    f150, f64, fmeta = cache / "chips150.npy", cache / "chips64.npy", cache / "meta.json"
    if not (f150.exists() and f64.exists() and fmeta.exists()):
        source = load_identity_faces(faces_dir, tfds_dir)
        chips = np.zeros((len(source), 150, 150, 3), np.uint8)
        meta: dict[str, list] = {"filename": [], "identity": [], "identity_name": []}
        for i in tqdm(range(len(source)), desc="dlib chips", unit="img"):
            ex = source[i]
            chips[i] = chips_from_aligned_crops(ex["image"])[0]
            meta["filename"].append(ex["filename"].decode())
            meta["identity"].append(int(ex["identity"]))
            meta["identity_name"].append(ex["identity_name"].decode())
        for path, arr in ((f150, chips), (f64, resize_chips(chips, 64))):
            tmp = path.with_name(path.stem + ".tmp.npy")
            np.save(tmp, arr)
            tmp.rename(path)
        fmeta.write_text(json.dumps(meta))
    return {"chips150": np.load(f150, mmap_mode="r"), "chips64": np.load(f64),
            "meta": json.loads(fmeta.read_text())}


# ---------------------------------------------------------------- configs


def generator_config(config: ml_collections.ConfigDict) -> GeneratorConfig:
    return GeneratorConfig(
        resolution=config.resolution, z_dim=config.z_dim, w_dim=config.w_dim,
        mapping_layers=config.mapping_layers, channel_base=config.channel_base,
        channel_max=config.channel_max, d_channel_base=config.d_channel_base,
        d_channel_max=config.d_channel_max)


def train_config(config: ml_collections.ConfigDict) -> gan_train.TrainConfig:
    return gan_train.TrainConfig(
        batch_size=config.batch_size, g_lr=config.g_lr, d_lr=config.d_lr,
        r1_gamma=config.r1_gamma, r1_interval=config.r1_interval, ema_nimg=config.ema_nimg,
        ema_rampup=config.ema_rampup, augment=config.augment, xflip=config.xflip)


def sample_grid(images: np.ndarray, cols: int = 8) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` → one ``(rows·H, cols·W, 3)`` grid."""
    n, h, w, _ = images.shape
    rows = -(-n // cols)
    grid = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = im
    return grid


def save_png(path: Path, rgb: np.ndarray, scale: int = 1) -> None:
    if scale > 1:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


# ---------------------------------------------------------------- run


def run(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Train (resuming from ``workdir`` if possible) for at most ``max_minutes`` / up to
    ``max_steps``, then export. Returns a summary (also written to ``workdir/summary.json``)."""
    t_start = time.time()
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    gc, tc = generator_config(config), train_config(config)
    workdir = Path(workdir).absolute()
    jt.config_to_json(config, workdir / "config.json")

    cache = chip_cache(config.faces_dir, config.tfds_dir, config.cache_dir or workdir / "cache")
    is_train = in_split(cache["meta"]["identity_name"], "train")
    train_idx, held_idx = np.flatnonzero(is_train), np.flatnonzero(~is_train)
    if config.resolution == 64:
        data = cache["chips64"][train_idx]
    else:
        data = resize_chips(cache["chips150"][train_idx], config.resolution)
    data = data.astype(np.float32) / 127.5 - 1.0  # [-1, 1]
    n = len(data)

    mesh = make_mesh(config.num_devices or None)
    if config.batch_size % mesh.size:
        raise ValueError(f"batch_size {config.batch_size} not divisible by {mesh.size} devices")
    init_key, key = jax.random.split(jax.random.key(config.seed))
    ckpts = jt.Checkpoints(workdir, every=1, keep=config.keep_checkpoints)
    state = ckpts.restore_or(jt.replicate(gan_train.init_state(init_key, gc, tc), mesh))
    step = int(state["step"])
    if step:
        print(f"resumed from step {step}", flush=True)
    print(f"train images {n} (held-out identities' images {len(held_idx)}), mesh "
          f"{dict(mesh.shape)}, G {param_count(state['g'])} params, "
          f"D {param_count(state['d'])} params", flush=True)

    steps = {r1: jt.sharded_step(functools.partial(
        gan_train.train_step, gc=gc, tc=tc, do_r1=r1, batch_sharding=batch_sharding(mesh)),
        mesh) for r1 in (False, True)}
    z_fixed = jax.random.normal(jax.random.key(1234), (64, gc.z_dim))
    sample_fn = jax.jit(lambda g, z: generate(g, gc, z))

    logger = jt.MetricLogger(workdir, resume_step=step)
    deadline = t_start + 60.0 * config.max_minutes
    last_ckpt = last_sample = time.time()
    window_t, window_n = time.time(), 0
    while step < config.max_steps and time.time() < deadline:
        idx = jt.batch_indices(config.seed, step, config.batch_size, n)
        reals = jt.to_global({"x": data[idx]}, mesh)["x"]
        do_r1 = step % tc.r1_interval == 0
        state, m = steps[do_r1](state, reals, jax.random.fold_in(key, step))
        step += 1
        window_n += 1
        if step % config.log_every == 0 or step == 1:
            m = jax.device_get(m)
            now = time.time()
            if not all(np.isfinite(v) for v in m.values()):
                raise FloatingPointError(f"non-finite metrics at step {step}: {m}")
            logger.log(step, "train", {"kimg": step * config.batch_size / 1000,
                                       "sec_per_step": (now - window_t) / window_n, **m})
            window_t, window_n = now, 0
        now = time.time()
        if now - last_sample > 60 * config.sample_every_minutes:
            grid = sample_grid(to_uint8(sample_fn(state["g_ema"], z_fixed)))
            save_png(workdir / "samples" / f"step_{step:07d}.png", grid, 2)
            last_sample = now
        if now - last_ckpt > 60 * config.ckpt_every_minutes:
            ckpts.save(step, state, force=True)
            last_ckpt = now
    if ckpts.latest_step() != step:
        ckpts.save(step, state, force=True)
    ckpts.close()

    summary = {"step": step, "images_seen": step * config.batch_size,
               "wall_minutes_this_run": (time.time() - t_start) / 60,
               "machine": f"{platform.processor() or platform.machine()}, "
                          f"{jax.device_count()} {jax.default_backend()} device(s)"}
    grid = sample_grid(to_uint8(sample_fn(state["g_ema"], z_fixed)))
    save_png(workdir / "samples" / f"step_{step:07d}.png", grid, 2)
    if config.export_dir:
        export(state, gc, config, Path(config.export_dir), summary)
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary), flush=True)
    return summary


def export(state: dict, gc: GeneratorConfig, config: ml_collections.ConfigDict, out: Path,
           summary: dict) -> None:
    """EMA generator + w statistics (orbax) + config.json + samples.png into ``out``."""
    g_ema = jax.device_get(state["g_ema"])
    w_avg, w_std = jax.jit(lambda g, k: w_statistics(g, gc, k))(g_ema, jax.random.key(7))
    info = {**summary, "train": {k: config[k] for k in (
        "seed", "batch_size", "g_lr", "d_lr", "r1_gamma", "r1_interval", "ema_nimg",
        "augment", "xflip")},
            "data": "glint 112x112 crops -> dlib 150/0.25 chips -> area resize"}
    save_generator(out, g_ema, gc, w_avg, w_std, info)
    z = jax.random.normal(jax.random.key(1234), (64, gc.z_dim))
    grid = sample_grid(to_uint8(jax.jit(lambda g, z: generate(g, gc, z))(g_ema, z)))
    save_png(out / "samples.png", grid, 2 if gc.resolution <= 64 else 1)

"""Train SMGG (paper 000, Alg. 2, eq. 2–7) on sensitivity maps; resumable, sharded, logged.

``run(config, workdir)`` (config: ``experiments/configs/smgg.py``):

1. loads ``jaxpriv.smna.dataset.load_maps(config.maps_path)`` (or :func:`synthetic_maps`), keeps
   the map of ``config.noise`` and normalises it (:func:`jaxpriv.smna.smgg.normalize_maps`);
2. evaluates on identities never trained on: the dataset's ``config.eval_split`` split
   (``validation`` to choose settings, ``test`` to report; :mod:`jaxpriv.data.splits`);
3. trains with one jitted step (batch on the mesh's ``data`` axis, state replicated and donated),
   the batch of step s fixed by (seed, s) and randomness by ``fold_in(key, s)``;
4. logs loss_G, loss_D, L1 (train) and L1 / Spearman / Pearson of G(x) vs held-out maps plus the
   Table III distances (:func:`protection_eval`: dlib distance with noise from y vs from G(x))
   (eval) to stdout and ``workdir/metrics.jsonl``; checkpoints to ``workdir/checkpoints`` and
   resumes from the latest one;
5. optionally exports the generator (``config.export_dir``) in the format that
   ``jaxpriv protect --method smna --checkpoint DIR`` reads.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging as absl_logging
from tqdm import tqdm

from jaxpriv import train
from jaxpriv.data.map_shards import shard_paths
from jaxpriv.data.splits import SPLITS, identity_split
from jaxpriv.errors import JaxprivError
from jaxpriv.parallel import make_mesh, pad_to_multiple, replicated
from jaxpriv.smna import smgg
from jaxpriv.smna.dataset import load_maps

SAVED_CONFIG_KEYS = ("noise", "width", "disc_width", "map_normalization", "map_scale",
                     "lambda_l1", "learning_rate", "beta1", "batch_size", "num_steps", "seed",
                     "eval_split", "flip", "synthetic", "maps_path")


def synthetic_maps(n: int, num_identities: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """A stand-in for ``load_maps`` output with the same keys, dtypes and scale: smooth random
    faces-sized images and maps that are a fixed smooth function of the image (so G can learn
    them): black map ≈ 0.05·(blurred luminance − 0.5), white map its negative plus a ripple."""
    rng = np.random.default_rng(seed)
    ident = np.arange(n, dtype=np.int32) % max(num_identities, 1)
    base = rng.random((max(num_identities, 1), 8, 8, 3))
    images = np.zeros((n, 64, 64, 3), np.uint8)
    black = np.zeros((n, 64, 64), np.float32)
    white = np.zeros((n, 64, 64), np.float32)
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    for i in range(n):
        low = np.clip(base[ident[i]] + 0.35 * rng.standard_normal((8, 8, 3)), 0, 1)
        img = cv2.resize(low.astype(np.float32), (64, 64), interpolation=cv2.INTER_CUBIC)
        img = np.clip(img, 0, 1)
        images[i] = np.rint(img * 255).astype(np.uint8)
        lum = cv2.GaussianBlur(img.mean(-1), (0, 0), 2.0)
        black[i] = 0.05 * (lum - 0.5) + 0.01 * np.sin(6 * xx + 3 * lum)
        white[i] = -0.05 * (lum - 0.5) + 0.01 * np.cos(5 * yy)
    return {"image": images, "identity": ident, "map_black": black, "map_white": white,
            "clean_distance": rng.uniform(0.3, 0.6, n).astype(np.float32)}


def _prepare(raw: dict[str, np.ndarray], config: ml_collections.ConfigDict,
             ) -> dict[str, np.ndarray]:
    maps = np.asarray(smgg.normalize_maps(raw[f"map_{config.noise}"], config.map_normalization,
                                          config.map_scale))
    out = {"image": np.asarray(raw["image"], np.uint8), "map": maps[..., None],
           "identity": np.asarray(raw["identity"], np.int32)}
    if "reference_embedding" in raw:
        out["reference_embedding"] = np.asarray(raw["reference_embedding"], np.float32)
    if "identity_name" in raw:
        out["identity_name"] = np.asarray(raw["identity_name"], str)
    return out


def load_data(config: ml_collections.ConfigDict,
              ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], str]:
    """(train set, eval set, how the eval identities were chosen). Each set: ``image`` uint8
    (N, 64, 64, 3), ``map`` normalised float32 (N, 64, 64, 1), ``identity`` (N,) and, for real
    maps, ``reference_embedding`` (N, D) (the identity's portrait, for :func:`protection_eval`).

    Real maps: ``load_maps(maps_path, "train")``; eval = its ``config.eval_split`` split ("" = no
    eval set). Synthetic maps: identity ``i`` is named ``synthetic-<i>`` and split by
    :func:`jaxpriv.data.identity_split`; eval = every identity outside train."""
    if config.noise not in ("black", "white"):
        raise JaxprivError(f"config.noise must be black or white, got {config.noise!r}")
    if config.synthetic:
        data = _prepare(synthetic_maps(config.synthetic_size, config.synthetic_identities,
                                       config.seed), config)
        held = np.array([identity_split(f"synthetic-{i}") != "train" for i in data["identity"]])
        if not config.eval_split:
            held[:] = False
        return ({k: v[~held] for k, v in data.items()}, {k: v[held] for k, v in data.items()},
                "synthetic identities outside the train split")
    if not config.maps_path:
        raise JaxprivError("set --config.maps_path to the --workdir of "
                           "experiments/configs/smna_maps.py (or --config.synthetic=True)")
    path = Path(config.maps_path)
    data = _prepare(load_maps(path, "train", with_metadata=True), config)
    if not config.eval_split:
        return data, {k: v[:0] for k, v in data.items()}, "none"
    if config.eval_split not in SPLITS[1:]:
        raise JaxprivError(f"config.eval_split must be validation, test or '', "
                           f"got {config.eval_split!r}")
    if not shard_paths(path / config.eval_split):
        raise JaxprivError(f"{path} has no {config.eval_split} maps: generate them with "
                           f"experiments/configs/smna_maps.py (--config.only_splits)")
    held_out = _prepare(load_maps(path, config.eval_split, with_metadata=True), config)
    return data, held_out, f"dataset {config.eval_split} split"


def create_state(config: ml_collections.ConfigDict, key: jax.Array) -> train.TrainState:
    """Fresh state: SMGG variables (Tables I–II at ``width``) and Adam(lr, β1) (Alg. 2)."""
    disc_width = config.disc_width if config.disc_width > 0 else config.width
    return _create_state(float(config.width), float(disc_width),
                         float(config.learning_rate), float(config.beta1))(key)


@functools.lru_cache(maxsize=4)
def _create_state(width: float, disc_width: float, learning_rate: float, beta1: float,
                  ) -> Any:
    def create(key: jax.Array) -> train.TrainState:
        variables = smgg.init(key, width, disc_width)
        tx = optax.adam(learning_rate, b1=beta1, b2=0.999)
        return train.TrainState.create(variables["params"], tx, variables["batch_stats"])

    return jax.jit(create)  # one compilation instead of one per parameter shape


def train_step(state: train.TrainState, batch: dict[str, jax.Array], key: jax.Array,
               lambda_l1: float, flip: bool) -> tuple[train.TrainState, dict[str, jax.Array]]:
    """Alg. 2 lines 2–6: losses of eq. 2–7 and one Adam update of G and D together."""
    x = batch["image"].astype(jnp.float32) / 255.0
    y = batch["map"]
    if flip:
        k = jax.random.fold_in(key, state.step)
        m = jax.random.bernoulli(k, 0.5, (x.shape[0], 1, 1, 1))
        x, y = jnp.where(m, x[:, :, ::-1], x), jnp.where(m, y[:, :, ::-1], y)
    grads, (batch_stats, metrics) = jax.grad(smgg.compute_losses, has_aux=True)(
        state.params, state.batch_stats, x, y, lambda_l1)
    return state.apply_gradients(grads, batch_stats), metrics


def _ranks(v: jax.Array) -> jax.Array:
    return jnp.argsort(jnp.argsort(v, axis=-1), axis=-1).astype(jnp.float32)


def _corr(a: jax.Array, b: jax.Array) -> jax.Array:
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    return (a * b).sum(-1) / jnp.sqrt((a * a).sum(-1) * (b * b).sum(-1) + 1e-12)


@jax.jit
def eval_per_image(generator: smgg.Variables, image: jax.Array, target: jax.Array,
                   ) -> dict[str, jax.Array]:
    """Per held-out image: L1 of eq. 6, Spearman and Pearson correlation of G(x) with y."""
    g, _ = smgg.generator_apply(generator, image.astype(jnp.float32) / 255.0, train=False)
    g = g.reshape(g.shape[0], -1)
    y = target.reshape(target.shape[0], -1)
    return {"L1": jnp.abs(g - y).mean(-1), "spearman": _corr(_ranks(g), _ranks(y)),
            "pearson": _corr(g, y)}


def evaluate(state: train.TrainState, data: dict[str, np.ndarray], mesh: jax.sharding.Mesh,
             ) -> dict[str, float]:
    """Means of :func:`eval_per_image` over ``data`` (padded to the mesh, padding dropped)."""
    generator = {"params": state.params["generator"],
                 "batch_stats": state.batch_stats["generator"]}
    image, n = pad_to_multiple(data["image"], mesh.size)
    target, _ = pad_to_multiple(data["map"], mesh.size)
    batch = train.to_global({"image": image, "map": target}, mesh)
    out = eval_per_image(generator, batch["image"], batch["map"])
    # all-gather: on several processes each holds only its slice of the per-image values
    out = jax.device_get(jax.jit(lambda t: t, out_shardings=replicated(mesh))(out))
    return {k: float(np.mean(np.asarray(v)[:n])) for k, v in out.items()}


@functools.lru_cache(maxsize=2)
def chip_distance_fn(recognizer: str) -> Any:
    """jit: (images 0..255 float (N, 64, 64, 3), reference embeddings) → distances, through the
    same 64 → chip resize as the maps (``sensitivity.to_chip``)."""
    from jaxpriv.recognizers import load_recognizer
    from jaxpriv.smna.sensitivity import to_chip

    rec = load_recognizer(recognizer)

    @jax.jit
    def distance(x255: jax.Array, ref: jax.Array) -> jax.Array:
        emb = rec.apply(rec.params, to_chip(x255 / 255.0, rec.input_size))
        return jnp.sqrt(jnp.sum(jnp.square(emb - ref), axis=-1))

    return distance


def protection_eval(state: train.TrainState, data: dict[str, np.ndarray],
                    config: ml_collections.ConfigDict, chunk: int = 32) -> dict[str, float]:
    """Table III on held-out images: mean dlib distance to the identity's reference with no noise,
    with Alg. 3 noise weighted by the ground-truth map y, and by G(x) (δ = ``eval_noise_level``,
    ``eval_noise_norm``, the working sign; 64×64 images rounded to uint8, as stored)."""
    from jaxpriv.smna import noise as noise_lib

    if "reference_embedding" not in data or not len(data["image"]):
        return {}
    distance = chip_distance_fn("dlib_resnet")
    generator = jax.device_get({"params": state.params["generator"],  # replicated: local copy
                                "batch_stats": state.batch_stats["generator"]})
    kw = dict(noise_level=float(config.eval_noise_level), noise=config.noise,
              norm=config.eval_noise_norm)
    sums = {"d_clean": 0.0, "d_y": 0.0, "d_Gx": 0.0}
    for i in range(0, len(data["image"]), chunk):
        x = jnp.asarray(data["image"][i:i + chunk], jnp.float32)
        ref = jnp.asarray(data["reference_embedding"][i:i + chunk])
        g, _ = _generator_eval(generator, x / 255.0)
        for name, m in (("d_y", jnp.asarray(data["map"][i:i + chunk])), ("d_Gx", g)):
            xm = jnp.round(noise_lib.add_noise(x, m, **kw))
            sums[name] += float(distance(xm, ref).sum())
        sums["d_clean"] += float(distance(x, ref).sum())
    return {k: v / len(data["image"]) for k, v in sums.items()}


_generator_eval = jax.jit(functools.partial(smgg.generator_apply, train=False))


@functools.lru_cache(maxsize=4)
def _compiled_step(mesh: jax.sharding.Mesh, lambda_l1: float, flip: bool) -> Any:
    """The sharded, donating jit of :func:`train_step` (cached: a resumed run in the same
    process reuses the compilation)."""
    return train.sharded_step(functools.partial(train_step, lambda_l1=lambda_l1, flip=flip),
                              mesh)


def run(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Train (or resume from ``workdir``: checkpoints, metrics, config.json) to
    ``config.num_steps``; returns ``{"state", "train", "eval"}`` (the last logged metrics)."""
    workdir = Path(workdir)
    mesh = make_mesh(config.num_devices or None)
    if config.batch_size % mesh.size:
        raise JaxprivError(f"batch_size {config.batch_size} must be a multiple of the "
                           f"{mesh.size} devices")
    if not config.get("verbose", False):
        absl_logging.set_verbosity(absl_logging.WARNING)  # orbax logs every file at INFO
    train_set, eval_set, eval_source = load_data(config)
    n_train = len(train_set["image"])
    if n_train == 0:
        raise JaxprivError(f"no training maps in {config.maps_path} (all held out?)")

    init_key, step_key = jax.random.split(jax.random.key(config.seed))
    state = train.replicate(create_state(config, init_key), mesh)
    step_key = train.replicate(step_key, mesh)
    ckpts = train.Checkpoints(workdir, config.checkpoint_every, config.keep_checkpoints)
    state = ckpts.restore_or(state)
    start = int(state.step)
    logger = train.MetricLogger(workdir, resume_step=start if start else None)
    info = {"train_images": n_train, "eval_images": len(eval_set["image"]),
            "eval_split": eval_source,
            "train_identities": int(len(np.unique(train_set["identity"]))),
            "eval_identities": int(len(np.unique(eval_set["identity"]))),
            "train_identity_names": sorted(set(train_set.get("identity_name", np.zeros(0, str))
                                               .tolist())),
            "generator_params": smgg.count_params(state.params["generator"]),
            "discriminator_params": smgg.count_params(state.params["discriminator"]),
            "devices": mesh.size, "processes": jax.process_count()}
    if jax.process_index() == 0:
        train.config_to_json(config, workdir / "config.json", info)
    print(f"SMGG {config.noise}: {info}; resuming at step {start}" if start else
          f"SMGG {config.noise}: {info}", flush=True)

    step_fn = _compiled_step(mesh, float(config.lambda_l1), bool(config.flip))
    acc = train.MeanAccumulator()
    last: dict[str, Any] = {"train": {}, "eval": {}}
    tick, tick_step = time.time(), start
    for step in tqdm(range(start, config.num_steps), initial=start, total=config.num_steps,
                     desc="smgg", unit="step", disable=jax.process_index() != 0):
        idx = train.batch_indices(config.seed, step, config.batch_size, n_train)
        batch = train.to_global({"image": train_set["image"][idx], "map": train_set["map"][idx]},
                                mesh)
        state, metrics = step_fn(state, batch, step_key)
        acc.add(metrics)
        done = step + 1
        final = done == config.num_steps
        if done % config.log_every == 0 or final:
            m = acc.result()
            m["sec_per_step"] = (time.time() - tick) / max(done - tick_step, 1)
            tick, tick_step = time.time(), done
            last["train"] = logger.log(done, "train", m)
        if len(eval_set["image"]) and (done % config.eval_every == 0 or final):
            m = evaluate(state, eval_set, mesh)
            if config.eval_protection:
                m |= protection_eval(state, eval_set, config)
            last["eval"] = logger.log(done, "eval", m)
        ckpts.save(done, state, force=final)
    ckpts.close()
    if config.export_dir:
        export_meta = {**info, "trained_steps": int(state.step), "last_eval": last["eval"]}
        smgg.save_generator(config.export_dir, state.params["generator"],
                            state.batch_stats["generator"],
                            {k: config[k] for k in SAVED_CONFIG_KEYS} | export_meta)
        print(f"generator exported to {config.export_dir}", flush=True)
    return {"state": state, **last}

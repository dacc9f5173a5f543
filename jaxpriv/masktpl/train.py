"""Training pieces of the mask template network and the perturbation generator (sharded,
resumable); the run over them is ``experiments/mask_train.py``:

    python -m experiments.main --config experiments/configs/mask_train.py --workdir DIR \
        [--config.generator.steps=50 ...]

Stages, each resumable (``jaxpriv.train.Checkpoints``, an orbax ``CheckpointManager``, under
``run_dir/<stage>``; an interrupted run continues from its last checkpoint, and batches depend
only on (seed, step) (``jaxpriv.train.batch_indices``), so a resumed run equals an uninterrupted
one):

1. chips of the training identities (dlib-exact 150×150 chips of the aligned crops), cached;
2. saliency targets |∂d/∂x| of the recognizer (:func:`template.recognizer_saliency`), cached;
3. the template network on (chip, target) pairs (eq. 4–5);
4. the generator against the recognizer(s) (eq. 7), Adam 2e-4, β1 = 0.5;
5. (in the experiment) export of both networks as one small model directory
   (:func:`model.save_model`, the :mod:`jaxpriv.checkpoints` format).

Every step is ``jax.jit`` with the batch split over the ``data`` mesh axis and parameters /
optimiser state replicated (``jaxpriv.parallel``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from jaxpriv.faces import chips_from_aligned_crops
from jaxpriv.io import load_image
from jaxpriv.masktpl.model import TemplateSettings, face_keys
from jaxpriv.masktpl.perturb import (
    GENERATOR,
    MAX_BITS,
    Z_DIM,
    RecognizerTerm,
    bit_logits_at,
    budget_penalty,
    plane_mask,
    resize_linear,
    soft_xor,
    straight_through_bits,
    superposed_distance,
)
from jaxpriv.masktpl.template import (
    NET_SIZE,
    TEMPLATE_NET,
    keyed_template,
    recognizer_saliency,
    template_loss,
    template_scores,
    to_net_input,
)
from jaxpriv.parallel import batch_sharding, make_mesh, pad_to_multiple, replicated
from jaxpriv.recognizers import load_recognizer
from jaxpriv.train import Checkpoints, MetricLogger, TrainState, batch_indices, sharded_step


def log_line(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one JSON record to ``run_dir/log.jsonl``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "log.jsonl", "a") as f:
        f.write(json.dumps({"time": round(time.time(), 1), **record}) + "\n")


# ------------------------------------------------------------------------------------ data


def training_chips(faces_dir: str, max_per_identity: int,
                   cache: Path | None = None) -> np.ndarray:
    """uint8 ``(N, 150, 150, 3)`` chips of the *train* identities of :mod:`jaxpriv.data.splits`
    (validation and test ones are never read), first ``max_per_identity`` sorted images each;
    cached in ``cache`` (.npy) when given."""
    if cache is not None and cache.exists():
        return np.load(cache)
    # tensorflow_datasets (a heavy import) comes with jaxpriv.data's identity_faces
    from jaxpriv.data import list_identity_images, split_identities

    images = list_identity_images(faces_dir)
    train = split_identities(images)["train"]
    files = [Path(faces_dir) / name / f for name in train for f in images[name][:max_per_identity]]
    chips = np.stack([chips_from_aligned_crops(load_image(p))[0]
                      for p in tqdm(files, desc="chips", unit="img")])
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, chips)
    return chips


def saliency_targets(term: RecognizerTerm, chips: np.ndarray, key: jax.Array, batch: int = 8,
                     draws: int = 2, cache: Path | None = None) -> np.ndarray:
    """Template targets (float32 ``(N, 64, 64)``) of uint8 chips, in batches; cached."""
    if cache is not None and cache.exists():
        return np.load(cache)
    fn = jax.jit(lambda p, x, k: recognizer_saliency(term.apply, p, x, k, draws=draws))
    out = []
    for i in tqdm(range(0, len(chips), batch), desc="saliency", unit="batch"):
        x, n = pad_to_multiple(chips[i:i + batch], batch)
        x01 = jnp.asarray(x, jnp.float32) / 255.0
        out.append(np.asarray(fn(term.params, x01, jax.random.fold_in(key, i)))[:n])
    maps = np.concatenate(out).astype(np.float32)
    if cache is not None:
        np.save(cache, maps)
    return maps


# ------------------------------------------------------------------------------- the loop


def run_loop(
    state: TrainState,
    step_fn: Callable[..., tuple[TrainState, dict[str, jax.Array]]],
    batch_fn: Callable[[int], tuple[Any, ...]],
    replicated_args: tuple[Any, ...],
    steps: int,
    workdir: Path,
    every: int,
    run_dir: Path,
    name: str,
    mesh: jax.sharding.Mesh | None = None,
) -> TrainState:
    """Train ``state`` to ``steps`` steps, resuming from the latest checkpoint in ``workdir``
    (:class:`jaxpriv.train.Checkpoints`; metrics in ``workdir/metrics.jsonl``, shown on the
    progress bar). ``step_fn(state, *batch, *replicated_args)`` is jitted by
    :func:`jaxpriv.train.sharded_step`; ``batch_fn(step)`` returns host arrays."""
    mesh = make_mesh() if mesh is None else mesh
    rep, dat = replicated(mesh), batch_sharding(mesh)
    jitted = sharded_step(step_fn, mesh, batch_args=len(batch_fn(0)),
                          replicated_args=len(replicated_args))
    ckpt = Checkpoints(workdir, every=every, keep=2)
    try:
        state = ckpt.restore_or(state)
        start = int(state.step)
        if start:
            log_line(run_dir, {"stage": name, "resumed_at": start})
        logger = MetricLogger(workdir, resume_step=start, echo=False)
        state = jax.device_put(state, rep)
        rep_args = jax.device_put(replicated_args, rep)
        t0 = time.time()
        bar = tqdm(range(start, steps), desc=name, unit="step", initial=start, total=steps)
        for step in bar:
            batch = jax.device_put(batch_fn(step), dat)
            state, metrics = jitted(state, *batch, *rep_args)
            if (step + 1) % every == 0 or step + 1 == steps:
                rec = logger.log(step + 1, name, {**metrics, "seconds": time.time() - t0})
                bar.set_postfix({k: round(v, 4) for k, v in rec.items() if k in metrics})
                ckpt.save(step + 1, state, force=step + 1 == steps)
    finally:
        ckpt.close()
    return state


# ------------------------------------------------------------------------------ template


def init_template(key: jax.Array, lr: float) -> TrainState:
    """Fresh template-network state (Adam)."""
    params = TEMPLATE_NET.init(key, jnp.zeros((1, NET_SIZE, NET_SIZE, 3)))["params"]
    return TrainState.create(params, optax.adam(lr))


def template_step(l2: float) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """One step of eq. 5 on uint8 chips and their target maps."""

    def step(state: TrainState, chips: jax.Array, targets: jax.Array):  # noqa: ANN202
        x64 = to_net_input(chips.astype(jnp.float32) / 255.0)
        loss, grads = jax.value_and_grad(template_loss)(state.params, x64, targets, l2)
        return state.apply_gradients(grads=grads), {"loss": loss}

    return step


def train_template(chips: np.ndarray, targets: np.ndarray, cfg: Any, run_dir: Path,
                   mesh: jax.sharding.Mesh | None = None) -> Any:
    """Template-network parameters after ``cfg.steps`` steps (resumable)."""
    state = init_template(jax.random.key(cfg.seed), cfg.lr)

    def batch_fn(step: int) -> tuple[np.ndarray, np.ndarray]:
        idx = batch_indices(cfg.seed, step, cfg.batch, len(chips))
        return chips[idx], targets[idx]

    state = run_loop(state, template_step(cfg.l2), batch_fn, (), cfg.steps,
                     run_dir / "template", cfg.ckpt_every, run_dir, "template", mesh)
    return jax.device_get(state.params)


# ----------------------------------------------------------------------------- generator


def init_generator(key: jax.Array, lr: float = 2e-4, b1: float = 0.5) -> TrainState:
    """Fresh generator state with the paper's Adam (lr 2e-4, β1 0.5)."""
    s = NET_SIZE
    params = GENERATOR.init(key, jnp.zeros((1, s, s, 3)), jnp.zeros((1, s, s)),
                            jnp.zeros((1, Z_DIM)), jnp.zeros((1,)))["params"]
    return TrainState.create(params, optax.adam(lr, b1=b1))


def generator_loss(
    gparams: Any, tparams: Any, chips: jax.Array, ks: jax.Array, clean: Sequence[jax.Array],
    rec_params: Sequence[Any], key: jax.Array, terms: Sequence[RecognizerTerm],
    settings: TemplateSettings, budget: str, sigma: float, budget_weight: float,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Eq. 7 as a loss: −Σ_l τ_l·Dist_l(x ⊕ M⊙P, x) + σ-budget penalty, averaged over the batch.
    ``chips`` uint8 ``(N, 150, 150, 3)``; ``ks`` int ``(N,)`` bits per example; ``clean`` the
    clean embeddings per recognizer."""
    n, s = chips.shape[0], chips.shape[1]
    low = (2 ** ks - 1).astype(jnp.int32)[:, None, None, None]
    high01 = (chips.astype(jnp.int32) & ~low).astype(jnp.float32) / 255.0
    scores = jax.lax.stop_gradient(template_scores(tparams, high01))
    keys = jax.random.split(key, n)
    k_tpl, k_z = jax.vmap(face_keys)(keys)
    mask = jax.vmap(lambda sc, k: keyed_template(sc, k, settings.fraction, settings.offset,
                                                 settings.jitter))(scores, k_tpl)
    maskf = mask.astype(jnp.float32)
    m64 = jax.image.resize(maskf, (n, NET_SIZE, NET_SIZE), "linear", antialias=True)
    z = jax.vmap(lambda k: jax.random.normal(k, (Z_DIM,)))(k_z)
    logits = GENERATOR.apply({"params": gparams}, to_net_input(high01), m64, z,
                             ks.astype(jnp.float32) / MAX_BITS)
    bits = straight_through_bits(bit_logits_at(logits, s))
    bits = bits * plane_mask(ks)[:, None, None, None, :] * maskf[..., None, None]
    prot255 = soft_xor(chips, bits)
    total, dists = superposed_distance(terms, rec_params, prot255 / 255.0, clean)
    penalty = budget_penalty(prot255, chips.astype(jnp.float32), budget, sigma, budget_weight)
    metrics = {f"dist_{t.name}": jnp.mean(d) for t, d in zip(terms, dists, strict=True)}
    metrics["penalty"] = jnp.mean(penalty)
    metrics["flipped"] = jnp.mean(jnp.sum(bits, -1) > 0)
    return jnp.mean(-total + penalty), metrics


def generator_step(terms: Sequence[RecognizerTerm], settings: TemplateSettings, budget: str,
                   sigma: float, budget_weight: float) -> Callable[..., Any]:
    """One generator step: ``step(state, chips, ks, clean, tparams, rec_params, key)``."""

    def step(state: TrainState, chips: jax.Array, ks: jax.Array, clean: tuple,  # noqa: ANN202
             tparams: Any, rec_params: tuple, key: jax.Array):
        key = jax.random.fold_in(key, state.step)
        (loss, metrics), grads = jax.value_and_grad(generator_loss, has_aux=True)(
            state.params, tparams, chips, ks, clean, rec_params, key, terms, settings, budget,
            sigma, budget_weight)
        return state.apply_gradients(grads=grads), {"loss": loss, **metrics}

    return step


def clean_embeddings(terms: Sequence[RecognizerTerm], chips: np.ndarray,
                     batch: int = 32) -> list[np.ndarray]:
    """Embeddings of the clean chips under every recognizer of the superposition."""
    out = []
    for t in terms:
        fn = jax.jit(lambda p, x, t=t: t.apply(p, resize_linear(x, t.input_size)))
        rows = []
        for i in range(0, len(chips), batch):
            x, n = pad_to_multiple(chips[i:i + batch], batch)
            rows.append(np.asarray(fn(t.params, jnp.asarray(x, jnp.float32) / 255.0))[:n])
        out.append(np.concatenate(rows))
    return out


def train_generator(chips: np.ndarray, tparams: Any, terms: Sequence[RecognizerTerm], cfg: Any,
                    settings: TemplateSettings, run_dir: Path,
                    mesh: jax.sharding.Mesh | None = None) -> Any:
    """Generator parameters after ``cfg.steps`` steps against ``terms`` (resumable)."""
    state = init_generator(jax.random.key(cfg.seed), cfg.lr, cfg.b1)
    clean = clean_embeddings(terms, chips)
    k_choices = np.asarray(cfg.k_choices)

    def batch_fn(step: int) -> tuple[Any, ...]:
        idx = batch_indices(cfg.seed, step, cfg.batch, len(chips))
        ks = np.random.default_rng([cfg.seed, step, 1]).choice(k_choices, cfg.batch)
        return chips[idx], ks.astype(np.int32), tuple(c[idx] for c in clean)

    step = generator_step(terms, settings, cfg.budget, cfg.sigma, cfg.budget_weight)
    rep_args = (tparams, tuple(t.params for t in terms), jax.random.key(cfg.seed + 1))
    state = run_loop(state, step, batch_fn, rep_args, cfg.steps, run_dir / "generator",
                     cfg.ckpt_every, run_dir, "generator", mesh)
    return jax.device_get(state.params)


def recognizer_terms(names_and_taus: Sequence[tuple[str, float]]) -> list[RecognizerTerm]:
    """Superposition terms from (registered recognizer name, τ) pairs."""
    terms = []
    for name, tau in names_and_taus:
        rec = load_recognizer(name)
        terms.append(RecognizerTerm(rec.name, rec.apply, rec.params, rec.input_size, float(tau)))
    return terms

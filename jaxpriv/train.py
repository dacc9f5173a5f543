"""Shared training pieces: train state, resumable orbax checkpoints, metric logs, sharded steps,
deterministic data order and identity hold-out.

Resumption contract: a run killed at step k and restarted from its checkpoint ends with the same
parameters as an uninterrupted run, because (1) the whole state (step, params, batch stats,
optimiser state) is checkpointed, (2) the batch of step s is a pure function of (seed, s) — see
:func:`batch_indices` — and (3) per-step randomness is ``jax.random.fold_in(key, step)``. It holds
for the same data: if the dataset grows between the two runs, the order after the restart follows
the new data.

Sharding: one mesh with a ``data`` axis; the batch is split on it, the state
is replicated; each process feeds only its slice of the global batch (``jax.process_index()``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import struct
from jax.sharding import Mesh

from jaxpriv.parallel import batch_sharding, replicated

PyTree = Any


class TrainState(struct.PyTreeNode):
    """Everything a step changes: ``step``, ``params``, ``batch_stats``, ``opt_state``; ``tx`` is
    static (not checkpointed: rebuilt from the config)."""

    step: jax.Array
    params: PyTree
    batch_stats: PyTree
    opt_state: PyTree
    tx: optax.GradientTransformation = struct.field(pytree_node=False)

    @classmethod
    def create(cls, params: PyTree, tx: optax.GradientTransformation,
               batch_stats: PyTree | None = None) -> TrainState:
        """Step 0 with ``tx.init(params)``."""
        return cls(step=jnp.zeros((), jnp.int32), params=params,
                   batch_stats={} if batch_stats is None else batch_stats,
                   opt_state=tx.init(params), tx=tx)

    def apply_gradients(self, grads: PyTree, batch_stats: PyTree | None = None) -> TrainState:
        """One optimiser update; ``batch_stats`` replaces the old ones when given."""
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates),
                            opt_state=opt_state,
                            batch_stats=self.batch_stats if batch_stats is None else batch_stats)


# ---------------------------------------------------------------- checkpoints

class Checkpoints:
    """An orbax ``CheckpointManager`` over ``workdir/checkpoints``: save every ``every`` steps,
    keep the last ``keep``, restore the latest into the shapes/shardings of a template state."""

    def __init__(self, workdir: str | Path, every: int, keep: int = 3,
                 async_save: bool = False) -> None:
        self.directory = Path(workdir).absolute() / "checkpoints"
        self.every = int(every)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, save_interval_steps=max(self.every, 1), create=True,
            enable_async_checkpointing=async_save)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        """The newest saved step, or None."""
        return self.manager.latest_step()

    def restore_or(self, template: TrainState) -> TrainState:
        """The latest checkpoint restored with ``template``'s structure, dtypes and shardings, or
        ``template`` itself when there is none."""
        step = self.latest_step()
        if step is None:
            return template
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, template)
        return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

    def save(self, step: int, state: TrainState, force: bool = False) -> bool:
        """Save if ``step`` is on the interval (or ``force``); True if saved."""
        return self.manager.save(step, args=ocp.args.StandardSave(state), force=force)

    def close(self) -> None:
        """Wait for pending writes and release the manager."""
        self.manager.wait_until_finished()
        self.manager.close()


# ---------------------------------------------------------------- metrics

class MetricLogger:
    """Metrics to stdout (unless ``echo`` is False) and ``workdir/<filename>`` (one JSON object per
    line). Opening with ``resume_step`` drops lines logged after that step by a run that was then
    interrupted."""

    def __init__(self, workdir: str | Path, filename: str = "metrics.jsonl",
                 resume_step: int | None = None, stream: Any = None, echo: bool = True) -> None:
        self.path = Path(workdir) / filename
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.stream = sys.stdout if stream is None else stream
        self.echo = echo
        self.enabled = jax.process_index() == 0
        if self.enabled and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if line.strip()
                    and (resume_step is not None and json.loads(line)["step"] <= resume_step)]
            self.path.write_text("".join(line + "\n" for line in kept))

    def log(self, step: int, split: str, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """Record ``{"step", "split", **metrics}`` (scalars converted to float)."""
        rec = {"step": int(step), "split": split, "time": round(time.time(), 3)}
        rec.update({k: float(v) for k, v in metrics.items()})
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            parts = " ".join(f"{k}={v:.5g}" for k, v in rec.items()
                             if k not in ("step", "split", "time"))
            if self.echo:
                print(f"[{split} step {step}] {parts}", file=self.stream, flush=True)
        return rec


def read_metrics(workdir: str | Path, filename: str = "metrics.jsonl") -> list[dict[str, Any]]:
    """The records of a :class:`MetricLogger` file."""
    path = Path(workdir) / filename
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------- data order and split

@functools.lru_cache(maxsize=8)
def _epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(seed: int, step: int, batch_size: int, n: int) -> np.ndarray:
    """Dataset indices of the global batch of ``step``: epochs are fresh permutations of
    ``range(n)`` seeded by (seed, epoch), read in order; a pure function of its arguments."""
    if n <= 0:
        raise ValueError("empty dataset")
    pos = np.arange(step * batch_size, (step + 1) * batch_size, dtype=np.int64)
    out = np.empty(batch_size, np.int64)
    for epoch in np.unique(pos // n):
        sel = pos // n == epoch
        out[sel] = _epoch_permutation(seed, int(epoch), n)[pos[sel] % n]
    return out


def process_slice(global_size: int) -> slice:
    """This process's share of a global batch (contiguous; sizes must divide evenly)."""
    count, index = jax.process_count(), jax.process_index()
    if global_size % count:
        raise ValueError(f"global batch {global_size} not divisible by {count} processes")
    per = global_size // count
    return slice(index * per, (index + 1) * per)


def to_global(arrays: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Global arrays sharded on ``data`` from arrays every process holds *in full* (each process
    contributes its :func:`process_slice`)."""
    sharding = batch_sharding(mesh)
    out = {}
    for k, v in arrays.items():
        v = np.asarray(v)
        out[k] = jax.make_array_from_process_local_data(sharding, v[process_slice(len(v))],
                                                        v.shape)
    return out


# ---------------------------------------------------------------- sharded step

def sharded_step(step_fn: Callable[..., tuple[TrainState, dict]], mesh: Mesh,
                 donate: bool = True, batch_args: int = 1,
                 replicated_args: int = 1) -> Callable[..., tuple[TrainState, dict]]:
    """``jax.jit`` of ``step_fn(state, *batch, *rest) -> (state, metrics)``: the state and the
    ``replicated_args`` trailing arguments (a key, frozen networks) replicated, the
    ``batch_args`` batch arguments (pytrees allowed) split on ``data``, the input state donated.
    The default is ``step_fn(state, batch, key)``."""
    rep, data = replicated(mesh), batch_sharding(mesh)
    return jax.jit(step_fn, in_shardings=(rep, *[data] * batch_args, *[rep] * replicated_args),
                   out_shardings=(rep, rep), donate_argnums=(0,) if donate else ())


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Place every leaf of ``tree`` (the same values on every process) replicated on ``mesh``.
    Several processes: each contributes its local copy (``device_put`` cannot reach the
    devices of other processes); PRNG keys travel as their key data."""
    sharding = replicated(mesh)
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def one(x: Any) -> jax.Array:
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(one(jax.random.key_data(x)),
                                            impl=jax.random.key_impl(x))
        return jax.make_array_from_process_local_data(sharding, np.asarray(x))

    return jax.tree_util.tree_map(one, tree)


@dataclasses.dataclass
class MeanAccumulator:
    """Running means of per-step metric dicts (kept on device until :meth:`result`)."""

    items: list[dict[str, jax.Array]] = dataclasses.field(default_factory=list)

    def add(self, metrics: dict[str, jax.Array]) -> None:
        self.items.append(metrics)

    def result(self) -> dict[str, float]:
        """Means since the last call (then reset)."""
        if not self.items:
            return {}
        host = jax.device_get(self.items)
        self.items = []
        return {k: float(np.mean([m[k] for m in host])) for k in host[0]}


def config_to_json(config: Any, path: str | Path, extra: Mapping[str, Any] | None = None,
                   keys: Sequence[str] | None = None) -> dict[str, Any]:
    """Write an ml_collections config (or dict) as JSON (``extra`` merged in); returns the dict."""
    d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    if keys is not None:
        d = {k: d[k] for k in keys if k in d}
    d.update(extra or {})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(d, indent=2, default=str) + "\n")
    return d

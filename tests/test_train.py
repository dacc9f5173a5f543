"""Shared training pieces: sharded SMGG steps on 4 simulated devices, exact resume from orbax
checkpoints, deterministic data order, identity hold-out, metric logs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np

from experiments.configs.smgg import get_config
from jaxpriv import train

from .conftest import ROOT


def _tiny_config(num_steps: int):
    c = get_config()
    c.synthetic = True
    c.synthetic_size = 24
    c.synthetic_identities = 6
    c.width = 0.125
    c.batch_size = 8
    c.num_steps = num_steps
    c.log_every = 1
    c.eval_every = 2
    c.checkpoint_every = 2
    c.flip = True  # exercises fold_in(key, step) randomness in the resume test
    return c


def test_two_sharded_steps_on_four_devices(tmp_path) -> None:
    script = textwrap.dedent(f"""
        import json, jax, numpy as np
        assert jax.device_count() == 4, jax.devices()
        from experiments.smgg import create_state, run
        from tests.test_train import _tiny_config
        config = _tiny_config(2)
        out = run(config, r"{tmp_path / 'run'}")
        state = out["state"]
        init = create_state(config, jax.random.split(jax.random.key(config.seed))[0])
        leaf = jax.tree_util.tree_leaves(state.params)[0]
        changed = [bool(np.any(np.asarray(a) != np.asarray(b))) for a, b in zip(
            jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(init.params))]
        print("RESULT", json.dumps({{
            "step": int(state.step), "train": out["train"], "eval": out["eval"],
            "changed": sum(changed), "leaves": len(changed),
            "replicated": leaf.sharding.is_fully_replicated,
            "devices": len(leaf.sharding.device_set)}}))
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    r = json.loads(line[len("RESULT "):])
    assert r["step"] == 2 and r["devices"] == 4 and r["replicated"]
    for k in ("loss_G", "loss_D", "L1"):
        assert np.isfinite(r["train"][k]), k
    assert np.isfinite(r["eval"]["L1"]) and -1 <= r["eval"]["spearman"] <= 1
    assert r["changed"] == r["leaves"]  # every parameter of G and D moved
    logged = train.read_metrics(tmp_path / "run")
    assert [(m["step"], m["split"]) for m in logged] == [(1, "train"), (2, "train"), (2, "eval")]


def test_resume_from_checkpoint_is_exact(tmp_path) -> None:
    from experiments.smgg import run

    straight = run(_tiny_config(4), tmp_path / "a")["state"]
    first = run(_tiny_config(2), tmp_path / "b")["state"]
    assert int(first.step) == 2
    resumed = run(_tiny_config(4), tmp_path / "b")["state"]  # restores step 2, runs 2 more
    assert int(resumed.step) == 4
    for tree in ("params", "batch_stats", "opt_state"):
        for a, b in zip(jax.tree_util.tree_leaves(getattr(straight, tree)),
                        jax.tree_util.tree_leaves(getattr(resumed, tree)), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    steps = [(m["step"], m["split"]) for m in train.read_metrics(tmp_path / "b")]
    assert steps == [(s, "train") for s in (1, 2)] + [(2, "eval")] + [(3, "train"),
                                                                       (4, "train"), (4, "eval")]


def test_batch_indices_deterministic_epochs() -> None:
    a = [train.batch_indices(3, s, 4, 10) for s in range(5)]  # 20 positions = 2 epochs
    b = [train.batch_indices(3, s, 4, 10) for s in range(5)]
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
    flat = np.concatenate(a)
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert not np.array_equal(flat[:10], flat[10:])  # a new permutation per epoch
    assert not np.array_equal(train.batch_indices(4, 0, 4, 10), a[0])


def test_metric_logger_drops_lines_after_resume_step(tmp_path) -> None:
    log = train.MetricLogger(tmp_path, stream=io.StringIO())
    for s in range(1, 6):
        log.log(s, "train", {"loss": s})
    train.MetricLogger(tmp_path, resume_step=3, stream=io.StringIO())
    assert [m["step"] for m in train.read_metrics(tmp_path)] == [1, 2, 3]
    train.MetricLogger(tmp_path, stream=io.StringIO())  # a fresh run
    assert train.read_metrics(tmp_path) == []

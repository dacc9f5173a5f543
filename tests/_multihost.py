"""One process of the multi-host test (tests/test_smna_dataset.py starts it; not collected).

    python -m tests._multihost PROCESS_ID NUM_PROCESSES PORT FACES_TFDS OUT

With NUM_PROCESSES > 1 it joins ``jax.distributed`` at ``127.0.0.1:PORT`` (CPU collectives:
gloo), then generates tiny SMNA maps of the identity_faces photos in FACES_TFDS into
``OUT/maps`` (each process its own shards) and trains a tiny SMGG on synthetic maps in
``OUT/smgg`` (each process feeds its slice of every batch); process 0 writes the final
parameters to ``OUT/params.npz`` and the last eval metrics to ``OUT/eval.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import numpy as np

MAP_SETTINGS = dict(image_size=4, chunk=8, shard_size=1, aligned_crops=False, detector="yunet",
                    progress=False)
SMGG_SETTINGS = dict(synthetic=True, synthetic_size=16, synthetic_identities=8, width=0.125,
                     batch_size=4, num_steps=3, log_every=1, eval_every=3, checkpoint_every=2,
                     eval_protection=False)


def main(process_id: int, count: int, port: int, faces_tfds: str, out: Path) -> None:
    if count > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=count,
                                   process_id=process_id)
    from experiments.configs.smgg import get_config
    from experiments.smgg import run
    from jaxpriv.data import load_identity_faces
    from jaxpriv.smna.dataset import generate_maps

    maps = generate_maps(load_identity_faces(None, faces_tfds), out / "maps", **MAP_SETTINGS)
    assert maps["complete"] and maps["worker"] == [process_id, count], maps
    config = get_config()
    config.update(SMGG_SETTINGS)
    result = run(config, out / "smgg")
    if jax.process_index() == 0:
        leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(result["state"].params))[0]
        np.savez(out / "params.npz", **{jax.tree_util.keystr(k): np.asarray(v)
                                        for k, v in leaves})
        (out / "eval.json").write_text(json.dumps(result["eval"]))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], Path(sys.argv[5]))

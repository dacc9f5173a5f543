"""Tiny resumable runs that tests/test_reliability.py starts in subprocesses and kills with
SIGKILL (not collected by pytest: the name does not start with ``test_``).

    python -m tests._tiny_runs maps OUT_DIR            # SMNA map shards (4 shards of 1 image)
    python -m tests._tiny_runs smgg WORKDIR STEPS      # SMGG training, checkpoint every 2 steps

``maps`` uses a synthetic identity_faces source made from the bundled sample photos (no shared
data needed); ``smgg`` trains on synthetic maps and writes the final state to
``WORKDIR/final.npz`` (one array per leaf) once ``STEPS`` is reached.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[1] / "jaxpriv" / "samples"
# (identity, photo, dlib HOG face box (left, top, right, bottom)); the first of each identity is
# its reference portrait. Boxes hard-coded (found by jaxpriv.faces.detect_faces) to stay cheap.
FACES = (
    ("alpha", "obama.jpg", (349, 142, 617, 409)),
    ("alpha", "obama2.jpg", (171, 290, 438, 558)),
    ("alpha", "two_people.jpg", (253, 47, 408, 202)),
    ("theta", "biden.jpg", (419, 241, 740, 562)),
    ("theta", "two_people.jpg", (778, 57, 964, 242)),
    ("theta", "obama2.jpg", (171, 290, 438, 558)),  # mirrored below: a different image
)
MAP_SETTINGS = dict(image_size=4, chunk=8, shard_size=1, progress=False)


def face_crop(photo: str, box: tuple[int, int, int, int], mirror: bool = False) -> np.ndarray:
    """A 112×112 crop around a face box (grown by 15 % per side), like an aligned crop."""
    left, top, right, bottom = box
    m = 0.15 * (right - left)
    with Image.open(SAMPLES / photo) as im:
        crop = im.convert("RGB").crop((round(left - m), round(top - m), round(right + m),
                                       round(bottom + m))).resize((112, 112), Image.BILINEAR)
    arr = np.asarray(crop)
    return np.ascontiguousarray(arr[:, ::-1]) if mirror else arr


def map_source() -> list[dict]:
    """An identity_faces-like data source: 2 identities x (1 reference + 2 images)."""
    items, seen = [], {}
    for name, photo, box in FACES:
        k = seen[name] = seen.get(name, -1) + 1
        items.append({"image": face_crop(photo, box, mirror=name == "theta" and k == 2),
                      "identity": 0 if name == "alpha" else 1, "identity_name": name,
                      "filename": f"{name}/{k}.png", "index_in_identity": k,
                      "is_reference": k == 0})
    return items


def run_maps(out_dir: str) -> dict:
    from jaxpriv.smna.dataset import generate_maps

    return generate_maps(map_source(), out_dir, **MAP_SETTINGS)


def smgg_config(num_steps: int):  # noqa: ANN201
    from experiments.configs.smgg import get_config

    c = get_config()
    c.synthetic = True
    c.synthetic_size = 16
    c.synthetic_identities = 4
    c.eval_split = ""  # no eval set: only training steps
    c.width = 0.125
    c.batch_size = 4
    c.num_steps = num_steps
    c.log_every = 1
    c.checkpoint_every = 2
    c.keep_checkpoints = 10
    c.flip = True  # per-step randomness fold_in(key, step) must also resume exactly
    return c


def run_smgg(workdir: str, num_steps: int) -> None:
    import jax

    from experiments.smgg import run

    state = run(smgg_config(num_steps), workdir)["state"]
    leaves = jax.tree_util.tree_leaves_with_path(
        {"step": state.step, "params": state.params, "batch_stats": state.batch_stats,
         "opt_state": state.opt_state})
    arrays = {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}
    np.savez(Path(workdir) / "final.npz", **arrays)


if __name__ == "__main__":
    if sys.argv[1] == "maps":
        print(json.dumps(run_maps(sys.argv[2])), flush=True)
    elif sys.argv[1] == "smgg":
        run_smgg(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown run {sys.argv[1]!r}")

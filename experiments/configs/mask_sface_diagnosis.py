"""Issue 20: why the steered mask pad barely moves SFace (geometry, coverage, headroom), on a few
celeba299 validation faces (see experiments/mask_sface_diagnosis.py).

Run: python -m experiments.main --config experiments/configs/mask_sface_diagnosis.py --workdir DIR
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "mask_sface_diagnosis"
    c.faces_dir = "../shared/data/faces/celeba299"  # <identity>/<photo>.jpg
    c.faces = 3  # first validation identities with a probe photo (as mask_eval picks them)
    c.out_json = "experiments/results/mask_sface_diagnosis.json"
    c.out_md = "experiments/results/mask_sface_diagnosis.md"
    return c

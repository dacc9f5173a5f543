"""Verification table (issue 17): dlib_resnet and SFace on glint and celeba299, all pairs.

Run: python -m experiments.main --config experiments/configs/verify_table.py --workdir DIR
Smoke run: --config.max_identities=3 --config.max_per_identity=3 (writes over the results: also
set --config.out_json / --config.out_md)
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "verify_table"
    c.datasets = ("glint", "celeba299")
    # glint: <identity>/<image>.png, pre-aligned 112×112 ArcFace crops
    c.glint_dir = "../shared/data/faces/glint"
    # celeba299: <identity>/<photo>.jpg 256×256 loose crops + landmarks.csv (YuNet box, 5 points)
    c.celeba299_dir = "../shared/data/faces/celeba299"
    c.recognizers = ("dlib_resnet", "sface")
    c.max_per_identity = 40  # first 40 sorted photos of an identity (DESIGN.md); 0 = all
    c.max_identities = 0  # first N sorted identities, for smoke runs; 0 = all
    c.far_targets = (1e-3, 1e-2)
    c.batch_size = 64
    c.out_json = "experiments/results/verify_baseline.json"
    c.out_md = "experiments/results/verify_baseline.md"
    return c

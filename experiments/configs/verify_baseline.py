"""Baseline verification of a recognizer on an identity-labelled face folder (no protection).

Run: python -m experiments.main --config experiments/configs/verify_baseline.py --workdir DIR
Shrink for a smoke run: --config.max_per_identity=3
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "verify_baseline"
    c.faces_dir = "../shared/data/faces/glint"  # <identity>/<image>, first sorted = reference
    c.tfds_dir = "/tmp/jaxpriv_tfds"  # where the identity_faces dataset is prepared
    c.aligned_crops = True  # inputs are pre-aligned crops (glint): chips via pad + upsample
    c.recognizer = "dlib_resnet"
    c.max_per_identity = 0  # 0 = all images
    c.batch_size = 64
    c.far_targets = (1e-2, 1e-3)
    c.out_json = "experiments/results/verify_baseline_glint.json"
    c.out_md = "experiments/results/verify_baseline_glint.md"
    return c

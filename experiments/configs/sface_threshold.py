"""SFace's same-person threshold: the cosine at FAR = 1e-3 over all different-identity pairs of
celeba299 (faces no jaxpriv method trains on), ArcFace-aligned from its YuNet 5 points.

Run: python -m experiments.main --config experiments/configs/sface_threshold.py --workdir DIR
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "verify_sface_threshold"
    c.faces_dir = "../shared/data/faces/celeba299"  # <identity>/<photo>.jpg + landmarks.csv
    c.target_far = 1e-3  # the threshold's operating point
    c.also_far = (1e-2,)  # reported alongside, not used for the threshold
    c.batch_size = 64
    c.out_json = "experiments/results/sface_threshold.json"
    c.out_md = "experiments/results/sface_threshold.md"
    c.command = ("python -m experiments.main --config experiments/configs/sface_threshold.py "
                 "--workdir DIR")
    return c

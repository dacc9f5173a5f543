"""Cloak against one recognizer or an ensemble: protection success against dlib and SFace on the
VALIDATION identities (jaxpriv.data.splits) of glint and celeba299, at one DSSIM budget (preset);
chooses cloak's default --recognizer (best black-box transfer). Test numbers: transfer.md.

Run: python -m experiments.main --config experiments/configs/cloak_ensemble.py --workdir DIR
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "cloak_ensemble"
    c.datasets = {"glint": "../shared/data/faces/glint",  # 112x112 ArcFace crops
                  "celeba299": "../shared/data/faces/celeba299"}  # 256x256 loose crops
    c.split = "validation"  # defaults are chosen on validation, never on test
    c.probes_per_identity = {"glint": 2, "celeba299": 1}  # after the reference (first photo)
    c.variants = ("dlib_resnet", "sface", "dlib_resnet,sface")  # cloak --recognizer
    c.measured_by = ("dlib_resnet", "sface")
    c.preset = "mid"
    c.steps = 10
    c.seed = 0
    c.out_json = "experiments/results/cloak_ensemble.json"
    c.out_md = "experiments/results/cloak_ensemble.md"
    c.command = ("python -m experiments.main --config experiments/configs/cloak_ensemble.py "
                 "--workdir DIR")
    return c

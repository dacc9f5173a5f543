"""Transfer table (issue 17 item 5): every method at its default × {dlib_resnet, sface}, on the
test identities of glint and celeba299.

Run: python -m experiments.main --config experiments/configs/transfer.py --workdir DIR
(per-run reports are kept in DIR and reused by a rerun with the same settings, so an interrupted
run resumes; a changed method default is measured again). Smoke run: --config.methods=blur
--config.max_per_identity=1 with --config.out_json / out_md / out_png elsewhere.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "transfer"
    c.methods = ("blur", "mosaic", "solid", "dppix", "cloak", "smna", "deid", "mask")
    c.recognizers = ("dlib_resnet", "sface")
    c.datasets = ("glint", "celeba299")
    # glint: <identity>/<image>.png, pre-aligned 112×112 crops (4 test identities)
    c.glint_dir = "../shared/data/faces/glint"
    # celeba299: <identity>/<photo>.jpg, 256×256 loose crops (36 test identities)
    c.celeba299_dir = "../shared/data/faces/celeba299"
    c.split = "test"
    # 3 probes per identity: 12 glint + 100 celeba299 = 112 probes of 40 identities
    c.max_per_identity = 3
    # YuNet: finds the face in loose crops where HOG misses ≈ 5 %, with its own 5 ArcFace points
    c.detector = "yunet"
    c.seed = 0
    # True: only assemble the table from the per-run reports already in the workdir
    c.reuse_only = False
    c.out_json = "experiments/results/transfer.json"
    c.out_md = "experiments/results/transfer.md"
    c.out_png = "experiments/results/transfer.png"
    return c

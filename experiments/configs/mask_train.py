"""Training of the mask template network + perturbation generator against dlib (issue #5).

Run: python -m experiments.main --config experiments/configs/mask_train.py --workdir DIR
(DIR: cached chips and saliency targets, each stage's resumable checkpoints, log.jsonl)
Smoke run: --workdir DIR --config.max_per_identity=4 --config.template.steps=4 \
    --config.generator.steps=4 --config.out_ckpt=''
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "mask_train"
    c.faces_dir = "../shared/data/faces/glint"
    # trained on the train identities of jaxpriv.data.splits only
    c.max_per_identity = 24  # training chips per training identity
    c.out_ckpt = "ckpt/mask_perturb_dlib"  # the small shipped model ('' = none)
    c.seed = 0
    c.recognizers = (("dlib_resnet", 1.0),)  # (name, tau): the superposition of eq. 7
    c.saliency_batch = 8
    c.saliency_draws = 2
    c.settings = ml_collections.ConfigDict({"fraction": 0.4, "offset": 4, "jitter": 0.15})

    c.template = ml_collections.ConfigDict()
    c.template.seed = 0
    c.template.steps = 200
    c.template.batch = 16
    c.template.lr = 1e-3
    c.template.l2 = 1e-6  # lambda of eq. 5
    c.template.ckpt_every = 50

    c.generator = ml_collections.ConfigDict()
    c.generator.seed = 0
    c.generator.steps = 150
    c.generator.batch = 8
    c.generator.lr = 2e-4  # paper (DCGAN)
    c.generator.b1 = 0.5  # paper (DCGAN momentum term)
    c.generator.budget = "ssim"  # "ssim" (soft floor sigma) or "linf" (sigma in 0..255 levels)
    c.generator.sigma = 0.95
    c.generator.budget_weight = 10.0
    c.generator.k_choices = (1, 2, 3, 4)
    c.generator.ckpt_every = 25
    return c

"""Mask-template protection vs dlib on the glint identities of one split (T_o, F_c, T_r, r_s,
SSIM, PSNR).

Run: python -m experiments.main --config experiments/configs/mask_eval.py --workdir DIR
Smoke run: --config.max_per_identity=2 --config.bits='(3,)'
"""

import ml_collections

from jaxpriv.masktpl.keys import KdfParams


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "mask_eval"
    c.faces_dir = "../shared/data/faces/glint"
    c.eval_split = "test"  # identities measured (jaxpriv.data.splits; "validation" to tune)
    c.max_per_identity = 30  # probes per identity (after the reference)
    c.bits = (1, 2, 3, 4)
    c.model_dir = ""  # '' = the shipped ckpt/mask_perturb_dlib
    c.password = "experiment password"  # one user; a fresh random salt per image
    c.kdf = KdfParams()
    c.oracle = True  # also the non-regenerable gradient-sign reference point (see mask.md)
    c.figure = "experiments/results/mask.png"
    c.figure_bits = 3
    c.render_only = False  # True: only rewrite out_md from out_json
    c.out_json = "experiments/results/mask.json"
    c.out_md = "experiments/results/mask.md"
    return c

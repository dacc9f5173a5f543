"""Steered mask template vs dlib and SFace on the glint and celeba299 identities of one split
(T_o, F_c, T_r, r_s per k, superposition and recognizer; face SSIM/PSNR; key sizes).

Run: python -m experiments.main --config experiments/configs/mask_eval.py --workdir DIR
Choose defaults on --config.eval_split=validation; report on test.
Smoke run: --config.max_per_identity=1 --config.max_identities=2
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "mask_eval"
    c.datasets = (("glint", "../shared/data/faces/glint"),
                  ("celeba299", "../shared/data/faces/celeba299"))
    c.eval_split = "test"  # identities measured (jaxpriv.data.splits; "validation" to tune)
    c.max_identities = 12  # per dataset (celeba299's test split has ~50)
    c.max_per_identity = 2  # probes per identity (after the reference)
    c.recognizers = ("dlib_resnet", "sface")  # attackers
    # (k, superposition): both recognizers at every k; each held out in turn at the default k
    c.runs = ((4, "dlib_resnet,sface:3"), (3, "dlib_resnet,sface:3"), (2, "dlib_resnet,sface:3"),
              (4, "dlib_resnet"), (4, "sface"))
    c.steps = 36
    c.margin = 2.5
    c.start = "zero"  # or "generator"
    c.step = 2.0  # grey levels per step (times the direction and the weighting)
    c.direction = "scaled"  # or "sign": the gradient over its RMS (clipped at ±3), or its sign
    c.focus = 0.0  # > 0: softmin temperature on d/t, the least-fooled member steers most
    c.jitter = 1.5  # each step sees the chips re-aligned at random (chip px, steer.py; 0: off)
    c.rounds = 1  # > 1: the face found again between runs of steps, steered there (steer.py)
    c.attacker = "redetect"  # celeba299: the attacker finds the face again ("clean": it does not)
    c.balance = False  # scale each recognizer's gradient to unit mean |g| before the sign
    c.weighting = "texture"  # or "sign": each pixel's step scaled by the local contrast
    c.tangent = False  # at the budget each step keeps SSIM to first order (budget.tangent_to_ssim)
    c.ssim_target = 0.97  # each step's change projected back to face-box SSIM >= it (0: none)
    c.batch = 8
    c.template_fraction = 0.0  # > 0: the template keeps this share of chip pixels (0: the model's)
    c.model_dir = ""  # '' = the shipped ckpt/mask_perturb_dlib (its template M)
    c.notes = ()  # extra sentences for the Reading section (e.g. the choice a sweep made)
    c.merge = ()  # JSON files of runs split over processes: only merge them into out_*
    c.figure = "experiments/results/mask.png"  # '' = no figure
    c.figure_bits = 4
    c.out_json = "experiments/results/mask.json"
    c.out_md = "experiments/results/mask.md"
    return c

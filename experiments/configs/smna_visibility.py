"""SMNA visibility study (issue #19 item 4): δ × how the change is applied, on validation
identities; the chosen setting on test identities.

    python -m experiments.main --config experiments/configs/smna_visibility.py --workdir DIR
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "smna_visibility"
    c.celeba = "../shared/data/faces/celeba299"  # never seen by the shipped SMGG
    c.glint = "../shared/data/faces/glint"  # validation identities seen by the shipped SMGG
    c.choose_split = "validation"
    c.max_per_identity = 3  # probes per identity (after the reference photo)
    c.recognizers = ("dlib_resnet", "sface")  # first: white-box (G's maps), then black-box
    c.noise = "black"
    # resolution/σ (64-map px)/region; "map/0/chip" is the first implementation
    c.variants = ("map/0/chip", "face/1/chip", "face/1/face")
    c.noise_levels = (450.0, 600.0, 800.0)
    c.old_variant = "map/0/chip"  # measured on test beside the chosen setting
    c.old_noise_level = 1250.0
    c.budget_ssim = 0.95  # mean SSIM of the full-resolution face (issue #19's acceptance)
    c.lpips_size = 128
    c.out_md = "experiments/results/smna_visibility.md"
    c.out_json = "experiments/results/smna_visibility.json"
    c.out_png = "experiments/results/smna_visibility.png"
    c.command = ("python -m experiments.main --config experiments/configs/smna_visibility.py "
                 "--workdir DIR")
    return c

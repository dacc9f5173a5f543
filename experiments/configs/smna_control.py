"""SMNA noise (Alg. 3 with the shipped SMGG) against noise of the same budget without the map.

Run: python -m experiments.main --config experiments/configs/smna_control.py
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "smna_control"
    c.faces_dir = "/work/shared/data/faces/glint"
    # identities with no map in the shipped SMGG's training data (the map plan's held-out split:
    # jaxpriv.data.split_identities(fraction=0.2, seed=0) over the 18 glint identities)
    c.identities = ("Gwyneth_Paltrow", "Hugh_Laurie", "Jennifer_Aniston", "Victoria_Beckham")
    c.probes_per_identity = 20  # after the reference (first sorted image)
    c.noise = "black"
    c.noise_sign = "toward"
    c.noise_norm = "l2"
    c.noise_levels = (500.0, 1250.0, 2500.0)
    c.seed = 0  # random control maps
    c.out_md = "experiments/results/smna_noise_control.md"
    c.command = "python -m experiments.main --config experiments/configs/smna_control.py"
    return c

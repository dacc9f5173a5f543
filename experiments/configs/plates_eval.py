"""Licence-plate de-identification (paper 001 §5.3.2): edit distance per ε and photo utility
next to blur and mosaic of the plate region.

Run: python -m experiments.main --config experiments/configs/plates_eval.py --workdir DIR
Smoke run: --config.max_images=3 --config.text_draws=5
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "plates_eval"
    c.ccpd_dir = "../shared/data/plates/ccpd/annotated"  # MIT: annotations in the file names
    # AGPL-3.0: read here only, never copied into the repository
    c.openalpr_dirs = ("../shared/data/plates/openalpr/us", "../shared/data/plates/openalpr/eu")
    c.epsilons = (0.1, 0.5, 1.0, 2.0, 5.0)  # Laplace ε per character code (Δf = 1)
    c.sensitivity = 1.0
    c.seed = 0
    c.text_draws = 200  # synthetic plate strings per plate and ε for the distance statistics
    c.distance_threshold = 3  # §5.2.1: plate protected at edit distance >= 3
    c.max_images = 0  # per dataset; 0 = all
    c.blur_strength = 0.12  # σ = strength x plate width (as jaxpriv.baselines.blur)
    c.mosaic_blocks = 10  # cells across the plate width (as jaxpriv.baselines.mosaic)
    c.figure_images = 3  # CCPD photos in the figure (original | blur | mosaic | ours)
    c.figure_epsilon = 1.0
    c.exact_check_images = 2  # per dataset: windowed metrics checked against the library's
    c.out_json = "experiments/results/plates.json"
    c.out_md = "experiments/results/plates.md"
    c.out_png = "experiments/results/plates.png"
    return c

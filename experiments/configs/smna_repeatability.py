"""Repeatability of exact SMNA maps (flip, 1-pixel shift, JPEG round trip), issue 19 item 2.

    nice -n 10 python -m experiments.main --config experiments/configs/smna_repeatability.py \
        --workdir DIR
Cost: 4 maps of n_faces faces (black, image_size² recognizer queries each).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "smna_repeatability"
    c.faces_dir = "../shared/data/faces/celeba299"  # research use only (never committed)
    c.detector = "yunet"
    c.split = "test"  # identities measured (jaxpriv.data.splits)
    c.n_faces = 6
    c.recognizer = "dlib_resnet"
    c.image_size = 64  # paper Sec. IV-A
    c.chunk = 8
    c.jpeg_quality = 90
    c.out_md = "experiments/results/smna_map_repeatability.md"
    c.out_json = "experiments/results/smna_map_repeatability.json"
    return c

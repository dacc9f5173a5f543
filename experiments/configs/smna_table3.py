"""SMNA Table III (paper 000) on the test split of the map set, with random-noise controls.

Run (needs the `test` shards of experiments/configs/smna_maps.py, in its --workdir MAPS, and
the SMGG checkpoints):
    python -m experiments.main --config experiments/configs/smna_table3.py --workdir DIR \
        --config.maps_path=MAPS
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "smna_table3"
    c.maps_path = ""  # required: jaxpriv.smna.dataset.load_maps(path)
    c.eval_split = "test"  # identities measured (jaxpriv.data.splits); "validation" to tune
    c.checkpoint = "ckpt/smgg_dlib_{noise}"  # {noise} is replaced; default: the shipped ones
    c.noise_levels = (500.0, 750.0, 1000.0, 1250.0)  # δ of Table III
    c.noise_sign = "toward"
    c.seed = 0  # random control maps
    c.out_md = "experiments/results/smna_table3.md"
    c.out_json = "experiments/results/smna_table3.json"
    c.out_png = "experiments/results/smna_table3.png"
    c.command = ("python -m experiments.main --config experiments/configs/smna_table3.py "
                 "--workdir DIR --config.maps_path=MAPS")
    return c

"""Train SMGG (paper 000, Alg. 2) on sensitivity maps of one noise colour.

Run:   python -m experiments.main --config experiments/configs/smgg.py --workdir DIR \
           --config.noise=black --config.maps_path=MAPS
       (MAPS: the --workdir of experiments/configs/smna_maps.py; DIR: checkpoints, metrics)
Smoke: --config.synthetic=True --config.num_steps=20 --config.batch_size=8 --config.width=0.125
Export the generator for `jaxpriv protect --method smna`: --config.export_dir=ckpt/smgg_dlib_black
A killed run restarted with the same command continues from its latest checkpoint.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "smgg"
    c.noise = "black"  # black | white: which map of the dataset (map_black / map_white)
    c.maps_path = ""  # required unless synthetic: jaxpriv.smna.dataset.load_maps(path)
    c.synthetic = False  # train on generated smooth maps instead (smoke tests)
    c.synthetic_size = 64  # images in the synthetic set
    c.synthetic_identities = 8
    c.map_normalization = "alg3"  # alg3: (y − mean) / mean|y − mean| per map; scale: y · map_scale
    c.map_scale = 20.0
    c.width = 0.25  # channel multiplier of Table I (1.0 = paper, 112 MB; 0.25 = lite, 7 MB)
    # channel multiplier of Table II (≤ 0: same as width). D is ~98 % of a step's FLOPs (three
    # stride-1 convs at 31×31): 0.125 makes a width-0.25 step ~5× cheaper on CPU; only G ships.
    c.disc_width = 0.125
    c.batch_size = 64  # global; split over devices and processes
    c.num_steps = 2000
    c.lambda_l1 = 100.0  # λ of eq. 7
    c.learning_rate = 2e-4
    c.beta1 = 0.5
    c.flip = False  # random horizontal flips of (x, y) (not in the paper)
    c.seed = 0
    # eval set: maps of this split of identities (jaxpriv.data.splits): "validation" while
    # choosing settings, "test" for the reported numbers, "" for none
    c.eval_split = "validation"
    c.log_every = 10
    c.eval_every = 100
    c.eval_protection = True  # Table III: dlib distance of held-out faces, noise from y vs G(x)
    c.eval_noise_level = 500.0  # δ of that check (L2: RMS 7.8 grey levels, SSIM ≈ 0.95 with y)
    c.eval_noise_norm = "l2"
    c.checkpoint_every = 100
    c.keep_checkpoints = 3
    c.export_dir = ""  # if set: write the inference checkpoint (generator + config.json) here
    c.num_devices = 0  # 0 = all local devices
    c.verbose = False  # keep orbax INFO logs
    return c

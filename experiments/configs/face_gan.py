"""Train the 64×64 style-based face generator of the de-identification method (paper 001).

Run (resumes from the newest checkpoint in the run directory DIR if there is one; DIR/cache
holds the chips):
    mkdir -p DIR && nohup python -m experiments.main --config experiments/configs/face_gan.py \
        --workdir DIR > DIR/train.log 2>&1 &
Export the EMA generator of the newest checkpoint without training: add --config.max_minutes=0
128×128 variant: --config experiments/configs/face_gan.py:128 (widths 128…12 over 4…128 px,
    export ckpt/face_gan_128; give it its own --workdir).
Tiny smoke run: --workdir DIR --config.batch_size=4 --config.channel_base=128 \
    --config.d_channel_base=128 --config.max_steps=2 --config.export_dir=''
"""

import os
import tempfile

import ml_collections


def get_config(variant: str = "64") -> ml_collections.ConfigDict:
    if variant not in ("64", "128"):
        raise ValueError(f"variant must be 64 or 128, got {variant!r}")
    c = ml_collections.ConfigDict()
    c.experiment = "face_gan"
    # data: glint crops → dlib 150/0.25 chips → resolution×resolution (cached .npy)
    c.faces_dir = "../shared/data/faces/glint"
    c.tfds_dir = os.path.join(tempfile.gettempdir(), "jaxpriv_tfds")
    c.cache_dir = ""  # "" = <workdir>/cache
    # trained on the train identities of jaxpriv.data.splits only
    # model (jaxpriv.deid.generator.GeneratorConfig)
    c.resolution = 64
    c.z_dim = 128
    c.w_dim = 128
    c.mapping_layers = 4
    c.channel_base = 768  # G widths 128, 96, 48, 24, 12 at 4…64 px (CPU budget)
    c.channel_max = 128
    c.d_channel_base = 512  # D widths 8, 16, 32, 64, 128 at 64…4 px
    c.d_channel_max = 128
    # training (jaxpriv.deid.gan_train.TrainConfig)
    c.seed = 0
    c.batch_size = 16
    c.g_lr = 0.0025
    c.d_lr = 0.0025
    c.r1_gamma = 0.05
    c.r1_interval = 16
    c.ema_nimg = 5000.0
    c.ema_rampup = 0.05
    c.augment = "translation,color"
    c.xflip = True
    c.num_devices = 0  # 0 = every visible device on the "data" mesh axis
    # run length and bookkeeping
    c.max_steps = 1_000_000
    c.max_minutes = 90.0  # wall-time budget of this invocation (then checkpoint and stop)
    c.ckpt_every_minutes = 4.0
    c.sample_every_minutes = 10.0
    c.log_every = 10
    c.keep_checkpoints = 3
    c.export_dir = "ckpt/face_gan_64"  # EMA generator + w statistics + samples.png ('' = skip)
    if variant == "128":  # one more resolution; same shapes as jaxpriv.deid.generator.config_128
        c.resolution = 128
        c.channel_base, c.d_channel_base = 1536, 1024
        c.batch_size = 8
        c.export_dir = "ckpt/face_gan_128"
    return c

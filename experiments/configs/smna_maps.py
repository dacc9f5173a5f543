"""SMNA ground-truth sensitivity maps (Alg. 1) over identity faces, sharded and resumable.

The maps go to --workdir (outside the repo: they embed research-only faces and must not be
committed). Generate (long: ≈ 52 s per 64×64 image for both colours on a 2-core CPU; resumes on
rerun):
    python -m experiments.main --config experiments/configs/smna_maps.py --workdir MAPS
Compare the linearised map with the exact one on the first `n_faces` generated images:
    python -m experiments.main --config experiments/configs/smna_maps.py --workdir MAPS \
        --config.task=linear_vs_exact
Two workers, one per core (each appends to its own log):
    taskset -c 0 python -m experiments.main --config experiments/configs/smna_maps.py \
        --workdir MAPS --config.worker_index=0 --config.worker_count=2 &
    taskset -c 1 python -m experiments.main --config experiments/configs/smna_maps.py \
        --workdir MAPS --config.worker_index=1 --config.worker_count=2 &
Shrink for a smoke run: --workdir DIR --config.max_images=2 --config.image_size=16
Sources: glint (default, pre-aligned crops) or celeba299 (loose 256×256 crops, YuNet detection):
    --config experiments/configs/smna_maps.py:celeba299
One map set per source: give each its own --workdir.
Keep finished shards in the repo (float16 maps, no face images) / restore them on a new machine:
    ... --config.task=export     (into experiments/data/smna_maps/<source>)
    ... --config.task=restore    (then rerun the generate command: it resumes)
"""

import os
import tempfile

import ml_collections


def get_config(source: str = "glint") -> ml_collections.ConfigDict:
    if source not in ("glint", "celeba299"):
        raise ValueError(f"unknown map source {source!r}: glint or celeba299")
    c = ml_collections.ConfigDict()
    c.experiment = "smna_maps"
    c.source = source
    c.task = "generate"  # or "linear_vs_exact", "export", "restore"
    c.faces_dir = "../shared/data/faces/glint"  # <identity>/<image>; research use only
    # where identity_faces is prepared (the system temp folder)
    c.tfds_dir = os.path.join(tempfile.gettempdir(), "jaxpriv_tfds")
    c.aligned_crops = True  # glint: pre-aligned 112x112 crops -> dlib chips via pad + upsample
    c.detector = "hog"  # face detector (jaxpriv.faces.detect_faces) for chips
    if source == "celeba299":  # loose 256x256 crops: detect (HOG misses ~5 %, YuNet 6 of 2585)
        c.faces_dir = "../shared/data/faces/celeba299"
        # one data dir per source folder
        c.tfds_dir = os.path.join(tempfile.gettempdir(), "jaxpriv_tfds_celeba299")
        c.aligned_crops = False
        c.detector = "yunet"
    c.maps_tfds_dir = ""  # "" = <workdir>/tfds; sensitivity_maps is built there when complete
    c.build_tfds = True
    c.recognizer = "dlib_resnet"  # or an ensemble "dlib_resnet,sface[:tau]" (Σ τ_i·d_i/t_i)
    c.image_size = 64  # paper Sec. IV-A: 64x64x3 images, 64x64x1 maps
    c.chunk = 8  # perturbed images per vmapped batch per device (best on the 2-core CPU)
    c.images_per_device = 1  # images mapped at once per device
    c.shard_size = 4  # images per shard file (a kill loses at most one shard of work)
    c.splits = "train,validation,test"  # identity splits mapped (jaxpriv.data.splits; the plan)
    c.max_images = 0  # per split, 0 = all (part of the plan: fixed for one workdir)
    c.max_shards = 0  # stop this run after writing N new shards (0 = no limit)
    c.only_splits = "train,validation,test"  # splits this run works on, in order (not the plan)
    # Independent workers on one host: worker_count > 0 takes every worker_count-th shard from
    # worker_index (0 = split by jax.process_index/count). 2-core CPU: one worker pinned per
    # core (taskset -c 0 / -c 1) ran 1.6× the queries of one process on both (benchmarks/cores.py).
    c.worker_index = 0
    c.worker_count = 0
    # task=export / restore: committable float16 copy of the finished shards (no face images)
    c.compact_dir = f"experiments/data/smna_maps/{source}"
    c.compact_max_bytes = 40_000_000
    # task=linear_vs_exact
    c.n_faces = 24  # first generated train images compared (>= 20)
    c.results_md = "experiments/results/smna_linear_vs_exact.md"
    return c

"""Evaluate DP face de-identification (paper 001, Tables 1–2) against blur and mosaic.

Run (the default generator, MobileStyleGAN; experiments/deid_msg.py): the test table
experiments/results/deid.{json,md,png}:
  python -m experiments.main --config experiments/configs/deid_eval.py --workdir DIR
the validation sweep that chose the default (msg_results_validation.{json,md}): the command
recorded in experiments/results/deid_mobilestylegan_validation.md; the sweep of the face region:
experiments/results/deid_mobilestylegan_region_validation.md.
The 64×64 generator (writes face_gan_results.{json,md,png}): --config.generator=face_gan_64
(DIR/cache: the GAN's chip cache (as experiments/configs/face_gan.py) and the projections)
Smoke: --config.glint_per_identity=1 --config.max_scene_faces=2 --config.steps=10
Redraw the figure only (minutes, projection cached): --config.figure_only=True
"""

import os
import tempfile

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "deid_eval"
    c.generator = "mobilestylegan"  # run by experiments/deid_msg.py; or "face_gan_64"
    c.checkpoint = "ckpt/face_gan_64"
    c.seed = 0
    c.steps = 60  # projection steps (eq. 18), as the method's default
    c.lr = 0.05
    c.lambda_mse = 1.0
    c.lambda_id = 0.0
    c.project_batch = 8
    c.mask = "hull68"  # face_gan_64's region (MobileStyleGAN: msg_region below)
    # glint faces of the eval_split identities (jaxpriv.data.splits; never seen by the GAN), as
    # photos: crop padded by 25 %
    # and upsampled ×3 (jaxpriv.faces.align.photo_from_aligned_crop)
    c.faces_dir = "../shared/data/faces/glint"
    c.tfds_dir = os.path.join(tempfile.gettempdir(), "jaxpriv_tfds")
    c.cache_dir = ""  # "" = <workdir>/cache
    c.eval_split = "test"  # "validation" while choosing defaults
    c.glint_per_identity = 12
    # full photos: the bundled samples and the MIT-licensed face_recognition scenes
    c.scene_globs = ("jaxpriv/samples/*.jpg",
                     "../shared/data/scenes/face_recognition/alex-lacamoire.png",
                     "../shared/data/scenes/face_recognition/lin-manuel-miranda.png",
                     "../shared/data/scenes/face_recognition/knn_examples/test/*.jpg")
    c.max_scene_faces = 16
    # Laplace mechanism sweeps (paper mode: Δf = sensitivity; bounded: Δf = 2·C·dim)
    c.sensitivity = 1.0
    c.paper_epsilons = (1.0, 2.0, 3.0, 5.0, 10.0, 100.0)
    c.clip = 2.0  # bounded C, in units of the per-coordinate std of w  → Δf = 2·C·128 = 512
    c.bounded_epsilons = (256.0, 512.0, 1024.0, 2048.0)
    # truncation ψ (post-processing toward the mean w) swept with the bounded ε
    c.truncations = (1.0, 0.8, 0.7, 0.6)
    # the method's default (jaxpriv.deid.method.DEFAULT_*), summarised over both sets
    c.default_variant = "ours bounded ε=256 ψ=0.7"
    # columns of the figure besides original | blur | mosaic (the default first)
    c.figure_variants = ("ours bounded ε=256 ψ=0.7", "ours bounded ε=1024", "ours paper ε=3",
                         "ours, no noise: G(w*)")
    c.figure_only = False  # True: redraw out_png only (projection cached), no measurement
    c.face_gan_results = "experiments/results/deid_face_gan_64"  # generator=face_gan_64
    c.out_json = "experiments/results/deid.json"
    c.out_md = "experiments/results/deid.md"
    c.out_png = "experiments/results/deid.png"
    # generator=mobilestylegan (experiments/deid_msg.py): identities per data set (glint:
    # glint_pairs (protected, reference) photo pairs each; celeba299: photos 0 and 1), projection
    # steps traced (msg_steps; msg_quality: quality after each), the step whose w is noised,
    # (ε, ψ) of the bounded mechanism (C = clip; Δf = 2·C·512), the other methods timed and
    # judged beside it (label, method, options), the figure's faces and columns
    c.celeba_dir = "../shared/data/faces/celeba299"
    c.glint_identities = 4
    c.glint_pairs = 1
    c.celeba_identities = 36
    c.msg_steps = 1
    c.msg_quality = False
    c.msg_max_faces = 0  # > 0: stop after that many faces (resumable; experiments/deid_msg.py)
    c.msg_eval_step = 1
    c.msg_variants = ((1024.0, 0.7), (2048.0, 0.7))
    c.msg_default = "bounded ε=2048 ψ=0.7"  # jaxpriv.deid.method's MSG default, marked
    # the face region (jaxpriv.deid.ffhq.REGIONS; jaxpriv.deid.method's default) and other
    # regions blended from the same render, one row each; a note printed under the command
    c.msg_region = "forehead"
    c.msg_regions = ()
    c.msg_note = ""
    c.msg_baselines = (("blur", "blur", ()), ("mosaic", "mosaic", ()),
                       ("old 64×64 deid", "deid", (("generator", "face_gan_64"),)))
    c.figure_faces = 4
    c.figure_columns = ("bounded ε=2048 ψ=0.7", "old 64×64 deid", "blur", "mosaic")
    c.figure_labels = ("deid (MobileStyleGAN)", "old 64x64 deid", "blur", "mosaic")
    c.msg_results = "experiments/results/deid_mobilestylegan"
    c.msg_region_results = "experiments/results/deid_mobilestylegan_region"  # its region sweep
    c.command = "python -m experiments.main --config experiments/configs/deid_eval.py --workdir DIR"
    return c

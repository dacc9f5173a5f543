"""Face-detector recall: dlib HOG vs YuNet on CelebA-299 (one labelled face per crop) and on the
group photos of ``scenes/dlib`` + the bundled samples (hand-checked faces:
``experiments/labels/scene_faces.json``).

Run: python -m experiments.main --config experiments/configs/detector_recall.py \
    --workdir DIR
Smoke run: --config.max_crops=50
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.experiment = "detector_recall"
    # 256×256 loose crops + landmarks.csv (YuNet box per crop); CelebA: research use only
    c.celeba_dir = "../shared/data/faces/celeba299"
    # hand-checked faces of the group photos and the bundled samples (see the file's "about")
    c.scene_labels = "experiments/labels/scene_faces.json"
    c.scene_roots = {"scenes": "../shared/data/scenes/dlib", "samples": "jaxpriv/samples"}
    # "detector:upsample" (HOG: pyramid levels; YuNet: image enlarged ×2^upsample); "auto": the
    # detector's default (YuNet: 1 below YUNET_AUTO_SIDE px, else 0) = protect's default
    c.settings = ("hog:0", "hog:1", "yunet:0", "yunet:1", "yunet:auto")
    c.score_threshold = 0.6  # YuNet's, as OpenCV's FaceDetectorYN examples for this model
    c.nms_threshold = 0.3
    c.min_iou = 0.3  # a hit: IoU ≥ min_iou with the labelled box, or the labelled centre inside
    c.max_crops = 0  # 0 = all
    c.out_json = "experiments/results/detector_recall.json"
    c.out_md = "experiments/results/detector_recall.md"
    return c

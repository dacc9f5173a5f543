"""Faces in and out: detection (dlib HOG or YuNet), dlib-exact or ArcFace alignment, paste-back."""

from jaxpriv.faces.align import (
    ALIGNMENTS,
    aligned_crop_face,
    chip_mask,
    chips_from_aligned_crops,
    extract_chips,
    paste_chip,
    require_one_face,
)
from jaxpriv.faces.detect import (
    DEFAULT_DETECTOR,
    DETECTORS,
    Face,
    detect_faces,
    largest_face,
    pin_face,
)

__all__ = [
    "ALIGNMENTS",
    "aligned_crop_face",
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "Face",
    "chip_mask",
    "chips_from_aligned_crops",
    "detect_faces",
    "extract_chips",
    "largest_face",
    "paste_chip",
    "pin_face",
    "require_one_face",
]

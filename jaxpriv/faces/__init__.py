"""Faces in and out: detection, dlib-exact alignment, paste-back."""

from jaxpriv.faces.align import (
    chip_mask,
    chips_from_aligned_crops,
    extract_chips,
    paste_chip,
    require_one_face,
)
from jaxpriv.faces.detect import Face, detect_faces

__all__ = [
    "Face",
    "chip_mask",
    "chips_from_aligned_crops",
    "detect_faces",
    "extract_chips",
    "paste_chip",
    "require_one_face",
]

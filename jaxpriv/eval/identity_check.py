"""Identity check of a protected photo (``protect --check-identity``): a report, never a filter.

For every face found in the original, each listed recognizer compares the original face with the
same face in the protected photo, at the recognizer's own threshold. The protected face is found
again by the same detector (the detection overlapping the original box most, IoU ≥ 0.3); when the
detector no longer finds it, the original's geometry is used, so a face the detector misses still
counts if its pixels match. Comparing with the *same* photo is stricter than the transfer
evaluation (another photo of the person): a face that passes here passes there more easily.

This only reports. It never changes an output, and no method may re-draw its noise on this
verdict: for ``deid`` that would choose the noise by the private face and void its ε.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from jaxpriv.faces import Face, detect_faces, extract_chips
from jaxpriv.tracking import iou

if TYPE_CHECKING:
    from jaxpriv.recognizers import Recognizer

MIN_IOU = 0.3


def same_faces(protected: np.ndarray, faces: Sequence[Face], detector: str,
               upsample: int | None = None) -> list[Face]:
    """For each original face, its detection in ``protected`` (most overlap, IoU ≥ ``MIN_IOU``)
    or the original face itself when the detector no longer finds it there."""
    found = detect_faces(protected, upsample, detector) if faces else []
    out = []
    for face in faces:
        best = max(found, key=lambda f: iou(f.box, face.box), default=None)
        out.append(best if best is not None and iou(best.box, face.box) >= MIN_IOU else face)
    return out


def still_recognised(original: np.ndarray, protected: np.ndarray, faces: Sequence[Face],
                     recognizers: Sequence[Recognizer], detector: str,
                     upsample: int | None = None) -> dict[str, int]:
    """How many of ``faces`` (found in ``original`` by ``detector``, ``upsample``) each
    recognizer still takes for the same person in ``protected`` (distance < its threshold)."""
    if not faces:
        return {rec.name: 0 for rec in recognizers}
    again = same_faces(protected, faces, detector, upsample)
    counts = {}
    for rec in recognizers:
        before = rec.embed(extract_chips(original, list(faces), rec)[0])
        after = rec.embed(extract_chips(protected, again, rec)[0])
        counts[rec.name] = int(np.sum(rec.distance(before, after) < rec.threshold))
    return counts

"""A small face tracker for video: one track id per face across frames.

Detections are matched to live tracks greedily by similarity = max(IoU of the boxes, landmark
closeness), where landmark closeness = 1 − (mean distance between the 5 landmarks) / (track box
width). A track that the detector misses is *bridged*: its box is extrapolated with the track's
smoothed per-frame velocity and grown by ``grow`` of its size per missed frame (capped at
``max_grow``), its landmarks (dlib's 5 and, from YuNet, the ArcFace 5) follow the box (held
relative to it). When the track is found again,
:attr:`Tracker.rejoined` gives its previous detection so that a caller that held frames back can
replace the extrapolated boxes of the gap by :func:`interpolate` between the two detections.
A track is dropped only on a frame where detection ran, once it has gone more than ``max_gap``
frames without a detection, so the frames between two detection passes (``--detect-every``)
are always covered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from jaxpriv.faces import Face

Box = tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class TrackedFace:
    """A face in one frame: its track id, the face to protect, and whether the detector found it
    on this frame (``False``: bridged from the track's last detection)."""

    track_id: int
    face: Face
    detected: bool


@dataclasses.dataclass
class Track:
    """State of one tracked face (boxes are (left, top, right, bottom) floats)."""

    track_id: int
    box: np.ndarray
    landmarks: np.ndarray
    last_frame: int
    first_frame: int
    velocity: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(4))
    hits: int = 1
    arcface: np.ndarray | None = None  # the last detection's Face.arcface_landmarks

    def predict(self, frame: int, grow: float, max_grow: float) -> Face:
        """The face extrapolated to ``frame`` (held and grown when the velocity is unknown)."""
        gap = frame - self.last_frame
        box = self.box + self.velocity * gap
        w, h = box[2] - box[0] + 1, box[3] - box[1] + 1
        g = min(grow * abs(gap), max_grow)
        box = box + np.array([-g * w, -g * h, g * w, g * h])
        return _moved_face(self.box, box, self.landmarks, self.arcface)


@dataclasses.dataclass(frozen=True)
class Sighting:
    """Where the detector saw a track: frame index, box, landmarks (and ArcFace points)."""

    frame: int
    box: np.ndarray
    landmarks: np.ndarray
    arcface: np.ndarray | None = None


def interpolate(before: Sighting, after: Sighting, frame: int, grow: float = 0.0) -> Face:
    """The face at ``frame`` linearly between two sightings, grown by ``grow`` of its size per
    frame of distance to the nearer sighting (slack for motion that is not linear)."""
    t = (frame - before.frame) / max(after.frame - before.frame, 1)
    box = (1 - t) * before.box + t * after.box
    lm = (1 - t) * before.landmarks + t * after.landmarks
    arcface = None
    if before.arcface is not None and after.arcface is not None:
        arcface = (1 - t) * before.arcface + t * after.arcface
    g = grow * min(frame - before.frame, after.frame - frame)
    w, h = box[2] - box[0] + 1, box[3] - box[1] + 1
    grown = box + np.array([-g * w, -g * h, g * w, g * h])
    return _moved_face(box, grown, lm, arcface)


def iou(a: Box | np.ndarray, b: Box | np.ndarray) -> float:
    """Intersection over union of two inclusive pixel boxes (left, top, right, bottom)."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    area = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return float(inter / (area - inter))


def similarity(track_face: Face, face: Face) -> float:
    """max(IoU, landmark closeness) of a track's predicted face and a detection, in [0, 1]."""
    overlap = iou(track_face.box, face.box)
    width = max(track_face.box[2] - track_face.box[0] + 1, 1.0)
    dist = float(np.linalg.norm(np.asarray(track_face.landmarks) - face.landmarks, axis=1).mean())
    return max(overlap, 1.0 - dist / width)


def _move_landmarks(landmarks: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Map landmarks held relative to box ``old`` into box ``new`` (scale + shift per axis)."""
    sx = (new[2] - new[0] + 1) / max(old[2] - old[0] + 1, 1e-6)
    sy = (new[3] - new[1] + 1) / max(old[3] - old[1] + 1, 1e-6)
    lm = np.asarray(landmarks, np.float64)
    return np.stack([new[0] + (lm[:, 0] - old[0]) * sx, new[1] + (lm[:, 1] - old[1]) * sy], 1)


def _moved_face(old: np.ndarray, new: np.ndarray, landmarks: np.ndarray,
                arcface: np.ndarray | None) -> Face:
    """The face in box ``new`` whose landmarks (both sets) were held relative to box ``old``."""
    return Face(tuple(float(v) for v in new), _move_landmarks(landmarks, old, new),
                arcface_landmarks=None if arcface is None else _move_landmarks(arcface, old, new))


def _arcface(face: Face) -> np.ndarray | None:
    return None if face.arcface_landmarks is None else np.asarray(face.arcface_landmarks,
                                                                  np.float64)


class Tracker:
    """Give each face a stable track id; bridge detection gaps of up to ``max_gap`` frames.

    Call :meth:`update` with the detections of frames where the detector ran, :meth:`predict`
    on the others; both return every live track's face for that frame. After a call, ``born``
    lists the track ids started on that frame and ``rejoined`` maps each track found again
    after a gap (> 1 frame) to its previous :class:`Sighting`.
    """

    def __init__(
        self,
        max_gap: int = 5,
        min_similarity: float = 0.3,
        grow: float = 0.04,
        max_grow: float = 0.3,
        smoothing: float = 0.5,
    ) -> None:
        self.max_gap = max_gap
        self.min_similarity = min_similarity
        self.grow = grow
        self.max_grow = max_grow
        self.smoothing = smoothing
        self.tracks: list[Track] = []
        self.born: list[int] = []
        self.rejoined: dict[int, Sighting] = {}
        self.next_id = 0

    def predict(self, frame: int) -> list[TrackedFace]:
        """Every live track's extrapolated face on a frame without detection."""
        self.born, self.rejoined = [], {}
        return [TrackedFace(t.track_id, t.predict(frame, self.grow, self.max_grow), False)
                for t in self.tracks]

    def update(self, frame: int, faces: Sequence[Face]) -> list[TrackedFace]:
        """Match ``faces`` detected on ``frame`` to the tracks; start tracks for the rest, drop
        tracks unseen for more than ``max_gap`` frames. Detected faces come back unchanged."""
        predicted = [t.predict(frame, 0.0, 0.0) for t in self.tracks]
        pairs = sorted(
            ((similarity(p, f), ti, fi) for ti, p in enumerate(predicted)
             for fi, f in enumerate(faces)),
            reverse=True,
        )
        matched_t: dict[int, int] = {}
        used_f: set[int] = set()
        for sim, ti, fi in pairs:
            if sim < self.min_similarity:
                break
            if ti not in matched_t and fi not in used_f:
                matched_t[ti] = fi
                used_f.add(fi)
        out: list[TrackedFace] = []
        self.rejoined = {}
        for ti, fi in matched_t.items():
            t, face = self.tracks[ti], faces[fi]
            if frame - t.last_frame > 1:
                self.rejoined[t.track_id] = Sighting(t.last_frame, t.box, t.landmarks,
                                                     t.arcface)
            box = np.asarray(face.box, np.float64)
            v = (box - t.box) / max(frame - t.last_frame, 1)
            a = self.smoothing
            t.velocity = v if t.hits == 1 else a * t.velocity + (1 - a) * v
            t.box, t.landmarks, t.last_frame = box, np.asarray(face.landmarks, np.float64), frame
            t.arcface = _arcface(face)
            t.hits += 1
            out.append(TrackedFace(t.track_id, face, True))
        self.born = []
        for fi, face in enumerate(faces):
            if fi not in used_f:
                t = Track(self.next_id, np.asarray(face.box, np.float64),
                          np.asarray(face.landmarks, np.float64), frame, frame,
                          arcface=_arcface(face))
                self.tracks.append(t)
                self.born.append(t.track_id)
                self.next_id += 1
                out.append(TrackedFace(t.track_id, face, True))
        self.tracks = [t for t in self.tracks if frame - t.last_frame <= self.max_gap]
        lost = {t.track_id for t in self.tracks} - {tf.track_id for tf in out}
        out += [TrackedFace(t.track_id, t.predict(frame, self.grow, self.max_grow), False)
                for t in self.tracks if t.track_id in lost]
        return sorted(out, key=lambda tf: tf.track_id)

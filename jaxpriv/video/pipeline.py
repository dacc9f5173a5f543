"""Protect every face in a video file or a live stream, consistently over time.

Per frame: decode (:mod:`jaxpriv.video.codec`) → detect faces (``detector``, YuNet by default,
every ``detect_every``-th frame, on a copy downscaled by ``detect_scale``) → track
(:mod:`jaxpriv.tracking`) → protect each face with its *track's* key
``jax.random.fold_in(video_key, track_id)``, so a face keeps the same noise / identity / mask
stream for as long as it is tracked → encode.

* Gaps: frames are held back ``lookahead`` = max(max_gap, detect_every − 1) frames before
  being protected. A track the detector misses keeps being protected for up to ``max_gap``
  frames (and always until the next detection pass): when it is found again within the held
  frames, the gap gets boxes interpolated between the two detections, otherwise its box is
  extrapolated. A new track is also applied to the held frames before its first detection, so
  a face the detector finds late does not flash unprotected either.
* Each face of a frame is one ``protect(frame, [face], key)`` call.
* Output: ``<name>.mp4`` with the input's frame rate, resolution (after applying a rotation
  tag), timestamps and audio (see :mod:`jaxpriv.video.codec`).
* A live source runs until it ends, ``end`` or Ctrl-C (the file is then finished normally).
  Nothing is shown on screen.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import jax
import numpy as np
from tqdm import tqdm

from jaxpriv.errors import JaxprivError
from jaxpriv.faces import DEFAULT_DETECTOR, Face, detect_faces
from jaxpriv.faces.detect import check_detector, landmarks_in_box
from jaxpriv.io.messages import reason
from jaxpriv.io.paths import is_stream, stream_name
from jaxpriv.methods import ProtectFn
from jaxpriv.tracking import Sighting, TrackedFace, Tracker, interpolate
from jaxpriv.video.codec import MAX_CRF, Writer, av, open_source, pick_codec, to_rgb

DetectFn = Callable[[np.ndarray], list[Face]]

AUDIO_SLACK = 0.05
"""Audio packets up to this many seconds before the first frame are kept (codec priming)."""

AUTO_DETECT_SIDE = 360
"""``detect_scale=None`` scales frames so that their short side is at most this many pixels."""

@dataclasses.dataclass(frozen=True)
class VideoOptions:
    """How to process a video (see the module docstring)."""

    detect_every: int = 1
    detect_scale: float | None = None  # None: short side down to AUTO_DETECT_SIDE px
    detector: str = DEFAULT_DETECTOR
    upsample: int | None = None  # None: the detector's default (detect_faces)
    max_gap: int = 5
    start: float | None = None  # seconds
    end: float | None = None  # seconds
    codec: str | None = None  # None: first available of VIDEO_CODECS
    crf: int = 18
    preset: str = "veryfast"
    progress: bool = True

    def __post_init__(self) -> None:
        problems = {
            "--detect-every": ("must be >= 1", self.detect_every, self.detect_every >= 1),
            "--max-gap": ("must be >= 0", self.max_gap, self.max_gap >= 0),
            "--crf": (f"must be in [0, {MAX_CRF}]", self.crf, 0 <= self.crf <= MAX_CRF),
            "--detect-scale": ("must be in (0, 4]", self.detect_scale,
                               self.detect_scale is None or 0 < self.detect_scale <= 4),
            "--start": ("must be a finite number >= 0", self.start,
                        self.start is None or 0 <= self.start < math.inf),
            "--end": ("must be a finite number > 0", self.end,
                      self.end is None or 0 < self.end < math.inf),
        }
        for flag, (rule, value, ok) in problems.items():
            if not ok:
                raise JaxprivError(f"{flag} {rule}, got {value}")
        check_detector(self.detector)
        if self.end is not None and self.end <= (self.start or 0.0):
            raise JaxprivError(f"--end ({self.end}) must be after --start ({self.start or 0})")

    @property
    def lookahead(self) -> int:
        """Frames held back so that a new track can be applied before its first detection."""
        return max(self.max_gap, self.detect_every - 1)


@dataclasses.dataclass
class VideoResult:
    """What happened to one video: counts are over the frames written."""

    output: str
    frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    codec: str = ""
    audio: str = "none"
    tracks: int = 0
    face_frames: int = 0  # frames with at least one protected face
    detected: int = 0  # faces protected where the detector found them
    bridged: int = 0  # faces protected from a track's held/extrapolated box
    detect_calls: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def frames_per_second(self) -> float:
        """Processing speed (frames written / wall seconds)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def track_key(video_key: jax.Array, track_id: int) -> jax.Array:
    """The key of one track: the same on every frame the track covers."""
    return jax.random.fold_in(video_key, track_id)


def protect_frame(
    frame: np.ndarray, tracked: Sequence[TrackedFace], protect: ProtectFn, video_key: jax.Array
) -> np.ndarray:
    """Protect each tracked face of one frame with its track's key (one call per face)."""
    out = frame
    for tf in tracked:
        out = protect(out, [tf.face], track_key(video_key, tf.track_id))
    return out


def make_detector(scale: float, upsample: int | None = None,
                  detector: str = DEFAULT_DETECTOR) -> DetectFn:
    """``detect_faces(..., upsample, detector)`` on the frame resized by ``scale``; boxes and
    YuNet's ArcFace points mapped back, dlib's landmarks recomputed on the full frame."""

    def detect(frame: np.ndarray) -> list[Face]:
        if scale == 1.0:
            return detect_faces(frame, upsample, detector)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=interp)
        faces = []
        for f in detect_faces(small, upsample, detector):
            box = (f.box[0] / scale, f.box[1] / scale,
                   (f.box[2] + 1) / scale - 1, (f.box[3] + 1) / scale - 1)
            arcface = None  # pixel centres: x = (x' + ½)/scale − ½
            if f.arcface_landmarks is not None:
                arcface = (np.asarray(f.arcface_landmarks, np.float64) + 0.5) / scale - 0.5
            faces.append(Face(box, landmarks_in_box(frame, box), f.score, arcface))
        return faces

    return detect


def auto_detect_scale(width: int, height: int) -> float:
    """The ``detect_scale=None`` choice: short side down to ``AUTO_DETECT_SIDE`` px, never up."""
    return min(1.0, AUTO_DETECT_SIDE / max(min(width, height), 1))



# --------------------------------------------------------------------------- the pipeline


@dataclasses.dataclass
class _Pending:
    index: int
    pts: int
    image: np.ndarray
    tracked: list[TrackedFace]


class _Run:
    """One :func:`protect_video` run, fed packet by packet. Frames wait ``lookahead`` frames in
    ``pending`` (so tracks found later still cover them, :func:`_revise_pending`) and are
    protected on the way out; the writer opens on the first frame kept, audio seen before it
    waits in ``early_audio``. Input times count from ``base`` (``start``/``end``); the first
    frame written (``origin``) is output time 0."""

    def __init__(self, container: Any, source: str | os.PathLike[str], output: Path,
                 overwrite: bool, codec: str, options: VideoOptions, protect: ProtectFn,
                 key: jax.Array, detect: DetectFn | None) -> None:
        self.output, self.overwrite, self.options = output, overwrite, options
        self.protect, self.key, self.detect = protect, key, detect
        self.live = is_stream(source)
        self.vin = container.streams.video[0]
        self.vin.thread_type = "AUTO"
        self.audio_in = list(container.streams.audio)
        self.tb = self.vin.time_base or Fraction(1, 90000)
        self.rate = self.vin.average_rate or self.vin.guessed_rate or Fraction(25)
        self.step = max(1, round(1 / (self.rate * self.tb)))  # one frame in time-base units
        self.result = VideoResult(str(output), fps=float(self.rate), codec=codec)
        self.bar = tqdm(total=_expected_frames(container, self.vin, options, self.rate),
                        unit="frame", desc=stream_name(str(source)) if self.live
                        else Path(source).name, disable=not options.progress, leave=False,
                        dynamic_ncols=True)
        self.tracker = Tracker(max_gap=options.max_gap)
        self.pending: collections.deque[_Pending] = collections.deque()
        self.early_audio: list[Any] = []
        self.writer: Writer | None = None
        self.base: float | None = None if self.live else 0.0  # seconds
        self.origin: float | None = None  # seconds
        self.last_pts: int | None = None
        self.index = 0

    def add_packet(self, packet: Any) -> bool:
        """Take one demuxed packet; ``False`` once a frame lies past ``end`` (stop reading)."""
        if packet.stream.type == "audio":
            self._add_audio(packet)
            return True
        try:
            frames = packet.decode()
        except av.InvalidDataError:
            return True  # a corrupt packet: skipped, as FFmpeg does
        return all(self._add_frame(frame) for frame in frames)  # stops at the first False

    def finish(self, source: str | os.PathLike[str]) -> VideoResult:
        """Protect and write the frames still held, then rename the finished file into place."""
        if self.writer is None:
            raise JaxprivError(f"{source}: no video frames"
                               + (" in the requested span" if self.options.start else ""))
        while self.pending:
            self._emit()
        self.writer.commit()
        self.writer = None
        self.result.tracks = self.tracker.next_id
        return self.result

    def close(self) -> None:
        """Delete an unfinished output (after an error) and close the progress bar."""
        if self.writer is not None:
            self.writer.abort()
        self.bar.close()

    def _keep_audio(self, packet: Any) -> bool:
        t = float(packet.pts * packet.time_base)
        end = self.options.end
        if end is not None and self.base is not None and t - self.base >= end:
            return False
        return self.origin is not None and t >= self.origin - AUDIO_SLACK

    def _add_audio(self, packet: Any) -> None:
        if packet.pts is None:
            return
        if self.writer is None:
            self.early_audio.append(packet)
        elif self._keep_audio(packet):
            self.writer.write_audio(packet, _units(self.origin, packet.time_base))

    def _add_frame(self, frame: Any) -> bool:
        """Track one decoded frame and hold it back; ``False`` if it lies past ``end``."""
        options = self.options
        t = float(frame.pts * self.tb) if frame.pts is not None else None
        if t is not None:
            self.base = t if self.base is None else self.base
            if options.start is not None and t - self.base < options.start - 1e-6:
                return True
            if options.end is not None and t - self.base >= options.end - 1e-6:
                return False
        image = to_rgb(frame)
        if self.writer is None:
            self._open(frame, image, t)
        pts = None if frame.pts is None else frame.pts - _units(self.origin, self.tb)
        if pts is None or (self.last_pts is not None and pts <= self.last_pts):
            pts = 0 if self.last_pts is None else self.last_pts + self.step
        self.last_pts = pts
        if self.index % options.detect_every == 0:
            tracked = self.tracker.update(self.index, self.detect(image))
            self.result.detect_calls += 1
        else:
            tracked = self.tracker.predict(self.index)
        _revise_pending(self.pending, self.tracker, self.index, options.lookahead)
        self.pending.append(_Pending(self.index, pts, image, tracked))
        self.index += 1
        while len(self.pending) > options.lookahead:
            self._emit()
        return True

    def _open(self, first: Any, image: np.ndarray, t: float | None) -> None:
        """Open the writer on the first frame kept (output time 0), write the audio that waited
        and, unless one was given, make the detector for this frame size."""
        self.origin = t or 0.0
        h, w = image.shape[:2]
        self.result.width, self.result.height = w, h
        o = self.options
        self.writer = Writer(self.output, self.overwrite, self.result.codec, o.crf, o.preset,
                             self.rate, self.tb, first, w, h, self.audio_in)
        self.result.audio = self.writer.audio_note
        for p in self.early_audio:
            if self._keep_audio(p):
                self.writer.write_audio(p, _units(self.origin, p.time_base))
        self.early_audio = []
        if self.detect is None:
            self.detect = make_detector(o.detect_scale or auto_detect_scale(w, h), o.upsample,
                                        o.detector)

    def _emit(self) -> None:
        """Protect and write the oldest held frame."""
        p = self.pending.popleft()
        image = protect_frame(p.image, p.tracked, self.protect, self.key)
        self.writer.write_video(np.asarray(image, np.uint8), p.pts)
        self.result.frames += 1
        self.result.face_frames += bool(p.tracked)
        self.result.detected += sum(tf.detected for tf in p.tracked)
        self.result.bridged += sum(not tf.detected for tf in p.tracked)
        self.bar.update()


def protect_video(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    protect: ProtectFn,
    key: jax.Array,
    options: VideoOptions | None = None,
    overwrite: bool = False,
    detect: DetectFn | None = None,
) -> VideoResult:
    """Protect every face of the video ``source`` (file, URL or ``camera:INDEX``) into the MP4
    ``output``. ``key`` is the video's key; each track uses ``track_key(key, track_id)``.
    ``detect`` replaces ``options.detector`` (it then gets full-resolution frames)."""
    options = options or VideoOptions()
    output = Path(output)
    if output.exists() and not overwrite:
        raise JaxprivError(f"{output}: exists (use --overwrite)")
    codec = pick_codec(options.codec)
    container = open_source(source)
    run: _Run | None = None
    t0 = time.perf_counter()
    try:
        run = _Run(container, source, output, overwrite, codec, options, protect, key, detect)
        if options.start and not run.live:
            with contextlib.suppress(av.FFmpegError):
                container.seek(int(options.start / run.tb), stream=run.vin, backward=True)
        try:
            for packet in container.demux(run.vin, *run.audio_in):
                if not run.add_packet(packet):
                    break
        except KeyboardInterrupt:
            if not run.live or run.writer is None:
                raise
            run.result.interrupted = True
        result = run.finish(source)
    except av.FFmpegError as e:
        raise JaxprivError(f"{source}: video error ({reason(e)})") from e
    finally:
        if run is not None:
            run.close()
        container.close()
    result.seconds = time.perf_counter() - t0
    return result

def _revise_pending(pending: Sequence[_Pending], tracker: Tracker, index: int,
                    lookahead: int) -> None:
    """Use what frame ``index`` taught the tracker on the frames still held back: a new track
    is applied to the ``lookahead`` frames before it (box held, growing); a track found again
    gets boxes interpolated between its two sightings instead of extrapolated ones."""
    tracks = {t.track_id: t for t in tracker.tracks}
    for tid in tracker.born:
        t = tracks[tid]
        for p in pending:
            if index - p.index <= lookahead:
                face = t.predict(p.index, tracker.grow, tracker.max_grow)
                p.tracked.append(TrackedFace(tid, face, False))
    for tid, before in tracker.rejoined.items():
        now = Sighting(index, tracks[tid].box, tracks[tid].landmarks, tracks[tid].arcface)
        for p in pending:
            if before.frame < p.index:
                face = interpolate(before, now, p.index, tracker.grow / 2)
                p.tracked = [TrackedFace(tid, face, False) if tf.track_id == tid else tf
                             for tf in p.tracked]


def _units(seconds: float | None, time_base: Fraction) -> int:
    """``seconds`` in ``time_base`` units (0 for ``None``)."""
    return round(seconds / time_base) if seconds else 0


def _expected_frames(container: Any, vin: Any, options: VideoOptions,
                     rate: Fraction) -> int | None:
    """Frames the run will write, for the progress bar (``None`` when unknown)."""
    duration = None
    if vin.duration and vin.time_base:
        duration = float(vin.duration * vin.time_base)
    elif container.duration:
        duration = container.duration / 1e6
    if duration is None:
        return None
    span = min(duration, options.end or duration) - (options.start or 0.0)
    if vin.frames and not options.start and not options.end:
        return vin.frames
    return max(0, round(span * float(rate)))

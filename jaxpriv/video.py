"""Protect every face in a video file or a live stream, consistently over time.

Decoding and encoding use PyAV (``av``, which ships its own FFmpeg). Per frame: decode → detect
faces (every ``detect_every``-th frame, on a copy downscaled by ``detect_scale``) → track
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
* Output: ``<name>.mp4``, H.264 (``libx264``; ``mpeg4`` if the bundled FFmpeg has no H.264
  encoder), same frame rate, resolution (after applying a rotation tag) and timestamps, 4:2:0
  (4:4:4 for odd sizes), the input's colour matrix tags (e.g. BT.709) kept; audio streams are
  copied packet for packet (re-encoded to AAC only when MP4 cannot hold the codec); subtitle
  and data streams and metadata are dropped. Written to a hidden temp file and renamed.
* Sources: a file, a URL (``rtsp://``, ``http://`` ...) or ``camera:INDEX`` (V4L2 on Linux,
  AVFoundation on macOS). A live source runs until it ends, ``end`` or Ctrl-C (the file is then
  finished normally). Nothing is shown on screen.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import jax
import numpy as np
from tqdm import tqdm

from jaxpriv import io
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face, detect_faces
from jaxpriv.faces.detect import landmarks_in_box
from jaxpriv.methods import ProtectFn
from jaxpriv.tracking import Sighting, TrackedFace, Tracker, interpolate

try:  # PyAV is needed for videos only: photos work without it
    import av
except ImportError:  # pragma: no cover
    av = None

DetectFn = Callable[[np.ndarray], list[Face]]

VIDEO_CODECS = ("libx264", "h264", "mpeg4")
"""Output encoders in order of preference (the first that PyAV's FFmpeg has)."""

MP4_AUDIO_COPY = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"})
"""Audio codecs copied into MP4 as they are; others are re-encoded to AAC."""

AUDIO_SLACK = 0.05
"""Audio packets up to this many seconds before the first frame are kept (codec priming)."""

AUTO_DETECT_SIDE = 360
"""``detect_scale=None`` scales frames so that their short side is at most this many pixels."""

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
MAX_CRF = 51
"""Largest H.264 ``--crf`` (8-bit libx264: 0 = lossless … 51 = worst)."""

_SWS_COLORSPACE = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9}  # AVColorSpace -> swscale's SWS_CS_*


@dataclasses.dataclass(frozen=True)
class VideoOptions:
    """How to process a video (see the module docstring)."""

    detect_every: int = 1
    detect_scale: float | None = None  # None: short side down to AUTO_DETECT_SIDE px
    upsample: int = 1
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


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has one of ``io.VIDEO_EXTENSIONS`` (any case)."""
    return Path(path).suffix.lower() in io.VIDEO_EXTENSIONS


def is_stream(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` is a URL (``scheme://...``) or a ``camera:INDEX`` source."""
    s = str(source)
    return bool(_URL.match(s)) or bool(re.fullmatch(r"camera:\d+", s))


def camera_source(index: int) -> str:
    """The source string of local camera ``index`` (``camera:INDEX``)."""
    return f"camera:{int(index)}"


def stream_name(source: str) -> str:
    """A file stem for a stream: ``camera0``, or the URL's last path part (else its host)."""
    if source.startswith("camera:"):
        return "camera" + source.split(":", 1)[1]
    rest = _URL.sub("", source).split("?", 1)[0].rstrip("/")
    part = rest.rsplit("/", 1)[-1] if "/" in rest else rest
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(part).stem).strip("._") or "stream"
    return stem


def video_output_path(
    input_path: str | os.PathLike[str], input_root: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
) -> Path:
    """``out_dir / <subfolders below input_root> / <stem>.mp4`` (like photos' outputs)."""
    return io.output_path(input_path, input_root, out_dir, ".png").with_suffix(".mp4")


def require_av() -> None:
    """Raise a clear ``JaxprivError`` when PyAV is not installed."""
    if av is None:
        raise JaxprivError("videos need PyAV: pip install 'av>=18.1,<20'")


def pick_codec(preferred: str | None = None) -> str:
    """``preferred`` if PyAV's FFmpeg can encode it, else the first of ``VIDEO_CODECS`` it can."""
    require_av()
    for name in ([preferred] if preferred else []) + list(VIDEO_CODECS):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # noqa: BLE001 - unknown encoder
            if name == preferred:
                raise JaxprivError(f"video encoder {preferred!r} not available") from None
    raise JaxprivError(f"none of the video encoders {VIDEO_CODECS} is available")


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


def make_detector(scale: float, upsample: int = 1) -> DetectFn:
    """dlib detection on the frame resized by ``scale``; boxes mapped back, landmarks recomputed
    on the full frame."""

    def detect(frame: np.ndarray) -> list[Face]:
        if scale == 1.0:
            return detect_faces(frame, upsample=upsample)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=interp)
        faces = []
        for f in detect_faces(small, upsample=upsample):
            box = (f.box[0] / scale, f.box[1] / scale,
                   (f.box[2] + 1) / scale - 1, (f.box[3] + 1) / scale - 1)
            faces.append(Face(box, landmarks_in_box(frame, box), f.score))
        return faces

    return detect


def auto_detect_scale(width: int, height: int) -> float:
    """The ``detect_scale=None`` choice: short side down to ``AUTO_DETECT_SIDE`` px, never up."""
    return min(1.0, AUTO_DETECT_SIDE / max(min(width, height), 1))


# --------------------------------------------------------------------------- reading


def open_source(source: str | os.PathLike[str], timeout: float = 10.0) -> Any:
    """Open a file, URL or ``camera:INDEX`` with PyAV (``JaxprivError`` if it cannot)."""
    require_av()
    s = str(source)
    kwargs: dict[str, Any] = {}
    if s.startswith("camera:"):
        index = s.split(":", 1)[1]
        if sys.platform.startswith("linux"):
            s, kwargs["format"] = f"/dev/video{index}", "v4l2"
        elif sys.platform == "darwin":
            s, kwargs["format"] = index, "avfoundation"
        else:
            raise JaxprivError(f"{source}: cameras by index need Linux or macOS; pass the "
                               "camera's URL or FFmpeg device name instead")
    elif _URL.match(s):
        kwargs["timeout"] = timeout
        if s.startswith(("rtsp://", "rtsps://")):
            kwargs["options"] = {"rtsp_transport": "tcp"}
    elif not Path(s).is_file():
        raise JaxprivError(f"{source}: no such file")
    try:
        container = av.open(s, "r", **kwargs)
    except (av.FFmpegError, OSError) as e:
        raise JaxprivError(f"{source}: cannot open as video ({_reason(e)})") from e
    if not container.streams.video:
        container.close()
        raise JaxprivError(f"{source}: no video stream")
    return container


def read_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Every frame of a video file as uint8 RGB (rotation tags applied)."""
    container = open_source(path)
    with container:
        for frame in container.decode(video=0):
            yield _to_rgb(frame)


def _to_rgb(frame: Any) -> np.ndarray:
    arr = frame.to_ndarray(format="rgb24")
    k = round(getattr(frame, "rotation", 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(arr, k)) if k else arr


# --------------------------------------------------------------------------- writing


class _Writer:
    """An MP4 being written to a hidden temp file next to ``path``; ``commit`` renames it."""

    def __init__(self, path: Path, overwrite: bool, codec: str, options: VideoOptions,
                 rate: Fraction, time_base: Fraction, first: Any, width: int, height: int,
                 audio_in: Sequence[Any]) -> None:
        self.path, self.overwrite = path, overwrite
        self.tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.out = av.open(str(self.tmp), "w", format="mp4", options={"movflags": "+faststart"})
        try:
            self.video = self._add_video(codec, options, rate, time_base, width, height)
            self.colorspace = _SWS_COLORSPACE.get(int(first.colorspace))
            if self.colorspace is not None:  # keep the input's YUV matrix (e.g. BT.709 for HD)
                cc = self.video.codec_context
                cc.colorspace, cc.color_range = int(first.colorspace), 1  # limited range out
                cc.color_primaries, cc.color_trc = first.color_primaries, first.color_trc
            self.audio: dict[int, tuple[Any, Any]] = {}  # input index -> (out stream, decoder)
            self.audio_note = "none"
            notes = []
            for s in audio_in:
                name = s.codec_context.name
                if name in MP4_AUDIO_COPY:
                    self.audio[s.index] = (self.out.add_stream_from_template(s), None)
                    notes.append(f"{name} copied")
                else:
                    o = self.out.add_stream("aac", rate=s.codec_context.sample_rate or 48000)
                    self.audio[s.index] = (o, s.codec_context)
                    notes.append(f"{name} re-encoded to aac")
            self.audio_note = ", ".join(notes) or "none"
            self.out.start_encoding()
        except Exception:
            self.abort()
            raise

    def _add_video(self, codec: str, options: VideoOptions, rate: Fraction,
                   time_base: Fraction, width: int, height: int) -> Any:
        v = self.out.add_stream(codec, rate=rate)
        v.width, v.height = width, height
        odd = width % 2 or height % 2
        v.pix_fmt = "yuv444p" if odd and codec != "mpeg4" else "yuv420p"
        v.time_base = time_base
        v.codec_context.time_base = time_base
        if codec in ("libx264", "h264"):
            v.options = {"crf": str(options.crf), "preset": options.preset}
        else:
            v.bit_rate = int(width * height * float(rate) * 0.2)
        return v

    def write_video(self, image: np.ndarray, pts: int) -> None:
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        if self.colorspace is not None:
            frame = frame.reformat(format=self.video.codec_context.pix_fmt,
                                   dst_colorspace=self.colorspace, dst_color_range=1)
        frame.pts = pts
        for packet in self.video.encode(frame):
            self.out.mux(packet)

    def write_audio(self, packet: Any, shift: int) -> None:
        stream, decoder = self.audio[packet.stream.index]
        if decoder is None:
            packet.pts = packet.pts - shift
            packet.dts = (packet.dts if packet.dts is not None else packet.pts + shift) - shift
            packet.stream = stream
            self.out.mux(packet)
            return
        for frame in decoder.decode(packet):
            frame.pts = None if frame.pts is None else frame.pts - shift
            for p in stream.encode(frame):
                self.out.mux(p)

    def commit(self) -> None:
        for packet in self.video.encode():
            self.out.mux(packet)
        for stream, decoder in self.audio.values():
            if decoder is not None:
                for p in stream.encode():
                    self.out.mux(p)
        self.out.close()
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        try:
            io._move_into_place(self.tmp, self.path, self.overwrite)
        finally:
            with contextlib.suppress(OSError):
                self.tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.out.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the pipeline


@dataclasses.dataclass
class _Pending:
    index: int
    pts: int
    image: np.ndarray
    tracked: list[TrackedFace]


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
    ``detect`` replaces the dlib detector (it then gets full-resolution frames)."""
    options = options or VideoOptions()
    output = Path(output)
    if output.exists() and not overwrite:
        raise JaxprivError(f"{output}: exists (use --overwrite)")
    live = is_stream(source)
    codec = pick_codec(options.codec)
    container = open_source(source)
    result = VideoResult(str(output), codec=codec)
    writer: _Writer | None = None
    bar = None
    t0 = time.perf_counter()
    try:
        vin = container.streams.video[0]
        vin.thread_type = "AUTO"
        audio_in = list(container.streams.audio)
        tb = vin.time_base or Fraction(1, 90000)
        rate = vin.average_rate or vin.guessed_rate or Fraction(25)
        result.fps = float(rate)
        step = max(1, round(1 / (rate * tb)))  # one frame in time-base units
        bar = tqdm(total=_expected_frames(container, vin, options, rate), unit="frame",
                   desc=stream_name(str(source)) if live else Path(source).name,
                   disable=not options.progress, leave=False, dynamic_ncols=True)
        if options.start and not live:
            with contextlib.suppress(av.FFmpegError):
                container.seek(int(options.start / tb), stream=vin, backward=True)
        tracker = Tracker(max_gap=options.max_gap)
        pending: collections.deque[_Pending] = collections.deque()
        early_audio: list[Any] = []
        base: float | None = None if live else 0.0  # start/end count from here (seconds)
        origin: float | None = None  # time of the first frame written: output t = 0
        last_pts: int | None = None
        index = 0

        def keep_audio(packet: Any) -> bool:
            t = float(packet.pts * packet.time_base)
            if options.end is not None and base is not None and t - base >= options.end:
                return False
            return origin is not None and t >= origin - AUDIO_SLACK

        def emit() -> None:
            """Protect and write the oldest held frame."""
            p = pending.popleft()
            if writer is None:
                return
            image = protect_frame(p.image, p.tracked, protect, key)
            writer.write_video(np.asarray(image, np.uint8), p.pts)
            result.frames += 1
            result.face_frames += bool(p.tracked)
            result.detected += sum(tf.detected for tf in p.tracked)
            result.bridged += sum(not tf.detected for tf in p.tracked)
            bar.update()

        done = False
        try:
            for packet in container.demux(vin, *audio_in):
                if packet.stream.type == "audio":
                    if packet.pts is None:
                        continue
                    if writer is None:
                        early_audio.append(packet)
                    elif keep_audio(packet):
                        writer.write_audio(packet, _units(origin, packet.time_base))
                    continue
                try:
                    frames = packet.decode()
                except av.InvalidDataError:
                    continue  # a corrupt packet: skipped, as FFmpeg does
                for frame in frames:
                    t = float(frame.pts * tb) if frame.pts is not None else None
                    if t is not None:
                        base = t if base is None else base
                        if options.start is not None and t - base < options.start - 1e-6:
                            continue
                        if options.end is not None and t - base >= options.end - 1e-6:
                            done = True
                            break
                    image = _to_rgb(frame)
                    if writer is None:
                        origin = t or 0.0
                        h, w = image.shape[:2]
                        result.width, result.height = w, h
                        writer = _Writer(output, overwrite, codec, options, rate, tb, frame,
                                         w, h, audio_in)
                        result.audio = writer.audio_note
                        for p in early_audio:
                            if keep_audio(p):
                                writer.write_audio(p, _units(origin, p.time_base))
                        early_audio = []
                        if detect is None:
                            scale = options.detect_scale or auto_detect_scale(w, h)
                            detect = make_detector(scale, options.upsample)
                    pts = None if frame.pts is None else frame.pts - _units(origin, tb)
                    if pts is None or (last_pts is not None and pts <= last_pts):
                        pts = 0 if last_pts is None else last_pts + step
                    last_pts = pts
                    if index % options.detect_every == 0:
                        tracked = tracker.update(index, detect(image))
                        result.detect_calls += 1
                    else:
                        tracked = tracker.predict(index)
                    _revise_pending(pending, tracker, index, options.lookahead)
                    pending.append(_Pending(index, pts, image, tracked))
                    index += 1
                    while len(pending) > options.lookahead:
                        emit()
                if done:
                    break
        except KeyboardInterrupt:
            if not live or writer is None:
                raise
            result.interrupted = True
        if writer is None:
            raise JaxprivError(f"{source}: no video frames"
                               + (" in the requested span" if options.start else ""))
        while pending:
            emit()
        writer.commit()
        writer = None
    except av.FFmpegError as e:
        raise JaxprivError(f"{source}: video error ({_reason(e)})") from e
    finally:
        if writer is not None:
            writer.abort()
        if bar is not None:
            bar.close()
        container.close()
    result.tracks = tracker.next_id
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
        now = Sighting(index, tracks[tid].box, tracks[tid].landmarks)
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


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# --------------------------------------------------------------------------- test clips


@dataclasses.dataclass
class SyntheticClip:
    """A generated clip and the true face boxes (left, top, right, bottom) of each frame."""

    path: Path
    fps: int
    size: tuple[int, int]
    boxes: list[list[tuple[float, float, float, float]]]


def synthetic_clip(
    path: str | os.PathLike[str],
    photo: np.ndarray,
    faces: Sequence[Face],
    size: tuple[int, int] = (320, 240),
    seconds: float = 2.0,
    fps: int = 15,
    pan: float = 0.3,
    zoom: float = 0.3,
    audio_hz: float | None = 440.0,
    codec: str = "libx264",
) -> SyntheticClip:
    """Write a camera move (pan by ``pan`` of the faces' span, zoom in by ``1 + zoom``) over
    ``photo`` as a ``size`` = (W, H) video with a sine tone in AAC (``audio_hz=None``: silent),
    for tests and benchmarks. ``faces`` are the photo's faces; their boxes are mapped to every
    frame through the known camera transform."""
    require_av()
    w, h = size
    n = max(2, round(seconds * fps))
    boxes = np.array([f.box for f in faces], np.float64)
    ux0, uy0, ux1, uy1 = boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()
    uw, uh = 1.6 * (ux1 - ux0), 1.6 * (uy1 - uy0)
    s0 = min(w / uw, h / uh)
    cx0, cy0 = (ux0 + ux1) / 2, (uy0 + uy1) / 2
    out = av.open(str(path), "w")
    truth: list[list[tuple[float, float, float, float]]] = []
    try:
        v = out.add_stream(codec, rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        if codec in ("libx264", "h264"):
            v.options = {"crf": "18", "preset": "ultrafast"}
        a = out.add_stream("aac", rate=48000, layout="mono") if audio_hz else None
        for i in range(n):
            t = i / (n - 1)
            s = s0 * (1 + zoom * t)
            cx = cx0 + pan * (t - 0.5) * (ux1 - ux0)
            m = np.array([[s, 0, w / 2 - s * cx], [0, s, h / 2 - s * cy0]])
            img = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_AREA,
                                 borderMode=cv2.BORDER_REPLICATE)
            truth.append([(b[0] * s + m[0, 2], b[1] * s + m[1, 2], b[2] * s + m[0, 2],
                           b[3] * s + m[1, 2]) for b in boxes])
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        if a is not None:
            sr, total = 48000, round(48000 * n / fps)
            for k in range(0, total, 1024):
                x = np.arange(k, min(k + 1024, total)) / sr
                tone = (0.2 * np.sin(2 * np.pi * audio_hz * x)).astype(np.float32)[None]
                af = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                af.sample_rate, af.pts = sr, k
                for p in a.encode(af):
                    out.mux(p)
            for p in a.encode():
                out.mux(p)
    finally:
        out.close()
    return SyntheticClip(Path(path), fps, (w, h), truth)

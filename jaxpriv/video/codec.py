"""Video decoding and encoding with PyAV (``av``, which ships its own FFmpeg).

* Sources: a file, a URL (``rtsp://``, ``http://`` ...) or ``camera:INDEX`` (V4L2 on Linux,
  AVFoundation on macOS), opened by :func:`open_source`; frames come out as uint8 RGB with any
  rotation tag applied.
* Output (:class:`Writer`): MP4, H.264 (``libx264``; ``mpeg4`` if the bundled FFmpeg has no
  H.264 encoder), the frame rate, resolution and timestamps it is given, 4:2:0 (4:4:4 for odd
  sizes), the input's colour matrix tags (e.g. BT.709) kept; audio streams are copied packet for
  packet (re-encoded to AAC only when MP4 cannot hold the codec); subtitle and data streams and
  metadata are dropped. Written to a hidden temp file and renamed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from jaxpriv.errors import JaxprivError
from jaxpriv.io.messages import reason
from jaxpriv.io.paths import is_stream
from jaxpriv.io.write import move_into_place

try:  # PyAV is needed for videos only: photos work without it
    import av
except ImportError:  # pragma: no cover
    av = None

VIDEO_CODECS = ("libx264", "h264", "mpeg4")
"""Output encoders in order of preference (the first that PyAV's FFmpeg has)."""

MP4_AUDIO_COPY = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"})
"""Audio codecs copied into MP4 as they are; others are re-encoded to AAC."""

MAX_CRF = 51
"""Largest H.264 ``--crf`` (8-bit libx264: 0 = lossless … 51 = worst)."""

_SWS_COLORSPACE = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9}  # AVColorSpace -> swscale's SWS_CS_*


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
    elif is_stream(s):  # a URL
        kwargs["timeout"] = timeout
        if s.startswith(("rtsp://", "rtsps://")):
            kwargs["options"] = {"rtsp_transport": "tcp"}
    elif not Path(s).is_file():
        raise JaxprivError(f"{source}: no such file")
    try:
        container = av.open(s, "r", **kwargs)
    except (av.FFmpegError, OSError) as e:
        raise JaxprivError(f"{source}: cannot open as video ({reason(e)})") from e
    if not container.streams.video:
        container.close()
        raise JaxprivError(f"{source}: no video stream")
    return container


def read_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Every frame of a video file as uint8 RGB (rotation tags applied)."""
    container = open_source(path)
    with container:
        for frame in container.decode(video=0):
            yield to_rgb(frame)


def to_rgb(frame: Any) -> np.ndarray:
    """A decoded PyAV video frame as uint8 RGB, its rotation tag applied."""
    arr = frame.to_ndarray(format="rgb24")
    k = round(getattr(frame, "rotation", 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(arr, k)) if k else arr


# --------------------------------------------------------------------------- writing


class Writer:
    """An MP4 being written to a hidden temp file next to ``path``; ``commit`` renames it.
    ``first`` is the first input frame (its colour tags are kept), ``audio_in`` the input's
    audio streams (copied or re-encoded, see the module docstring)."""

    def __init__(self, path: Path, overwrite: bool, codec: str, crf: int, preset: str,
                 rate: Fraction, time_base: Fraction, first: Any, width: int, height: int,
                 audio_in: Sequence[Any]) -> None:
        self.path, self.overwrite = path, overwrite
        self.tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.out = av.open(str(self.tmp), "w", format="mp4", options={"movflags": "+faststart"})
        try:
            self.video = self._add_video(codec, crf, preset, rate, time_base, width, height)
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

    def _add_video(self, codec: str, crf: int, preset: str, rate: Fraction,
                   time_base: Fraction, width: int, height: int) -> Any:
        v = self.out.add_stream(codec, rate=rate)
        v.width, v.height = width, height
        odd = width % 2 or height % 2
        v.pix_fmt = "yuv444p" if odd and codec != "mpeg4" else "yuv420p"
        v.time_base = time_base
        v.codec_context.time_base = time_base
        if codec in ("libx264", "h264"):
            v.options = {"crf": str(crf), "preset": preset}
        else:
            v.bit_rate = int(width * height * float(rate) * 0.2)
        return v

    def write_video(self, image: np.ndarray, pts: int) -> None:
        """Encode one uint8 RGB frame at ``pts`` (output time-base units)."""
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        if self.colorspace is not None:
            frame = frame.reformat(format=self.video.codec_context.pix_fmt,
                                   dst_colorspace=self.colorspace, dst_color_range=1)
        frame.pts = pts
        for packet in self.video.encode(frame):
            self.out.mux(packet)

    def write_audio(self, packet: Any, shift: int) -> None:
        """Copy (or re-encode) one input audio packet, ``shift`` units earlier."""
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
        """Flush the encoders, fsync and rename the file into place (never over an existing
        file unless ``overwrite``)."""
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
            move_into_place(self.tmp, self.path, self.overwrite)
        finally:
            with contextlib.suppress(OSError):
                self.tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        """Close and delete the unfinished temp file."""
        with contextlib.suppress(Exception):
            self.out.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink(missing_ok=True)


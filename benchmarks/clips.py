"""Generated test clips: a camera move over a photo, with the true face boxes of every frame.

Used by ``tests/test_video.py`` and ``benchmarks/video.py`` (not part of the library). Import it
as ``benchmarks.clips`` with the repository root on ``sys.path`` (pytest from the root does
that; ``benchmarks/video.py`` adds it when run as a script).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import av
import cv2
import numpy as np

from jaxpriv.faces import Face


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

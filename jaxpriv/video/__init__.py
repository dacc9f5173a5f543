"""Videos and live streams: every face protected, consistently over time.

:mod:`~jaxpriv.video.codec` decodes and encodes with PyAV (sources, MP4 output, audio kept);
:mod:`~jaxpriv.video.pipeline` is the tracking-driven protection (``protect_video``: detect,
track, bridge missed detections, one key per track). Which inputs are videos or streams and
where their outputs go is :mod:`jaxpriv.io.paths`. The public names are re-exported here.
"""

from jaxpriv.video.codec import (
    MAX_CRF,
    VIDEO_CODECS,
    open_source,
    pick_codec,
    read_frames,
    require_av,
)
from jaxpriv.video.pipeline import (
    DetectFn,
    VideoOptions,
    VideoResult,
    auto_detect_scale,
    make_detector,
    protect_frame,
    protect_video,
    track_key,
)

__all__ = [
    "MAX_CRF", "VIDEO_CODECS", "DetectFn", "VideoOptions", "VideoResult", "auto_detect_scale",
    "make_detector", "open_source", "pick_codec", "protect_frame", "protect_video",
    "read_frames", "require_av", "track_key",
]

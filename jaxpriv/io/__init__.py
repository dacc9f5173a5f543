"""Files in and out: every image jaxpriv reads, every file it writes, every input it finds.

* :mod:`~jaxpriv.io.read`: ``load_image`` validates a file and yields uint8 sRGB pixels (EXIF
  orientation, ICC profile, alpha, 16-bit and odd modes handled; truncated, empty and oversized
  files refused with one line). Its size limit is ``jaxpriv.io.read.MAX_PIXELS``, read at call
  time (set it there, or pass ``max_pixels=``).
* :mod:`~jaxpriv.io.write`: ``write_bytes_atomic`` / ``write_text_atomic`` (hidden temp file
  renamed into place, never over an input, never over a file without ``overwrite``) and
  ``save_image`` (a fresh image with no metadata).
* :mod:`~jaxpriv.io.paths`: photos, videos and streams found in the arguments, and the output
  path of each.
"""

from jaxpriv.io.paths import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    camera_source,
    is_stream,
    is_video,
    iter_images,
    iter_media,
    output_path,
    stream_name,
    video_output_path,
)
from jaxpriv.io.read import load_image
from jaxpriv.io.write import (
    OUTPUT_FORMATS,
    check_writable,
    ensure_not_input,
    save_image,
    write_bytes_atomic,
    write_text_atomic,
)

__all__ = [
    "IMAGE_EXTENSIONS", "OUTPUT_FORMATS", "VIDEO_EXTENSIONS", "camera_source", "check_writable",
    "ensure_not_input", "is_stream", "is_video", "iter_images", "iter_media", "load_image",
    "output_path", "save_image", "stream_name", "video_output_path", "write_bytes_atomic",
    "write_text_atomic",
]

"""Video throughput: frames/s of ``jaxpriv.video.protect_video`` per method on a generated 720p
clip, next to the ``deface`` package (CenterFace ONNX) on the same clip, and the share of frames
in which a face in view went unprotected.

Run ``python benchmarks/video.py --help``; see ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jaxpriv.machine import machine_facts, usable_cpus

ROOT = Path(__file__).resolve().parents[1]

CHANGED = 8.0
"""A face counts as changed when mean |out − in| over the middle of its true box exceeds this
many grey levels (H.264 re-encoding alone gives ~2, blur ~20)."""

COVERED = 0.9
"""A face counts as covered when this share of the middle of its true box lies inside the boxes
the pipeline protected on that frame."""


@dataclass
class Row:
    """One measured run over the clip."""

    name: str
    detect_every: int | None
    frames: int
    seconds: float
    cpu_seconds: float  # this process + finished children (deface's ffmpeg)
    faces_in_view: int = 0
    uncovered_frames: int | None = None  # frames with a face outside every protected box
    unchanged_frames: int | None = None  # frames with a face whose pixels barely changed
    bridged: int | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_frame(self) -> float:
        return 1000 * self.cpu_seconds / self.frames if self.frames else 0.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke test (< 60 s on an idle machine): 0.5 s clip, blur + deface, "
                        "--detect-every 5")
    p.add_argument("--seconds", type=float, default=None, help="clip length (default 5)")
    p.add_argument("--fps", type=int, default=25, help="clip frame rate (default 25)")
    p.add_argument("--size", default="1280x720", help="clip size WxH (default 1280x720)")
    p.add_argument("--methods", default=None,
                   help="comma-separated jaxpriv methods (default: every registered one that "
                        "builds, except none)")
    p.add_argument("--detect-every", default=None,
                   help="comma-separated --detect-every values (default 1,5)")
    p.add_argument("--detectors", default="yunet",
                   help="comma-separated face detectors, each method runs once per detector "
                        "(default yunet, protect's default; e.g. yunet,hog)")
    p.add_argument("--no-deface", action="store_true", help="skip the deface package")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    return p.parse_args(argv)


def cpu_now() -> float:
    """CPU seconds of this process plus its waited-for children."""
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + child.ru_utime + child.ru_stime


def machine() -> dict[str, Any]:
    """Facts about the hardware and software of the run."""
    import av
    import cv2
    import dlib
    import jax

    versions = {"python": platform.python_version(), "jax": jax.__version__, "av": av.__version__,
                "ffmpeg": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
                "opencv": cv2.__version__, "dlib": dlib.__version__}
    for pkg in ("deface", "onnxruntime"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[pkg] = version(pkg)
    return {**machine_facts(), "usable_cpus": usable_cpus(), "versions": versions}


def inner(box: Sequence[float], shape: tuple[int, ...], shrink: float = 0.15
          ) -> tuple[int, int, int, int, float]:
    """(y0, y1, x0, x1) of the middle of a face box clipped to the frame, and the share of that
    middle that lies in the frame."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    y0, y1, x0, x1 = top + shrink * h, bottom - shrink * h, left + shrink * w, right - shrink * w
    full = max((y1 - y0) * (x1 - x0), 1e-9)
    cy0, cy1 = max(int(y0), 0), min(int(y1), shape[0])
    cx0, cx1 = max(int(x0), 0), min(int(x1), shape[1])
    return cy0, cy1, cx0, cx1, max(cy1 - cy0, 0) * max(cx1 - cx0, 0) / full


def unchanged_frames(src: Path, out: Path, truth: list[list[tuple]]) -> tuple[int, int]:
    """(frames with a face in view whose pixels did not change, faces in view)."""
    from jaxpriv.video import read_frames

    bad = seen = 0
    for a, b, boxes in zip(read_frames(src), read_frames(out), truth, strict=True):
        frame_bad = False
        for box in boxes:
            y0, y1, x0, x1, share = inner(box, a.shape)
            if share < 0.5:
                continue
            seen += 1
            diff = np.abs(a[y0:y1, x0:x1].astype(np.int16) - b[y0:y1, x0:x1]).mean()
            frame_bad |= bool(diff <= CHANGED)
        bad += frame_bad
    return bad, seen


def uncovered_frames(protected: list[list[tuple]], truth: list[list[tuple]],
                     shape: tuple[int, int]) -> int:
    """Frames where a face in view is not covered (``COVERED``) by the protected boxes."""
    bad = 0
    for boxes, faces in zip(protected, truth, strict=True):
        mask = np.zeros(shape, bool)
        for left, top, right, bottom in boxes:
            mask[max(int(top), 0):max(int(bottom) + 1, 0),
                 max(int(left), 0):max(int(right) + 1, 0)] = True
        for box in faces:
            y0, y1, x0, x1, share = inner(box, shape)
            if share >= 0.5 and mask[y0:y1, x0:x1].mean() < COVERED:
                bad += 1
                break
    return bad


def run_jaxpriv(name: str, protect: Callable, clip: Any, detect_every: int,
                out_dir: Path, detector: str = "yunet") -> Row:
    """One timed ``protect_video`` run; protected boxes recorded per frame for coverage."""
    import jax

    from jaxpriv import video
    from jaxpriv.video import pipeline

    protected: list[list[tuple]] = []
    real = pipeline.protect_frame

    def recording(frame: np.ndarray, tracked: Sequence[Any], fn: Callable, key: Any) -> Any:
        protected.append([tf.face.box for tf in tracked])
        return real(frame, tracked, fn, key)

    out = out_dir / f"{name}_{detect_every}_{detector}.mp4"
    pipeline.protect_frame = recording  # where protect_video looks it up
    try:
        c0, t0 = cpu_now(), time.perf_counter()
        r = video.protect_video(clip.path, out, protect, jax.random.key(0),
                                video.VideoOptions(detect_every=detect_every, progress=False,
                                                   detector=detector),
                                overwrite=True)
        seconds, cpu = time.perf_counter() - t0, cpu_now() - c0
    finally:
        pipeline.protect_frame = real
    row = Row(f"jaxpriv {name} ({detector})", detect_every, r.frames, seconds, cpu,
              bridged=r.bridged, extra={"tracks": r.tracks, "detect_calls": r.detect_calls,
                                        "audio": r.audio, "detector": detector})
    w, h = clip.size
    row.uncovered_frames = uncovered_frames(protected, clip.boxes, (h, w))
    if name != "smna":  # SMNA's change is imperceptible by design: coverage only
        row.unchanged_frames, row.faces_in_view = unchanged_frames(clip.path, out, clip.boxes)
    return row


def run_deface(clip: Any, out_dir: Path) -> Row:
    """deface's own video loop (imageio-ffmpeg in and out, CenterFace, its default blur) on
    the same clip, onnxruntime on the CPU."""
    from deface.centerface import CenterFace
    from deface.deface import video_detect

    out = out_dir / "deface.mp4"
    c0, t0 = cpu_now(), time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        centerface = CenterFace(backend="auto",
                                override_execution_provider="CPUExecutionProvider")
        video_detect(ipath=str(clip.path), opath=str(out), centerface=centerface, threshold=0.2,
                     enable_preview=False, cam=False, nested=False, replacewith="blur",
                     mask_scale=1.3, ellipse=True, draw_scores=False,
                     ffmpeg_config={"codec": "libx264"}, keep_audio=True)
    seconds, cpu = time.perf_counter() - t0, cpu_now() - c0
    from jaxpriv.video import read_frames

    frames = sum(1 for _ in read_frames(out))
    row = Row("deface (CenterFace, blur)", None, frames, seconds, cpu,
              note="defaults: full-res detection every frame, libx264 preset medium")
    row.unchanged_frames, row.faces_in_view = unchanged_frames(clip.path, out, clip.boxes)
    return row


def report(info: dict[str, Any], rows: list[Row]) -> str:
    """The printed table."""
    c = info["clip"]
    lines = [
        f"CPU: {info['cpu_model']}  os.cpu_count()={info['os_cpu_count']}  "
        f"usable={info['usable_cpus']}",
        f"load average at start: {' '.join(f'{v:.2f}' for v in info['loadavg_start'])}  "
        f"at end: {' '.join(f'{v:.2f}' for v in info['loadavg_end'])}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        f"clip: {c['width']}x{c['height']}, {c['frames']} frames at {c['fps']} fps "
        f"({c['seconds']} s), pan + zoom over two faces (~{c['face_px']} px wide), AAC tone",
        "",
        f"{'pipeline':<28} {'det/N':>5} {'frames/s':>8} {'cpu ms/fr':>9} {'unprot.':>8} "
        f"{'uncov.':>7} {'bridged':>7}  note",
        "-" * 96,
    ]

    def share(n: int | None, total: int) -> str:
        return "n/a" if n is None else f"{n / max(total, 1):.1%}"

    for r in rows:
        lines.append(
            f"{r.name:<28} {r.detect_every or '-':>5} {r.fps:>8.2f} {r.cpu_ms_per_frame:>9.0f} "
            f"{share(r.unchanged_frames, r.frames):>8} {share(r.uncovered_frames, r.frames):>7} "
            f"{'-' if r.bridged is None else r.bridged:>7}  {r.note}")
    lines += [
        "",
        "det/N = --detect-every; frames/s = wall clock, decode to encode, incl. JIT compiles;",
        "cpu ms/fr = CPU time per frame (this process + deface's ffmpeg children): steadier than",
        "  frames/s when other jobs share the machine (threads can make it exceed wall time);",
        f"unprot. = frames where a face in view barely changed (mean |out-in| <= {CHANGED:g}",
        "  over the middle of its true box); uncov. = frames where a face in view is not",
        f"  {COVERED:.0%}-covered by the boxes jaxpriv protected; bridged = faces protected from",
        "  a track's held/extrapolated box rather than a detection.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (0.5 if args.quick else 5.0)
    every = [int(v) for v in (args.detect_every or ("5" if args.quick else "1,5")).split(",")]
    width, height = (int(v) for v in args.size.lower().split("x"))
    detectors = args.detectors.split(",")

    import jaxpriv
    from jaxpriv.errors import JaxprivError
    from jaxpriv.faces import detect_faces
    from jaxpriv.io import load_image
    from jaxpriv.methods import get_method, method_names

    sys.path.insert(0, str(ROOT))  # run as a script: make ``benchmarks`` importable
    from benchmarks.clips import synthetic_clip

    info = machine()
    names = (args.methods.split(",") if args.methods
             else ["blur"] if args.quick else [m for m in method_names() if m != "none"])
    photo = load_image(Path(jaxpriv.__file__).parent / "samples" / "two_people.jpg")
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="jaxpriv_bench_video_") as tmp:
        tmp_dir = Path(tmp)
        truth = detect_faces(photo, detector="hog")  # the true boxes, as in earlier runs
        clip = synthetic_clip(tmp_dir / "clip.mp4", photo, truth,
                              size=(width, height), seconds=seconds, fps=args.fps, pan=0.15)
        widths = [b[2] - b[0] for b in clip.boxes[0]]
        info["clip"] = {"width": width, "height": height, "fps": args.fps, "seconds": seconds,
                        "frames": len(clip.boxes), "face_px": round(float(np.mean(widths)))}
        for name in names:
            try:
                protect = get_method(name).make()
            except JaxprivError as e:
                skipped[name] = str(e).splitlines()[0]
                print(f"skipped {name}: {skipped[name]}", file=sys.stderr)
                continue
            for detector in detectors:
                for n in every:
                    rows.append(run_jaxpriv(name, protect, clip, n, tmp_dir, detector))
                    print(f"done: {rows[-1].name} det/{n}: {rows[-1].fps:.2f} frames/s",
                          file=sys.stderr)
        if args.no_deface:
            skipped["deface"] = "--no-deface"
        elif importlib.util.find_spec("deface") is None:
            skipped["deface"] = "not installed (pip install deface)"
        else:
            try:
                rows.append(run_deface(clip, tmp_dir))
            except Exception as e:  # noqa: BLE001 - a peer's failure is reported, not fatal
                skipped["deface"] = f"{type(e).__name__}: {e}"
    info["loadavg_end"] = list(os.getloadavg())
    with contextlib.suppress(OSError):
        info["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    info["skipped"] = skipped
    print(report(info, rows))
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    if args.json is not None:
        results = [{**asdict(r), "fps": r.fps, "cpu_ms_per_frame": r.cpu_ms_per_frame}
                   for r in rows]
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``jaxpriv`` command line.

Every error a user can cause (bad file, no face, missing weights) is one line on stderr and exit
code 2; no traceback (set ``JAXPRIV_DEBUG=1`` to see one)."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxpriv.demo import add_demo_parser
from jaxpriv.errors import JaxprivError
from jaxpriv.eval import add_eval_parser
from jaxpriv.faces.detect import detector_arg
from jaxpriv.io.messages import shown
from jaxpriv.protect import seed_arg

EXIT_ERROR = 2
SAMPLES = Path(__file__).parent / "samples"


def _recognizer(args: argparse.Namespace):  # noqa: ANN202
    from jaxpriv.recognizers import load_recognizer

    kw = {"weights": args.weights} if args.weights else {}
    return load_recognizer(args.recognizer, **kw)


def _face_embedding(path: Path, rec, detector: str) -> np.ndarray:  # noqa: ANN001
    """Embedding of the largest face in the photo at ``path``."""
    from jaxpriv.faces import extract_chips, require_one_face
    from jaxpriv.io import load_image

    image = load_image(path)
    face = require_one_face(image, str(path), detector)
    chips, _ = extract_chips(image, [face], rec)
    return rec.embed(chips)[0]


def cmd_verify(args: argparse.Namespace) -> int:
    """Are the largest faces of two photos the same person?"""
    if (args.image_a is None) != (args.image_b is None):
        raise JaxprivError("verify takes two photos (or none, for the bundled samples)")
    if args.image_a is None:
        args.image_a, args.image_b = SAMPLES / "obama.jpg", SAMPLES / "obama2.jpg"
        print(f"bundled samples: {args.image_a.name} vs {args.image_b.name}", file=sys.stderr)
    rec = _recognizer(args)
    a, b = (_face_embedding(Path(p), rec, args.detector) for p in (args.image_a, args.image_b))
    distance = float(rec.distance(a, b))
    same = distance < rec.threshold
    if args.json:
        print(json.dumps({"distance": round(distance, 6), "same_person": same,
                          "threshold": rec.threshold, "recognizer": rec.name}))
    else:
        verdict = "same person" if same else "different people"
        print(f"distance {distance:.4f} ({rec.name}, threshold {rec.threshold:.4g}): {verdict}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    """One embedding per photo (its largest face) into a .npy; rows follow the input order."""
    from tqdm import tqdm

    from jaxpriv.io import check_writable, iter_images, write_bytes_atomic, write_text_atomic

    out = Path(args.out)
    if out.suffix != ".npy":
        raise JaxprivError(f"{out}: --out must end in .npy")
    names = out.with_suffix(".txt")
    paths = iter_images(args.images)
    for target in (out, names):  # fail fast, before any embedding
        check_writable(target, overwrite=args.overwrite, inputs=paths)
    if not paths:
        raise JaxprivError("no images found in the given paths")
    rec = _recognizer(args)
    rows, failed = [], 0
    for path in tqdm(paths, desc="embed", unit="img", disable=len(paths) < 4):
        try:
            rows.append(_face_embedding(path, rec, args.detector))
        except JaxprivError as e:
            failed += 1
            print(f"skipped: {e}", file=sys.stderr)
            rows.append(None)
    dim = next((len(r) for r in rows if r is not None), 0)
    table = np.full((len(rows), dim), np.nan, np.float32)
    for i, r in enumerate(rows):
        if r is not None:
            table[i] = r
    buf = io.BytesIO()
    np.save(buf, table)
    write_bytes_atomic(out, buf.getvalue(), overwrite=args.overwrite, inputs=paths)
    write_text_atomic(names, "".join(f"{p}\n" for p in paths), overwrite=args.overwrite,
                      inputs=paths)
    print(f"{len(paths) - failed} embeddings ({dim}-d) -> {out}; row order in {names}"
          + (f"; {failed} photos without a usable face (rows are NaN)" if failed else ""))
    return 1 if failed else 0


def cmd_protect(args: argparse.Namespace) -> int:
    """Protect every face in the given photos/folders into OUTDIR."""
    from jaxpriv.methods import MethodRun, get_method, given_options
    from jaxpriv.protect import protect_files

    spec = get_method(args.method)
    given = given_options(args, spec)
    _check_report(args)
    protect = spec.make(**given)
    extras = protect.extra_suffixes if isinstance(protect, MethodRun) else ()
    if isinstance(protect, MethodRun) and protect.reversible:
        _refuse_for_reversible(args, spec.name)
    inputs, video_options = _video_inputs(args)
    summary = protect_files(inputs, args.out, protect, spec.name, seed=args.seed,
                            overwrite=args.overwrite, ext=args.format,
                            video_options=video_options, plates=_plate_source(args),
                            detector=args.detector, check=_identity_checkers(args))
    for f in summary.files:
        if f.status == "failed":
            print(f"failed: {f.reason}", file=sys.stderr)
        elif f.status == "no_face":
            print(f"no face: {shown(f.input)} (written unchanged to {shown(f.output)})",
                  file=sys.stderr)
        if f.video:
            _print_video(shown(f.input), f.video)
    _write_report(args, summary)
    beside = "".join(f"; beside each output: <output>{s}" for s in extras)
    print(f"{summary.line()}{beside} -> {args.out}")
    return summary.exit_code


def _input_files(args: argparse.Namespace) -> list[Path]:
    from jaxpriv.io import is_stream, iter_media

    return iter_media([a for a in args.inputs if not is_stream(a)])


def _identity_checkers(args: argparse.Namespace) -> list:
    """``--check-identity NAMES``: the recognizers that report, per photo, how many faces still
    match the original (report only: the outputs do not depend on it)."""
    from jaxpriv.eval.transfer import load_recognizers

    if args.check_identity is None:
        return []
    if not args.check_identity.strip(", "):
        raise JaxprivError("--check-identity needs at least one recognizer name")
    return load_recognizers(args.check_identity)


def _check_report(args: argparse.Namespace) -> None:
    """``--json``: refuse an input or (without --overwrite) an existing file before any work."""
    from jaxpriv.io import check_writable

    if args.json:
        check_writable(args.json, overwrite=args.overwrite, inputs=_input_files(args))


def _write_report(args: argparse.Namespace, summary) -> None:  # noqa: ANN001
    """Write the ``--json`` summary like every other output (never an input, atomic)."""
    from jaxpriv.io import write_text_atomic

    if args.json:
        write_text_atomic(args.json, json.dumps(summary.as_dict(), indent=2) + "\n",
                          overwrite=args.overwrite, inputs=_input_files(args))


# ---- licence plates (jaxpriv.deid.plates) ----


def _plate_args(pr: argparse.ArgumentParser) -> None:
    g = pr.add_argument_group("licence plates (paper 001: DP synthetic plates)")
    g.add_argument("--plates", default=None, metavar="ccpd-names|FILE.json",
                   help="also replace licence plates, annotated by CCPD file names or a JSON "
                        'list of {"image", "corners" (TL,TR,BR,BL), "text"}')
    g.add_argument("--plate-epsilon", type=float, default=None,
                   help="Laplace ε per plate character code (Δf = 1); default 1")


def _plate_source(args: argparse.Namespace):  # noqa: ANN202
    if args.plates is None:
        if args.plate_epsilon is not None:
            raise JaxprivError("--plate-epsilon needs --plates")
        return None
    from jaxpriv.deid.plates import plate_source

    eps = 1.0 if args.plate_epsilon is None else args.plate_epsilon
    if not (math.isfinite(eps) and eps > 0):
        raise JaxprivError(f"--plate-epsilon must be > 0, got {eps}")
    return plate_source(args.plates, epsilon=eps)


# ---- videos and live streams (jaxpriv.video) ----


VIDEO_FLAGS = ("camera", "start", "end", "detect_every", "detect_scale", "max_gap", "codec", "crf")


def _video_args(pr: argparse.ArgumentParser) -> None:
    g = pr.add_argument_group("videos and live streams (.mp4 .mov .mkv .avi .webm .m4v, URLs)")
    g.add_argument("--camera", type=int, default=None, metavar="INDEX",
                   help="record live camera INDEX (headless) to OUTDIR/cameraINDEX.mp4; "
                        "Ctrl-C or --end stops")
    g.add_argument("--start", type=float, default=None, help="seconds: skip the video before")
    g.add_argument("--end", type=float, default=None,
                   help="seconds: stop the video here (live: after this long)")
    g.add_argument("--detect-every", type=int, default=None, metavar="N",
                   help="detect faces on every N-th frame, track in between (default 1)")
    g.add_argument("--detect-scale", type=float, default=None, metavar="S",
                   help="detect on frames resized by S (default: short side down to 360 px)")
    g.add_argument("--max-gap", type=int, default=None, metavar="FRAMES",
                   help="keep protecting a face the detector misses for this long (default 5)")
    g.add_argument("--codec", default=None, help="video encoder (default libx264)")
    g.add_argument("--crf", type=int, default=None,
                   help="H.264 quality 0..51, lower is better (default 18)")


def _video_inputs(args: argparse.Namespace) -> tuple[list[str], object]:
    from jaxpriv.io import camera_source
    from jaxpriv.video import VideoOptions

    if args.camera is not None and args.camera < 0:
        raise JaxprivError(f"--camera must be >= 0, got {args.camera}")
    inputs = list(args.inputs) + ([camera_source(args.camera)] if args.camera is not None else [])
    if not inputs:
        raise JaxprivError("give photos, videos, folders, a stream URL or --camera INDEX")
    given = {name: getattr(args, name) for name in VIDEO_FLAGS if name != "camera"}
    return inputs, VideoOptions(**{k: v for k, v in given.items() if v is not None},
                                detector=args.detector, progress=sys.stderr.isatty())


def _refuse_for_reversible(args: argparse.Namespace, method: str) -> None:
    """A reversible method (``mask``) writes PNG photos keyed by a password: refuse what it would
    silently ignore or break (``protect_files`` refuses --seed, --plates and --format again)."""
    for name in ("seed", "plates", "plate_epsilon", *VIDEO_FLAGS):
        if getattr(args, name) is not None:
            flag = "--" + name.replace("_", "-")
            raise JaxprivError(f"{flag} does not apply to --method {method}")


def _print_video(name: str, v: dict) -> None:
    print(f"{name}: {v['frames']} frames ({v['width']}x{v['height']}, {v['fps']:.3g} fps, "
          f"audio: {v['audio']}), {v['tracks']} face tracks, {v['bridged']} faces bridged, "
          f"{v['frames'] / max(v['seconds'], 1e-9):.1f} frames/s"
          + (" (stopped by Ctrl-C)" if v["interrupted"] else ""), file=sys.stderr)


# --- passwords of the reversible mask template (paper 004; protect goes through protect_files,
# --- restore through jaxpriv/masktpl/xor.py).


class _RefusePassword(argparse.Action):
    """``--password``: refused without echoing its value. A password on the command line is
    visible to other users (ps) and kept in shell history; without this option argparse would
    also take ``--password X`` as an abbreviation of ``--password-file`` and print X back in a
    "password file not found" error."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        parser.error("--password is not accepted (a password on the command line is visible to "
                     "other users and kept in shell history): use --password-file FILE or the "
                     "prompt")


def _refuse_password_arg(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--password", nargs="?", action=_RefusePassword, help=argparse.SUPPRESS)


def cmd_restore(args: argparse.Namespace) -> int:
    """``restore``: protected PNG + key file + password → the original pixels in OUT/<stem>.png.
    Any mismatch (password, key, edited image) is an error and nothing is written."""
    from jaxpriv.masktpl.keys import read_password
    from jaxpriv.masktpl.xor import restore_file

    if args.key is not None and len(args.inputs) != 1:
        raise JaxprivError("--key applies to a single protected image")
    password = read_password(args.password_file)
    for path in map(Path, args.inputs):
        out = restore_file(path, Path(args.out) / f"{path.stem}.png", password, args.key,
                           overwrite=args.overwrite)
        print(f"restored {path} -> {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``jaxpriv``."""
    p = argparse.ArgumentParser(prog="jaxpriv", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def recognizer_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--recognizer", default="dlib_resnet",
                        help="face recognizer (dlib_resnet, sface, facenet); default dlib_resnet")
        sp.add_argument("--weights", default=None,
                        help="weights file for recognizers that ship none (facenet: a .pt)")
        detector_arg(sp)

    v = sub.add_parser("verify", help="are two photos the same person?")
    v.add_argument("image_a", nargs="?", help="default: the bundled samples/obama.jpg")
    v.add_argument("image_b", nargs="?", help="default: the bundled samples/obama2.jpg")
    v.add_argument("--json", action="store_true", help="print a JSON object")
    recognizer_args(v)
    v.set_defaults(func=cmd_verify)

    e = sub.add_parser("embed", help="face embeddings of photos into a .npy")
    e.add_argument("images", nargs="+", help="photos or folders (recursive)")
    e.add_argument("--out", required=True, help="output .npy (rows in input order)")
    e.add_argument("--overwrite", action="store_true")
    recognizer_args(e)
    e.set_defaults(func=cmd_embed)

    from jaxpriv.methods import add_option_flags, method_names

    pr = sub.add_parser("protect", help="protect the faces in photos and videos")
    pr.add_argument("inputs", nargs="*", help="photos, videos, folders (recursive), stream URLs")
    pr.add_argument("-o", "--out", required=True, help="output folder (OUTDIR/<stem>.<ext>)")
    pr.add_argument("--method", required=True, choices=method_names())
    pr.add_argument("--seed", type=seed_arg, default=None, metavar="N",
                    help="0 … 2**64−1: same seed, same output. Default: fresh OS randomness, not "
                         "recorded (anyone who knows the seed can regenerate the noise)")
    pr.add_argument("--format", default=None, help="output extension (default: the input's)")
    pr.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    pr.add_argument("--json", default=None, help="write the run summary as JSON")
    pr.add_argument("--check-identity", default=None, metavar="NAMES",
                    help="report, per photo, how many faces these recognizers (e.g. "
                         "dlib_resnet,sface) still match to the original; changes no output")
    detector_arg(pr)
    _video_args(pr)
    _plate_args(pr)
    add_option_flags(pr)
    _refuse_password_arg(pr)
    pr.set_defaults(func=cmd_protect)

    rs = sub.add_parser("restore", help="restore photos protected with --method mask")
    rs.add_argument("inputs", nargs="+", help="protected PNG(s)")
    rs.add_argument("-o", "--out", required=True, help="output folder (OUTDIR/<stem>.png)")
    rs.add_argument("--key", default=None, help="key file (default: <protected>.jpkey)")
    rs.add_argument("--password-file", default=None, help="file whose first line is the password "
                    "(default: prompt, if stdin is a terminal)")
    rs.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    _refuse_password_arg(rs)
    rs.set_defaults(func=cmd_restore)
    add_eval_parser(sub)
    add_demo_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jaxpriv`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except JaxprivError as e:
        print(f"jaxpriv: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("jaxpriv: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: still one line unless debugging
        if os.environ.get("JAXPRIV_DEBUG"):
            raise
        print(f"jaxpriv: internal error: {type(e).__name__}: {e} "
              "(set JAXPRIV_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

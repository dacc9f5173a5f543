"""Every option out of range or not applicable is a one-line error (exit 2) before anything is
built or written: method options (CLI, eval sweeps, Python), plate and video flags, and the flags
``--method mask`` would ignore."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaxpriv.cli import main
from jaxpriv.errors import JaxprivError
from jaxpriv.methods import get_method

from .conftest import SAMPLES

OUT_OF_RANGE = [
    # deid: paper mode with Δf 0 released the latent without noise ("nominal ε = 3")
    (["--method", "deid", "--mode", "paper", "--sensitivity", "0"], "--sensitivity must be > 0"),
    (["--method", "deid", "--clip", "-1"], "--clip must be > 0"),  # printed a negative Δf
    (["--method", "deid", "--epsilon", "inf"], "--epsilon must be > 0"),
    (["--method", "deid", "--steps", "0"], "--steps must be >= 1"),
    (["--method", "deid", "--epsilon", "0"], "--epsilon must be > 0"),
    (["--method", "deid", "--epsilon", "-3"], "--epsilon must be > 0"),
    (["--method", "deid", "--generator", "mobilestylegan", "--clip", "-1"], "--clip must be > 0"),
    (["--method", "deid", "--generator", "mobilestylegan", "--epsilon", "0"],
     "--epsilon must be > 0"),
    (["--method", "deid", "--generator", "mobilestylegan", "--mode", "paper", "--sensitivity",
      "-1"], "--sensitivity must be > 0"),
    (["--method", "deid", "--generator", "mobilestylegan", "--checkpoint", "ckpt/face_gan_64"],
     "--checkpoint applies to --generator face_gan_64 only"),
    (["--method", "deid", "--mode", "paper", "--clip", "2"],
     "--clip applies to --mode bounded only"),
    (["--method", "deid", "--sensitivity", "2"], "--sensitivity applies to --mode paper only"),
    (["--method", "dppix", "--epsilon", "0"], "--epsilon must be > 0"),
    (["--method", "dppix", "--epsilon", "nan"], "--epsilon must be > 0"),
    (["--method", "dppix", "--cell", "0"], "--cell must be >= 1"),
    (["--method", "dppix", "--m", "0"], "--m must be >= 1"),
    (["--method", "dppix", "--margin", "-0.3"], "--margin must be >= 0"),
    (["--method", "blur", "--strength", "0"], "--strength must be > 0"),
    (["--method", "mosaic", "--blocks", "0"], "--blocks must be >= 1"),
    (["--method", "solid", "--color", "300"], "--color must be in [0, 255]"),
    (["--method", "cloak", "--steps", "0"], "--steps must be >= 1"),
    (["--method", "cloak", "--recognizer", "dlib_resnet,arcface"],
     "--recognizer names unknown recognizer 'arcface' (available: "),
    (["--method", "cloak", "--recognizer", "sface:-1"],
     "--recognizer recognizer weight in 'sface:-1' must be a positive number"),
    (["--method", "smna", "--noise-level", "inf"], "--noise-level must be >= 0"),
    (["--method", "blur", "--plates", "ccpd-names", "--plate-epsilon", "0"],
     "--plate-epsilon must be > 0"),
    (["--method", "blur", "--plates", "ccpd-names", "--plate-epsilon", "inf"],
     "--plate-epsilon must be > 0"),
    (["--method", "blur", "--crf", "52"], "--crf must be in [0, 51]"),
    (["--method", "blur", "--crf", "-1"], "--crf must be in [0, 51]"),
    (["--method", "blur", "--detect-every", "0"], "--detect-every must be >= 1"),
    (["--method", "blur", "--max-gap", "-1"], "--max-gap must be >= 0"),
    (["--method", "blur", "--start", "nan"], "--start must be a finite number >= 0"),
    (["--method", "blur", "--end", "nan"], "--end must be a finite number > 0"),
    (["--method", "blur", "--camera", "-1"], "--camera must be >= 0"),
]


def one_line_error(capsys: pytest.CaptureFixture, rc: int, message: str, out: Path) -> None:
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("jaxpriv: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), OUT_OF_RANGE)
def test_out_of_range_option_is_a_one_line_error(tmp_path: Path, capsys, args: list[str],
                                                 message: str) -> None:
    out = tmp_path / "out"
    rc = main(["protect", str(SAMPLES / "obama.jpg"), "-o", str(out), *args])
    one_line_error(capsys, rc, message, out)


MASK_IGNORED = [["--seed", "1"], ["--plates", "ccpd-names"], ["--plate-epsilon", "1"],
                ["--detect-every", "2"], ["--max-gap", "3"], ["--crf", "18"], ["--start", "1"],
                ["--end", "2"], ["--detect-scale", "0.5"], ["--codec", "mpeg4"], ["--camera", "0"]]


@pytest.mark.parametrize("args", MASK_IGNORED, ids=lambda a: a[0])
def test_mask_refuses_what_it_would_ignore(tmp_path: Path, capsys, args: list[str]) -> None:
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery staple\n")
    out = tmp_path / "out"
    rc = main(["protect", "--method", "mask", "--password-file", str(pw),
               str(SAMPLES / "obama.jpg"), "-o", str(out), *args])
    one_line_error(capsys, rc, f"{args[0]} does not apply to --method mask", out)


def test_eval_sweep_values_are_checked(tmp_path: Path, capsys) -> None:
    rc = main(["eval", "--method", "dppix", "--data", str(tmp_path), "--sweep",
               "epsilon=0.5,-1"])
    one_line_error(capsys, rc, "--epsilon must be > 0", tmp_path / "none")


def test_python_calls_are_checked_too() -> None:
    with pytest.raises(JaxprivError, match="--sensitivity must be > 0"):
        get_method("deid").in_effect(mode="paper", sensitivity=0.0)
    with pytest.raises(JaxprivError, match="--noise must be one of"):
        get_method("smna").make(noise="grey")
    spec = get_method("deid")
    assert spec.in_effect(mode="paper")["sensitivity"] == 1.0 and "clip" not in spec.in_effect(
        mode="paper")
    assert spec.defaults()["clip"] == 2.0 and "sensitivity" not in spec.defaults()


def test_dead_options_are_gone(tmp_path: Path) -> None:
    """``--frame-batch`` fed a batch hook no method had; ``chips_to_input`` was called by
    nothing."""
    from jaxpriv.smna import noise

    with pytest.raises(SystemExit) as info:
        main(["protect", "--method", "blur", "--frame-batch", "4", str(SAMPLES / "obama.jpg"),
              "-o", str(tmp_path / "out")])
    assert info.value.code == 2
    assert not hasattr(noise, "chips_to_input")


def test_cloak_and_mask_share_one_recognizer_option() -> None:
    """One meaning (help, check) of ``--recognizer`` for both methods, each its own default."""
    opts = {m: next(o for o in get_method(m).options if o.name == "recognizer")
            for m in ("cloak", "mask")}
    assert opts["cloak"].default == "dlib_resnet"
    assert opts["mask"].default == "dlib_resnet,sface:3"  # SFace weighted 3 (issue 20)
    assert {(o.help, o.check.__code__, o.type, o.choices) for o in opts.values()} == {
        (opts["cloak"].help, opts["cloak"].check.__code__, str, None)}
    for o in opts.values():
        with pytest.raises(JaxprivError, match="--recognizer names unknown recognizer 'arcface'"):
            o.validate("dlib_resnet,arcface")

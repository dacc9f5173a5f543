"""`jaxpriv protect --method mask` and `jaxpriv restore`: files, exit codes, one-line errors,
nothing written on failure, passwords never shown. Uses a random-init model via
``JAXPRIV_MASK_MODEL`` (restoring exactly does not depend on training)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxpriv.cli import main
from jaxpriv.errors import JaxprivError
from jaxpriv.io import load_image, save_image
from jaxpriv.masktpl.model import MODEL_ENV, save_model

from .conftest import ROOT, SAMPLES
from .test_masktpl_xor import tiny_model

PASSWORD = "tr0ub4dor&3 correct"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:  # noqa: ANN001
    return save_model(tmp_path_factory.mktemp("model"), tiny_model())


@pytest.fixture
def env(model_dir: Path, tmp_path: Path, monkeypatch) -> Path:  # noqa: ANN001
    monkeypatch.setenv(MODEL_ENV, str(model_dir))
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    return tmp_path


def cli(capsys, *args: str) -> tuple[int, str, str]:  # noqa: ANN001
    rc = main(list(args))
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    return rc, out, err


@pytest.fixture
def protected(env: Path, capsys) -> Path:  # noqa: ANN001
    rc, out, err = cli(capsys, "protect", "--method", "mask", "--bits", "2", "--steps", "1",
                       "--password-file", str(env / "pw"), str(SAMPLES / "two_people.jpg"), "-o",
                       str(env / "out"))
    assert rc == 0, err
    return env / "out" / "two_people.png"


def test_protect_then_restore(protected: Path, env: Path, capsys) -> None:  # noqa: ANN001
    key = protected.with_name("two_people.png.jpkey")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert sorted(p.name for p in protected.parent.iterdir()) == sorted([key.name, protected.name])
    rc, out, err = cli(capsys, "restore", "--password-file", str(env / "pw"), str(protected),
                       "-o", str(env / "back"))
    assert rc == 0, err
    restored = load_image(env / "back" / "two_people.png")
    original = load_image(SAMPLES / "two_people.jpg")
    np.testing.assert_array_equal(restored, original)
    assert not np.array_equal(load_image(protected), original)


def test_restore_with_other_model_weights(protected: Path, env: Path, capsys,  # noqa: ANN001
                                          monkeypatch, tmp_path_factory) -> None:  # noqa: ANN001
    """Issue 20.2: restore never runs the networks, so weights that differ (here: noise added to
    every parameter, as another machine's float arithmetic could) still restore bit for bit. The
    old restore regenerated the pad and refused ("restore with the same model")."""
    import jax

    from jaxpriv.masktpl.model import MaskModel

    m = tiny_model()
    noise = jax.random.key(3)

    def jitter(x):  # noqa: ANN001, ANN202
        return x + 1e-3 * jax.random.normal(noise, x.shape, x.dtype)

    other = MaskModel(jax.tree_util.tree_map(jitter, m.template_params),
                      jax.tree_util.tree_map(jitter, m.generator_params), m.settings)
    monkeypatch.setenv(MODEL_ENV, str(save_model(tmp_path_factory.mktemp("other"), other)))
    rc, _, err = cli(capsys, "restore", "--password-file", str(env / "pw"), str(protected),
                     "-o", str(env / "back"))
    assert rc == 0, err
    np.testing.assert_array_equal(load_image(env / "back" / "two_people.png"),
                                  load_image(SAMPLES / "two_people.jpg"))


def one_line_error(rc: int, err: str, env: Path) -> None:
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("jaxpriv: error: ")
    assert not (env / "back").exists()


def test_wrong_password(protected: Path, env: Path, capsys) -> None:  # noqa: ANN001
    (env / "bad").write_text("not it\n")
    rc, _, err = cli(capsys, "restore", "--password-file", str(env / "bad"), str(protected),
                     "-o", str(env / "back"))
    one_line_error(rc, err, env)
    assert "wrong password" in err


def test_tampered_and_wrong_key(protected: Path, env: Path, capsys) -> None:  # noqa: ANN001
    key = protected.with_name(protected.name + ".jpkey")
    data = bytearray(key.read_bytes())
    data[len(data) // 2] ^= 0x04
    (env / "t.jpkey").write_bytes(bytes(data))
    rc, _, err = cli(capsys, "restore", "--password-file", str(env / "pw"), str(protected),
                     "--key", str(env / "t.jpkey"), "-o", str(env / "back"))
    one_line_error(rc, err, env)
    (env / "garbage.jpkey").write_bytes(b"hello")
    rc, _, err = cli(capsys, "restore", "--password-file", str(env / "pw"), str(protected),
                     "--key", str(env / "garbage.jpkey"), "-o", str(env / "back"))
    one_line_error(rc, err, env)
    rc, _, err = cli(capsys, "restore", "--password-file", str(env / "pw"), str(protected),
                     "--key", str(env / "missing.jpkey"), "-o", str(env / "back"))
    one_line_error(rc, err, env)


def test_edited_protected_image(protected: Path, env: Path, capsys) -> None:  # noqa: ANN001
    pixels = load_image(protected)
    pixels[200, 300] ^= 1
    edited = save_image(env / "edited.png", pixels)
    rc, _, err = cli(capsys, "restore", "--password-file", str(env / "pw"), str(edited),
                     "--key", str(protected) + ".jpkey", "-o", str(env / "back"))
    one_line_error(rc, err, env)
    assert "does not match its key file" in err


def test_jpeg_and_foreign_options_refused(env: Path, capsys) -> None:  # noqa: ANN001
    rc, _, err = cli(capsys, "protect", "--method", "mask", "--password-file", str(env / "pw"),
                     "--format", "jpg", str(SAMPLES / "obama.jpg"), "-o", str(env / "o"))
    assert rc == 2 and "PNG only" in err and not (env / "o").exists()
    rc, _, err = cli(capsys, "protect", "--method", "blur", "--bits", "2",
                     str(SAMPLES / "obama.jpg"), "-o", str(env / "o"))
    assert rc == 2 and "--bits" in err and not (env / "o").exists()


def test_no_password_file_and_no_terminal(model_dir: Path, tmp_path: Path) -> None:
    """A real process with stdin not a TTY: clear error, exit 2, nothing written."""
    env = {**os.environ, MODEL_ENV: str(model_dir), "JAX_PLATFORMS": "cpu"}
    for args in (["protect", "--method", "mask", str(SAMPLES / "obama.jpg"), "-o",
                  str(tmp_path / "o")],
                 ["restore", str(SAMPLES / "obama.jpg"), "-o", str(tmp_path / "o")]):
        res = subprocess.run([sys.executable, "-m", "jaxpriv.cli", *args], capture_output=True,
                             text=True, stdin=subprocess.DEVNULL, env=env, cwd=ROOT, timeout=600)
        assert res.returncode == 2, res.stderr
        assert "not a terminal" in res.stderr and res.stderr.count("\n") == 1
        assert not (tmp_path / "o").exists()


def test_mask_through_protect_files(env: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Issue 16.1: the mask goes through the one ``protect_files`` loop. Built from the registry
    with its ``password_file`` it writes each PNG with its sealed key file (the password used to
    be dropped there: no key file, nothing restorable); videos and streams fail with a "lossy"
    reason while the run goes on; an existing key file is refused and leaves no output."""
    import shutil

    from jaxpriv.masktpl.xor import restore_file
    from jaxpriv.methods import get_method
    from jaxpriv.protect import protect_files

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(SAMPLES / "obama.jpg", src / "obama.jpg")
    (src / "clip.mp4").write_bytes(b"not read: refused by its name")
    run = get_method("mask").make(bits=2, steps=1, password_file=str(env / "pw"))
    out = tmp_path / "out"
    summary = protect_files([str(src), "rtsp://example.invalid/live"], out, run, "mask")
    status = {Path(f.input).name: (f.status, f.reason or "") for f in summary.files}
    assert status["obama.jpg"] == ("protected", "")
    for name in ("clip.mp4", "live"):
        assert status[name][0] == "failed" and "lossy" in status[name][1], status
    assert summary.seed is None
    assert sorted(p.name for p in out.iterdir()) == ["obama.png", "obama.png.jpkey"]
    restored = restore_file(out / "obama.png", tmp_path / "back" / "obama.png",
                            PASSWORD.encode())
    np.testing.assert_array_equal(load_image(restored), load_image(SAMPLES / "obama.jpg"))

    (out / "obama.png").unlink()  # the key file alone is left: it is never replaced
    again = protect_files([str(src / "obama.jpg")], out, run, "mask")
    assert again.files[0].status == "failed" and "exists" in again.files[0].reason
    assert not (out / "obama.png").exists()
    for kwargs in ({"seed": 1}, {"ext": "jpg"}):
        with pytest.raises(JaxprivError, match="does not apply|PNG only"):
            protect_files([str(src / "obama.jpg")], tmp_path / "o2", run, "mask", **kwargs)
    assert not (tmp_path / "o2").exists()


def test_mask_in_memory_needs_no_password(env: Path) -> None:
    """Evaluation sweeps call the registry's mask in memory: keyed by the pipeline's key, no
    password read (stdin is not a terminal under pytest), nothing written."""
    import jax

    from jaxpriv.faces import detect_faces
    from jaxpriv.masktpl.steer import Steering
    from jaxpriv.masktpl.xor import protect_image
    from jaxpriv.methods import get_method

    image = load_image(SAMPLES / "obama.jpg")
    faces = detect_faces(image)
    key = jax.random.key(7)
    got = get_method("mask").make(bits=2, steps=1)(image, faces, key)
    np.testing.assert_array_equal(got, protect_image(image, faces, key, 2,
                                                     steering=Steering(steps=1))[0])
    assert not np.array_equal(got, image)

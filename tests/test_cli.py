"""The jaxpriv command line: verify, embed, and one-line errors with exit code 2."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import SAMPLES
from .test_io import _bomb_png


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jaxpriv.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_verify_same_and_different() -> None:
    same = run("verify", str(SAMPLES / "obama.jpg"), str(SAMPLES / "obama2.jpg"), "--json")
    assert same.returncode == 0, same.stderr
    res = json.loads(same.stdout)
    assert res["same_person"] is True and res["distance"] < 0.6 and res["threshold"] == 0.6
    diff = run("verify", str(SAMPLES / "obama.jpg"), str(SAMPLES / "biden.jpg"))
    assert diff.returncode == 0, diff.stderr
    assert "different people" in diff.stdout


def test_verify_defaults_to_bundled_samples() -> None:
    res = run("verify")
    assert res.returncode == 0 and "same person" in res.stdout
    assert "bundled samples" in res.stderr


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d.joinpath("empty.jpg").write_bytes(b""), "empty.jpg: empty file"),
        (lambda d: d.joinpath("text.jpg").write_text("not a photo"), "text.jpg: not an image"),
        (lambda d: d.joinpath("trunc.jpg").write_bytes((SAMPLES / "obama.jpg").read_bytes()[:5000]),
         "trunc.jpg: truncated"),
        (lambda d: None, "missing.jpg: no such file"),
        (lambda d: d.joinpath("bomb.png").write_bytes(_bomb_png(20000, 20000)),
         "bomb.png: image too large"),
    ],
)
def test_bad_inputs_one_line_exit_2(tmp_path: Path, make, message: str) -> None:
    make(tmp_path)
    name = message.split(":")[0]
    before = {p: digest(p) for p in tmp_path.iterdir()}
    res = run("verify", str(tmp_path / name), str(SAMPLES / "obama.jpg"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in res.stderr
    assert {p: digest(p) for p in tmp_path.iterdir()} == before  # nothing touched


def test_no_face_is_one_line(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (120, 90), (40, 90, 200)).save(tmp_path / "sky.png")
    res = run("verify", str(tmp_path / "sky.png"), str(SAMPLES / "obama.jpg"))
    assert res.returncode == 2 and res.stderr.strip().endswith("sky.png: no face found")


def test_embed_writes_rows_in_order(tmp_path: Path) -> None:
    photos = [SAMPLES / "obama.jpg", SAMPLES / "biden.jpg", SAMPLES / "obama2.jpg"]
    before = [digest(p) for p in photos]
    out = tmp_path / "emb.npy"
    res = run("embed", *map(str, photos), "--out", str(out))
    assert res.returncode == 0, res.stderr
    emb = np.load(out)
    assert emb.shape == (3, 128) and emb.dtype == np.float32
    d = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    assert d[0, 2] < 0.6 < d[0, 1]
    assert [digest(p) for p in photos] == before
    again = run("embed", str(photos[0]), "--out", str(out))
    assert again.returncode == 2 and "exists (use --overwrite)" in again.stderr


def test_unknown_recognizer_and_facenet_without_weights() -> None:
    res = run("verify", "--recognizer", "vgg")
    assert res.returncode == 2 and "unknown recognizer 'vgg'" in res.stderr
    res = run("verify", "--recognizer", "facenet")
    assert res.returncode == 2 and "--weights" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 2  # the bundled-samples note + the error

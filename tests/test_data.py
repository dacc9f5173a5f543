"""Tests of the `identity_faces` TFDS builder (built into tmp dirs, read without TensorFlow)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxpriv.data import (
    build_identity_faces,
    list_identity_images,
    load_identity_faces,
)
from jaxpriv.errors import JaxprivError

from .conftest import GLINT

IDENTITIES = ["alice", "bob", "carol"]


def _expected_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture
def faces_dir(tmp_path: Path) -> Path:
    """3 identities x 3 lossless images of varied sizes and modes, plus junk files."""
    rng = np.random.default_rng(0)
    root = tmp_path / "faces"
    for i, name in enumerate(IDENTITIES):
        folder = root / name
        folder.mkdir(parents=True)
        # Lexicographic order: img10 < img2 < img9, so img10 is the reference.
        for j, stem in enumerate(["img2", "img10", "img9"]):
            shape = (20 + 7 * i, 30 + 5 * j)
            if name == "carol" and stem == "img9":
                gray = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(gray, mode="L").save(folder / f"{stem}.pgm")  # ORL-like
            elif name == "bob" and stem == "img2":
                gray = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(gray, mode="L").save(folder / f"{stem}.png")
            else:
                rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
                Image.fromarray(rgb).save(folder / f"{stem}.png")
    (root / "bob" / "0_broken.jpg").write_text("not an image")  # sorts first in bob
    (root / "alice" / "notes.txt").write_text("ignored")
    (root / "alice" / ".hidden.png").write_text("ignored")
    (root / "README").write_text("ignored: not a folder")
    (root / "empty").mkdir()
    return root


def _build(faces_dir: Path, data_dir: Path, image_size: int | None = None):
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable file.*bob/0_broken\.jpg"):
        return build_identity_faces(faces_dir, data_dir, image_size)


def test_list_identity_images(faces_dir: Path) -> None:
    images = list_identity_images(faces_dir)
    assert list(images) == IDENTITIES
    assert images["alice"] == ["img10.png", "img2.png", "img9.png"]
    assert images["bob"] == ["0_broken.jpg", "img10.png", "img2.png", "img9.png"]
    assert images["carol"] == ["img10.png", "img2.png", "img9.pgm"]


def test_build_and_read_back(faces_dir: Path, tmp_path: Path) -> None:
    builder = _build(faces_dir, tmp_path / "tfds")
    assert builder.info.features["identity"].names == IDENTITIES
    assert list(builder.info.metadata["skipped_files"]) == ["bob/0_broken.jpg"]
    source = builder.as_data_source("train")
    assert len(source) == 9

    examples = [source[i] for i in range(len(source))]
    files = list_identity_images(faces_dir)
    expected_order = [
        f"{name}/{file}" for name in IDENTITIES for file in files[name] if file != "0_broken.jpg"
    ]
    assert [ex["filename"].decode() for ex in examples] == expected_order
    for ex in examples:
        name, file = ex["filename"].decode().split("/")
        readable = [f for f in files[name] if f != "0_broken.jpg"]
        assert ex["identity_name"].decode() == name
        assert int(ex["identity"]) == IDENTITIES.index(name)
        assert int(ex["index_in_identity"]) == readable.index(file)
        assert bool(ex["is_reference"]) == (file == readable[0])
        assert ex["image"].dtype == np.uint8
        np.testing.assert_array_equal(ex["image"], _expected_rgb(faces_dir / name / file))
    references = [ex["filename"].decode() for ex in examples if ex["is_reference"]]
    assert references == ["alice/img10.png", "bob/img10.png", "carol/img10.png"]


def test_second_build_reuses_prepared_data(faces_dir: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "tfds"
    builder = _build(faces_dir, data_dir)
    records = sorted(Path(builder.data_dir).glob("*.array_record*"))
    assert records
    stamps = [p.stat().st_mtime_ns for p in records]
    Image.new("RGB", (8, 8)).save(faces_dir / "alice" / "img0.png")  # would change a rebuild

    again = build_identity_faces(faces_dir, data_dir)
    assert [p.stat().st_mtime_ns for p in records] == stamps
    assert len(again.as_data_source("train")) == 9
    assert len(load_identity_faces(None, data_dir)) == 9
    with pytest.warns(UserWarning, match="reusing it"):
        build_identity_faces(tmp_path, data_dir)


def test_a_build_waits_while_another_process_builds(faces_dir: Path, tmp_path: Path) -> None:
    """Workers started together (one per core) used to race on tfds's ``incomplete.*`` rename
    and die: while the build lock of the directory is held elsewhere, a build waits and writes
    nothing; once it is released the build completes and reads back."""
    import threading
    import time
    import warnings

    from jaxpriv.data.build_lock import exclusive_build

    data_dir = tmp_path / "tfds"
    built: list = []

    def build() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            built.append(build_identity_faces(faces_dir, data_dir))

    with exclusive_build(data_dir):
        worker = threading.Thread(target=build)
        worker.start()
        time.sleep(1.0)
        assert worker.is_alive() and not built
        assert not (data_dir / "identity_faces").exists()
    worker.join(timeout=120)
    assert not worker.is_alive() and len(built[0].as_data_source("train")) == 9


def test_fixed_image_size(faces_dir: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "tfds"
    builder = _build(faces_dir, data_dir, image_size=16)
    assert builder.builder_config.name == "size16"
    source = load_identity_faces(faces_dir, data_dir, image_size=16)
    assert len(source) == 9
    assert all(source[i]["image"].shape == (16, 16, 3) for i in range(len(source)))
    with pytest.raises(JaxprivError, match="not prepared"):
        load_identity_faces(None, data_dir)  # native config was never built there


def test_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(JaxprivError, match="not found"):
        build_identity_faces(tmp_path / "nope", tmp_path / "tfds")
    (tmp_path / "empty" / "someone").mkdir(parents=True)
    with pytest.raises(JaxprivError, match="no identity folder"):
        build_identity_faces(tmp_path / "empty", tmp_path / "tfds")
    (tmp_path / "empty" / "someone" / "0.png").write_text("not an image")
    with pytest.raises(JaxprivError, match="no readable image"):
        build_identity_faces(tmp_path / "empty", tmp_path / "tfds")
    with pytest.raises(ValueError, match="image_size"):
        build_identity_faces(tmp_path, tmp_path / "tfds", image_size=0)


@pytest.mark.skipif(not GLINT.is_dir(), reason="shared glint crops not available")
def test_real_glint_crops(tmp_path: Path) -> None:
    root = tmp_path / "glint"
    chosen = sorted(p.name for p in GLINT.iterdir() if p.is_dir())[:2]
    for name in chosen:
        (root / name).mkdir(parents=True)
        for file in sorted(p.name for p in (GLINT / name).iterdir())[:2]:
            shutil.copy(GLINT / name / file, root / name / file)
    source = load_identity_faces(root, tmp_path / "tfds")
    assert len(source) == 4
    for i in range(4):
        ex = source[i]
        name, file = ex["filename"].decode().split("/")
        assert name == chosen[int(ex["identity"])]
        assert ex["image"].shape == (112, 112, 3)
        np.testing.assert_array_equal(ex["image"], _expected_rgb(GLINT / name / file))

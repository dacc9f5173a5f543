"""SMNA map generation: plan order, shards, skip on rerun, byte-identical resume after a stop,
4 simulated devices = 1 device, TFDS dataset round trip, experiment entry point (tiny: 2 real
identities x 3 images, 8x8 maps)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from jaxpriv.data.map_shards import MAP_KEYS, shard_paths
from jaxpriv.errors import JaxprivError
from jaxpriv.smna.dataset import Example, generation_order, load_maps, round_robin

from .conftest import GLINT, ROOT

SETTINGS = dict(image_size=8, chunk=8, shard_size=2, progress=False)
IDENTITIES = ("Barack_Obama", "Hugh_Laurie")  # train and test (jaxpriv.data.splits)


def test_round_robin_plan_covers_identities_in_any_prefix() -> None:
    names = ["carol", "alice", "theta"]  # theta: a test identity (jaxpriv.data.splits)
    examples = [Example(10 * i + k, i, n, f"{n}/{k}.png", k)
                for i, n in enumerate(names) for k in range(1, 4 + i)]
    order = round_robin(examples)
    assert [e.identity_name for e in order[:3]] == ["alice", "carol", "theta"]
    assert [e.index_in_identity for e in order[:6]] == [1, 1, 1, 2, 2, 2]
    assert sorted(order, key=lambda e: e.index) == sorted(examples, key=lambda e: e.index)
    plan = generation_order(examples[::-1])
    assert set(plan) == {"train", "validation", "test"} and plan["validation"] == []
    assert {e.identity_name for e in plan["train"]} == {"alice", "carol"}
    assert {e.identity_name for e in plan["test"]} == {"theta"}
    assert [e.identity_name for e in plan["train"][:2]] == ["alice", "carol"]
    assert plan == generation_order(examples)  # order-free
    assert generation_order(examples, ["train"], max_images=2) == {"train": plan["train"][:2]}
    with pytest.raises(JaxprivError, match="unknown split"):
        generation_order(examples, ["heldout"])


@pytest.fixture(scope="module")
def faces_tfds(tmp_path_factory) -> Path:
    """identity_faces prepared from 2 real identities x 3 glint crops; returns its data dir."""
    if not GLINT.is_dir():
        pytest.skip(f"glint faces not found at {GLINT}")
    from jaxpriv.data import build_identity_faces

    root = tmp_path_factory.mktemp("smna_faces")
    manual = root / "faces"
    for name in IDENTITIES:
        (manual / name).mkdir(parents=True)
        for f in sorted((GLINT / name).iterdir())[:3]:
            shutil.copy(f, manual / name / f.name)
    build_identity_faces(manual, root / "tfds")
    return root / "tfds"


@pytest.fixture(scope="module")
def full_run(faces_tfds, tmp_path_factory) -> tuple[Path, dict]:
    """One uninterrupted 1-device generation (2 shards: train and test)."""
    from jaxpriv.data import load_identity_faces
    from jaxpriv.parallel import make_mesh
    from jaxpriv.smna.dataset import generate_maps

    out = tmp_path_factory.mktemp("maps_full")
    source = load_identity_faces(None, faces_tfds)
    summary = generate_maps(source, out, mesh=make_mesh(1), **SETTINGS)
    return out, summary


def _files(out: Path) -> dict[str, bytes]:
    return {f"{s}/{p.name}": p.read_bytes() for s in ("train", "test")
            for p in shard_paths(out / s)}


def test_generation_writes_shards_and_rerun_skips(full_run, faces_tfds) -> None:
    from jaxpriv.data import load_identity_faces
    from jaxpriv.smna.dataset import generate_maps

    out, summary = full_run
    assert summary["shards_written"] == 2 and summary["complete"]
    assert set(_files(out)) == {"train/shard-00000.npz", "test/shard-00000.npz"}
    data = load_maps(out)
    assert sorted(data) == sorted(MAP_KEYS)
    assert data["image"].shape == (2, 8, 8, 3) and data["image"].dtype == np.uint8
    assert data["map_black"].shape == (2, 8, 8) and data["map_black"].dtype == np.float32
    assert data["identity"].dtype == np.int32 and data["clean_distance"].shape == (2,)
    meta = load_maps(out, "test", with_metadata=True)
    train_names = set(load_maps(out, with_metadata=True)["identity_name"])
    assert not train_names & set(meta["identity_name"])  # identities split, not images
    names = [str(f).split("/")[1] for f in meta["filename"]]
    refs = {sorted((GLINT / n).iterdir())[0].name for n in IDENTITIES}
    assert not set(names) & refs  # reference portraits are not mapped
    assert (data["clean_distance"] > 0).all()
    assert (np.abs(data["map_white"]) > 0).any() and (np.abs(data["map_black"]) > 0).any()
    before = {p: p.stat().st_mtime_ns for s in ("train", "test") for p in shard_paths(out / s)}
    again = generate_maps(load_identity_faces(None, faces_tfds), out, **SETTINGS)
    assert again["shards_written"] == 0 and again["shards_skipped"] == 2
    assert {p: p.stat().st_mtime_ns for p in before} == before
    with pytest.raises(JaxprivError, match="other settings"):
        generate_maps(load_identity_faces(None, faces_tfds), out, **{**SETTINGS, "max_images": 1})


def test_stopped_run_resumes_to_identical_bytes(full_run, faces_tfds, tmp_path) -> None:
    from jaxpriv.data import load_identity_faces
    from jaxpriv.smna.dataset import generate_maps

    source = load_identity_faces(None, faces_tfds)
    first = generate_maps(source, tmp_path, max_shards=1, **SETTINGS)  # "killed" after 1 shard
    assert first["shards_written"] == 1 and not first["complete"]
    assert set(_files(tmp_path)) == {"train/shard-00000.npz"}
    (tmp_path / "test" / ".shard-00000.npz.999.tmp").write_bytes(b"half-written")  # kill -9
    second = generate_maps(source, tmp_path, **SETTINGS)
    assert second["shards_written"] == 1 and second["shards_skipped"] == 1 and second["complete"]
    assert _files(tmp_path) == _files(full_run[0])


def test_two_workers_and_split_order_match_one_run(full_run, faces_tfds, tmp_path) -> None:
    from jaxpriv.data import load_identity_faces
    from jaxpriv.smna.dataset import generate_maps

    source = load_identity_faces(None, faces_tfds)
    held = generate_maps(source, tmp_path, only_splits=["test"], worker=(1, 2), **SETTINGS)
    assert held["shards_written"] == 0 and held["worker"] == [1, 2]  # shard 0 is worker 0's
    first = generate_maps(source, tmp_path, only_splits=["test"], worker=(0, 2), **SETTINGS)
    assert first["shards_written"] == 1 and not first["complete"]
    assert set(_files(tmp_path)) == {"test/shard-00000.npz"}
    rest = generate_maps(source, tmp_path, worker=(0, 2), **SETTINGS)
    assert rest["shards_written"] == 1 and rest["complete"]
    assert _files(tmp_path) == _files(full_run[0])
    with pytest.raises(JaxprivError, match="worker index"):
        generate_maps(source, tmp_path, worker=(2, 2), **SETTINGS)
    with pytest.raises(JaxprivError, match="unknown split"):
        generate_maps(source, tmp_path, only_splits=["heldout"], **SETTINGS)


def test_four_simulated_devices_match_one(full_run, faces_tfds, tmp_path) -> None:
    script = textwrap.dedent(f"""
        import jax
        assert jax.device_count() == 4, jax.devices()
        from jaxpriv.data import load_identity_faces
        from jaxpriv.parallel import make_mesh
        from jaxpriv.smna.dataset import generate_maps
        assert make_mesh(local=True).shape == {{"data": 4}}
        s = generate_maps(load_identity_faces(None, r"{faces_tfds}"), r"{tmp_path}",
                          **{SETTINGS!r})
        assert s["devices"] == 4 and s["complete"], s
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=ROOT)
    for split in ("train", "test"):
        one, four = load_maps(full_run[0], split), load_maps(tmp_path, split)
        np.testing.assert_array_equal(four["image"], one["image"])
        for key in ("map_black", "map_white", "clean_distance"):
            np.testing.assert_allclose(four[key], one[key], atol=1e-5, rtol=0)


def test_tfds_dataset_builds_and_reads_back(full_run, tmp_path) -> None:
    from jaxpriv.data.sensitivity_maps import build_sensitivity_maps, load_sensitivity_maps

    out = full_run[0]
    build_sensitivity_maps(out, tmp_path, image_size=8)
    source = load_sensitivity_maps(tmp_path, "test")
    assert len(source) == 2 and source[0]["map_white"].shape == (8, 8)
    for split in ("train", "test"):
        a = load_maps(out, split, with_metadata=True)
        b = load_maps(tmp_path, split, with_metadata=True)
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(b[key], a[key])


def test_compact_copy_round_trip_and_checks(full_run, faces_tfds, tmp_path) -> None:
    from jaxpriv.data import load_identity_faces
    from jaxpriv.data.compact_maps import export_compact, restore_compact
    from jaxpriv.smna.dataset import generate_maps

    out, faces = full_run[0], faces_tfds.parent / "faces"
    with pytest.raises(JaxprivError, match="MB"):
        export_compact(out, tmp_path / "small", max_bytes=1000)
    assert not list((tmp_path / "small").rglob("shard-*.npz"))
    _assert_compact_round_trip(out, faces, tmp_path / "compact", tmp_path / "restored")
    resumed = generate_maps(load_identity_faces(None, faces_tfds), tmp_path / "restored",
                            **SETTINGS)
    assert resumed["shards_written"] == 0 and resumed["complete"]
    other = tmp_path / "other_faces"
    shutil.copytree(faces, other)
    photo = other / load_maps(out, "test", with_metadata=True)["filename"][0]
    photo.write_bytes((GLINT / "Barack_Obama" / sorted(os.listdir(GLINT / "Barack_Obama"))[5])
                      .read_bytes())  # a different photo under the mapped file's name
    with pytest.raises(JaxprivError, match="differs"):
        restore_compact(tmp_path / "compact", tmp_path / "restored2", other)


def test_experiment_entry_point(full_run, faces_tfds, tmp_path) -> None:
    from experiments.configs.smna_maps import get_config
    from experiments.smna_maps import run

    out = full_run[0]
    config = get_config()
    config.update(faces_dir=str(faces_tfds.parent / "faces"), tfds_dir=str(faces_tfds),
                  maps_tfds_dir=str(tmp_path / "maps_tfds"), image_size=8, shard_size=2,
                  n_faces=2, results_md=str(tmp_path / "lin.md"))
    summary = run(config, out)  # everything already generated: skips, then builds the TFDS set
    assert summary["shards_written"] == 0 and summary["complete"]
    assert load_maps(tmp_path / "maps_tfds")["image"].shape == (2, 8, 8, 3)
    assert "research use only" in (out / "README.txt").read_text()
    config.task = "linear_vs_exact"
    result = run(config, out)
    assert result["n_faces"] == 2
    assert -1 <= result["colors"]["black"]["mean"] <= 1
    assert result["colors"]["white"]["max_clean_distance_diff"] < 1e-5
    assert "Spearman" in (tmp_path / "lin.md").read_text()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    """identity_faces of celeba299-like loose crops: 2 identities x 3 photos plus a faceless
    grey photo in each (7212's sorts first: its portrait); (TFDS data dir, real photos)."""
    celeba = GLINT.parent / "celeba299"
    if not celeba.is_dir():
        pytest.skip(f"celeba299 faces not found at {celeba}")
    from PIL import Image

    from jaxpriv.data import build_identity_faces

    root = tmp_path_factory.mktemp("photos")
    manual = root / "faces"
    files = {}
    for name in ("7201", "7212"):  # train, test (jaxpriv.data.splits)
        (manual / name).mkdir(parents=True)
        files[name] = sorted(p.name for p in (celeba / name).glob("*.jpg"))[:3]
        for f in files[name]:
            shutil.copy(celeba / name / f, manual / name / f)
    blank = Image.new("RGB", (256, 256), (128, 128, 128))
    blank.save(manual / "7201" / "zzz.jpg")  # faceless non-portrait
    blank.save(manual / "7212" / "000000.jpg")  # faceless portrait (sorted first)
    build_identity_faces(manual, root / "tfds")
    return root / "tfds", files


def test_photos_are_detected_and_faceless_ones_skipped_in_manifest(photos, tmp_path) -> None:
    """celeba299-like loose crops (aligned_crops=False, YuNet): a faceless photo is skipped and
    listed in the manifest, not a crash; a faceless portrait passes its role to the next photo."""
    from jaxpriv.data import load_identity_faces
    from jaxpriv.data.map_shards import read_manifest
    from jaxpriv.smna.dataset import generate_maps

    tfds_dir, photos = photos
    manual = tfds_dir.parent / "faces"
    source = load_identity_faces(None, tfds_dir)
    out = tmp_path / "maps"
    summary = generate_maps(source, out, aligned_crops=False, detector="yunet",
                            **{**SETTINGS, "image_size": 4})
    assert summary["complete"] and summary["shards_written"] == 2
    manifest = read_manifest(out)
    assert manifest["detector"] == "yunet"
    assert set(manifest["skipped"]) == {"7201/zzz.jpg", "7212/000000.jpg"}
    assert manifest["references"] == {"7201": f"7201/{photos['7201'][0]}",
                                      "7212": f"7212/{photos['7212'][0]}"}
    assert sorted(manifest["splits"]["train"]) == [f"7201/{f}" for f in photos["7201"][1:]]
    assert sorted(manifest["splits"]["test"]) == [f"7212/{f}" for f in photos["7212"][1:]]
    test = load_maps(out, "test", with_metadata=True)
    assert sorted(test["filename"]) == manifest["splits"]["test"]
    assert (test["clean_distance"] > 0).all() and np.isfinite(test["map_black"]).all()
    np.testing.assert_array_equal(test["reference_embedding"][0], test["reference_embedding"][1])
    _assert_compact_round_trip(out, manual, tmp_path / "compact", tmp_path / "restored")


def _assert_compact_round_trip(out: Path, faces: Path, compact: Path, restored: Path) -> None:
    """export -> restore gives the shards back: images and metadata exact, maps within float16
    rounding; the restored directory counts as finished for the generator."""
    from jaxpriv.data.compact_maps import export_compact, restore_compact
    from jaxpriv.data.map_shards import read_shard

    first = export_compact(out, compact)
    assert first["new"] == 2 and first["bytes"] < 100_000
    for p in compact.rglob("shard-*.npz"):
        shard = read_shard(p)
        assert "image" not in shard and shard["map_black"].dtype == np.float16
    files = {p: p.read_bytes() for p in compact.rglob("*") if p.is_file()}
    assert export_compact(out, compact)["new"] == 0
    assert {p: p.read_bytes() for p in files} == files
    assert restore_compact(compact, restored, faces) == {"restored": 2, "skipped": 0}
    assert restore_compact(compact, restored, faces) == {"restored": 0, "skipped": 2}
    assert (restored / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()
    for split in ("train", "test"):
        for a_path, b_path in zip(shard_paths(out / split), shard_paths(restored / split),
                                  strict=True):
            a, b = read_shard(a_path), read_shard(b_path)
            assert list(a) == list(b) and a_path.name == b_path.name
            for key in a:
                if key.startswith("map_"):
                    assert b[key].dtype == np.float32
                    tol = 2.0**-11 * np.abs(a[key]) + 2.0**-24  # float16 rounding
                    assert (np.abs(b[key] - a[key]) <= tol).all(), key
                else:
                    np.testing.assert_array_equal(b[key], a[key])


def test_two_processes_match_one(photos, tmp_path) -> None:
    """jax.distributed with 2 CPU processes (localhost, gloo): each writes only its own map
    shards, SMGG trains on per-process batch slices; same maps and parameters as 1 process with
    the same 2 devices."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "tests._multihost"]
    tfds_dir = str(photos[0])
    procs = [subprocess.Popen([*args, str(i), "2", str(port), tfds_dir, str(tmp_path / "two")],
                              env=env, cwd=ROOT) for i in range(2)]
    one_env = {**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    subprocess.run([*args, "0", "1", "0", tfds_dir, str(tmp_path / "one")], env=one_env,
                   cwd=ROOT, check=True, timeout=600)
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    one, two = tmp_path / "one", tmp_path / "two"
    assert (one / "maps/manifest.json").read_bytes() == (two / "maps/manifest.json").read_bytes()
    for split in ("train", "test"):
        assert [p.name for p in shard_paths(one / "maps" / split)] == ["shard-00000.npz",
                                                                        "shard-00001.npz"]
        a, b = load_maps(one / "maps", split), load_maps(two / "maps", split)
        np.testing.assert_array_equal(b["image"], a["image"])
        for key in ("map_black", "map_white", "clean_distance"):
            scale = float(np.abs(a[key]).max())
            np.testing.assert_allclose(b[key], a[key], atol=1e-4 * scale, rtol=0)
    pa, pb = np.load(one / "params.npz"), np.load(two / "params.npz")
    assert sorted(pa.files) == sorted(pb.files) and len(pa.files) > 10
    for k in pa.files:
        scale = float(np.abs(pa[k]).max()) + 1e-6
        np.testing.assert_allclose(pb[k], pa[k], atol=1e-4 * scale, rtol=0, err_msg=k)
    ea = json.loads((one / "eval.json").read_text())
    eb = json.loads((two / "eval.json").read_text())
    assert ea.keys() == eb.keys() and "spearman" in ea
    for k in ("L1", "spearman", "pearson"):
        assert abs(ea[k] - eb[k]) <= 1e-3 * (abs(ea[k]) + 1e-3), k


def test_committed_compact_maps_restore_from_the_photos(tmp_path) -> None:
    """The committed celeba299 maps rebuild their exact images (SHA-256) from the photos: the
    map pipeline (detection, chip, resize) has not drifted from the long run's."""
    from jaxpriv.data.compact_maps import restore_compact

    compact = ROOT / "experiments" / "data" / "smna_maps" / "celeba299"
    celeba = GLINT.parent / "celeba299"
    if not celeba.is_dir():
        pytest.skip(f"celeba299 faces not found at {celeba}")
    n = len(list(compact.glob("*/shard-*.npz")))
    assert n >= 1
    assert restore_compact(compact, tmp_path, celeba) == {"restored": n, "skipped": 0}


def test_generate_maps_with_an_ensemble(faces_tfds, tmp_path) -> None:
    """recognizer="dlib_resnet,sface": maps of the ensemble loss, members' affines stored."""
    from jaxpriv.data import load_identity_faces
    from jaxpriv.data.map_shards import read_shard, shard_paths
    from jaxpriv.parallel import make_mesh
    from jaxpriv.smna.dataset import generate_maps

    source = load_identity_faces(None, faces_tfds)
    summary = generate_maps(source, tmp_path, recognizer="dlib_resnet,sface", image_size=4,
                            chunk=8, shard_size=1, splits=["train"], max_images=1,
                            mesh=make_mesh(1), progress=False)
    assert summary["complete"] and summary["shards_written"] == 1
    (path,) = shard_paths(tmp_path / "train")
    shard = read_shard(path)
    assert shard["member_affines"].shape == (1, 2, 2, 3)
    assert shard["reference_embedding"].shape == (1, 256)  # dlib 128 + SFace 128
    assert shard["map_black"].shape == (1, 4, 4) and np.abs(shard["map_black"]).max() > 1e-3


def test_map_pipeline_checks_the_detector_in_its_one_home(tmp_path) -> None:
    """An unknown detector is refused by `check_detector`'s message, before any weights load;
    every detector has the pipeline's fixed upsampling."""
    from jaxpriv.faces.detect import DETECTORS
    from jaxpriv.smna.dataset import DETECT_UPSAMPLE, central_face, generate_maps

    assert set(DETECT_UPSAMPLE) == set(DETECTORS)
    with pytest.raises(JaxprivError, match="unknown face detector 'cnn' \\(--detector"):
        central_face(np.zeros((8, 8, 3), np.uint8), "cnn")
    with pytest.raises(JaxprivError, match="unknown face detector 'cnn' \\(--detector"):
        generate_maps([], tmp_path / "maps", recognizer="no_such_recognizer", detector="cnn")


def test_compact_maps_never_guess_the_detector(tmp_path) -> None:
    """Restore rebuilds images with the manifest's detector; maps from photos whose manifest
    names none are refused (export and restore, nothing written), not rebuilt with HOG."""
    from jaxpriv.data.compact_maps import export_compact, manifest_detector, restore_compact
    from jaxpriv.data.map_shards import write_manifest

    assert manifest_detector({"aligned_crops": False, "detector": "yunet"}, tmp_path) == "yunet"
    assert manifest_detector({"aligned_crops": True}, tmp_path) == "hog"  # documented history
    with pytest.raises(JaxprivError, match="unknown face detector 'cnn'"):
        manifest_detector({"aligned_crops": False, "detector": "cnn"}, tmp_path)
    old = tmp_path / "old"
    old.mkdir()
    write_manifest(old, {"format": 2, "recognizer": "dlib_resnet", "image_size": 64,
                         "aligned_crops": False, "splits": ["train"]})
    for call in (lambda: export_compact(old, tmp_path / "compact"),
                 lambda: restore_compact(old, tmp_path / "restored", tmp_path)):
        with pytest.raises(JaxprivError, match="names no face detector"):
            call()
    assert not (tmp_path / "compact").exists() and not (tmp_path / "restored").exists()

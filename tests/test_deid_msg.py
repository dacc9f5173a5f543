"""``deid --generator mobilestylegan`` (issue 18 items 4, 6): options and defaults per generator,
the missing-package error names the exact pip command, and the pipeline keeps one noised
identity per face key (a video track spends ε once) and changes only the face region. The
projection is replaced by a cheap content-dependent stand-in here (its own tests:
tests/test_deid_w_project.py); rendering is the real MobileStyleGAN."""

from __future__ import annotations

import dataclasses
import importlib.util

import jax
import numpy as np
import pytest

from jaxpriv.cli import main
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import detect_faces
from jaxpriv.faces.detect import arcface_landmarks_in_box
from jaxpriv.methods import get_method

from .conftest import SAMPLES, rgb

HAVE_RANDOM_FACE = importlib.util.find_spec("random_face") is not None


def test_defaults_per_generator() -> None:
    spec = get_method("deid")
    old = spec.in_effect(generator="face_gan_64")
    assert (old["checkpoint"], old["steps"], old["epsilon"]) == ("ckpt/face_gan_64", 60, 256.0)
    new = spec.defaults()  # issue 18: MobileStyleGAN is the default generator
    assert new == spec.in_effect(generator="mobilestylegan")
    assert new["generator"] == "mobilestylegan" and "checkpoint" not in new and new["steps"] == 1
    assert (new["epsilon"], new["truncation"], new["clip"]) == (2048.0, 0.7, 2.0)
    # the region per generator: forehead (chosen on validation,
    # experiments/results/deid_mobilestylegan_region_validation.md); face_gan_64 keeps hull68
    assert (new["region"], old["region"]) == ("forehead", "hull68")
    assert spec.in_effect(generator="mobilestylegan", mode="paper")["epsilon"] == 3.0
    with pytest.raises(JaxprivError, match="--checkpoint applies to --generator face_gan_64"):
        spec.in_effect(generator="mobilestylegan", checkpoint="ckpt/face_gan_64")
    with pytest.raises(JaxprivError, match="--generator must be one of"):
        spec.in_effect(generator="stylegan3")


@pytest.mark.parametrize("kw,flag", [({"clip": -1.0}, "--clip"), ({"epsilon": 0.0}, "--epsilon"),
                                     ({"mode": "paper", "sensitivity": 0.0}, "--sensitivity")])
def test_python_call_refuses_a_bad_budget_before_loading(kw: dict, flag: str) -> None:
    from jaxpriv.deid.method import deid

    with pytest.raises(JaxprivError, match=f"{flag} must be > 0"):
        deid(generator="mobilestylegan", **kw)


def test_missing_random_face_names_the_pip_command(tmp_path, capsys, monkeypatch) -> None:
    from jaxpriv.deid import mobilestylegan, msg_deid

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "random_face" else real(name, *a))
    mobilestylegan.load_params.cache_clear()
    msg_deid.projector.cache_clear()
    out = tmp_path / "out"
    rc = main(["protect", str(SAMPLES / "obama.jpg"), "-o", str(out), "--method", "deid",
               "--generator", "mobilestylegan"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("jaxpriv: error: "), err
    assert "pip install --no-deps random-face==2021.7.21.1" in err[-1]
    assert not out.exists()


@pytest.mark.skipif(not HAVE_RANDOM_FACE, reason="random-face not installed (pip install "
                    "--no-deps random-face==2021.7.21.1)")
def test_one_noised_identity_per_key_and_only_the_face_changes(monkeypatch) -> None:
    """As tests/test_deid_cli.py's test for the 64×64 generator: frame 2 of a track (same key)
    renders frame 1's noised latent at its own geometry, its own face content does not reach
    the output, another key draws another identity; pixels outside the mask are unchanged."""
    from jaxpriv.deid import msg_deid
    from jaxpriv.deid import w_project as wp

    mean, std = wp.w_stats()

    def fake_projection(project, targets: np.ndarray) -> np.ndarray:  # depends on the content
        shade = targets.reshape(len(targets), -1).mean(1, keepdims=True) / 255.0
        return np.asarray(mean) + np.asarray(std) * (shade - 0.5)

    rendered: list[np.ndarray] = []
    real_render = wp.render
    monkeypatch.setattr(msg_deid, "project_batch", fake_projection)
    monkeypatch.setattr(msg_deid, "projector", lambda steps: None)
    monkeypatch.setattr(wp, "render", lambda w: rendered.append(np.asarray(w)) or real_render(w))
    frame1, frame2 = rgb(SAMPLES / "obama.jpg"), rgb(SAMPLES / "obama2.jpg")
    # the geometry (FFHQ square from the 5 points) is released per frame; fix it, as YuNet's
    # points would, so that only the face content differs between frame 2 and its edited copy
    f1, f2 = (dataclasses.replace(f, arcface_landmarks=arcface_landmarks_in_box(img, f.box))
              for img, f in ((frame1, detect_faces(frame1)[0]), (frame2, detect_faces(frame2)[0])))
    edited = frame2.copy()  # frame 2 with other face content well inside the face
    cx, cy = np.mean(f2.landmarks, axis=0).astype(int)
    edited[cy - 12:cy + 12, cx - 12:cx + 12] = 255 - edited[cy - 12:cy + 12, cx - 12:cx + 12]
    mech = msg_deid.mechanism("bounded", 1024.0, 1.0, 2.0, 0.7)
    track = jax.random.key(7)

    def second_frame(image: np.ndarray, key: jax.Array) -> np.ndarray:
        protect = msg_deid.make_protect(mech, 1, "ellipse")  # nothing released yet
        out1 = protect(frame1, [f1], key)
        changed = (out1 != frame1).any(-1)
        assert changed.any() and changed.mean() < 0.5  # the face, not the photo
        return protect(image, [f2], key)

    out, out_edited = second_frame(frame2, track), second_frame(edited, track)
    w1, w2, w1_again, w2_edited = rendered
    assert np.array_equal(w1, w2) and np.array_equal(w1_again, w2_edited)  # one identity
    assert np.array_equal(out, out_edited)  # frame 2's face content did not reach the output
    second_frame(frame2, jax.random.key(8))
    assert not np.allclose(rendered[-1], w1)  # another track, another identity
    msg_deid.make_protect(mech, 1, "ellipse")(frame2, [f2], track)  # no earlier frame
    assert not np.allclose(rendered[-1], w1)


@pytest.mark.skipif(not HAVE_RANDOM_FACE, reason="random-face not installed (pip install "
                    "--no-deps random-face==2021.7.21.1)")
def test_projection_is_compiled_once_for_every_photo_and_method(monkeypatch) -> None:
    """Issue 18 (speed): the projection is traced once per process and step count, not per
    face, photo size or method built (a compilation costs far more than a face's projection).
    A cheap stand-in keeps the real padding/caching path and counts its traces."""
    from jaxpriv.deid import msg_deid
    from jaxpriv.deid import w_project as wp

    traces: list[tuple] = []

    def fake_make(config: wp.WProjectConfig) -> wp.WProjector:
        def project(mean, std, targets):  # w after 0 … steps steps
            traces.append(targets.shape)
            w = mean + std * (targets.mean((1, 2, 3))[:, None] - 0.5)
            losses = targets[:, :config.steps, 0, 0]
            return jax.numpy.repeat(w[:, None], config.steps + 1, 1), losses

        return wp.WProjector(jax.jit(project), wp.w_stats(), config)

    monkeypatch.setattr(wp, "make_w_projector", fake_make)
    monkeypatch.setattr(wp, "render", lambda w: np.zeros((len(w), 1024, 1024, 3), np.uint8))
    msg_deid.projector.cache_clear()
    mech = msg_deid.mechanism("bounded", 1024.0, 1.0, 2.0, 0.7)
    photos = [rgb(SAMPLES / name) for name in ("obama.jpg", "obama2.jpg", "biden.jpg")]
    faces = [dataclasses.replace(f, arcface_landmarks=arcface_landmarks_in_box(img, f.box))
             for img in photos for f in detect_faces(img)[:1]]
    assert len({p.shape for p in photos}) > 1  # photos of different sizes
    for _ in range(2):  # two methods built (as two CLI runs in one process)
        protect = msg_deid.make_protect(mech, 2, "ellipse")
        for k, (image, face) in enumerate(zip(photos, faces, strict=True)):
            protect(image, [face], jax.random.key(k))
    assert len(traces) == 1, traces
    msg_deid.projector.cache_clear()


@pytest.mark.parametrize("generator,region,match", [
    ("mobilestylegan", "nose", "--region must be one of"),
    ("face_gan_64", "forehead", "--region forehead needs --generator mobilestylegan")])
def test_region_option_refuses_an_unknown_or_unsupported_region(capsys, tmp_path, generator: str,
                                                                region: str, match: str) -> None:
    """An unknown region, or one face_gan_64's blend does not have, is a one-line error (CLI and
    Python call) before anything is loaded, never a ValueError at the first face."""
    from jaxpriv.deid.method import deid

    with pytest.raises(JaxprivError, match=match) as e:
        deid(generator=generator, region=region)
    assert "\n" not in str(e.value)
    with pytest.raises(JaxprivError, match="--region"):
        get_method("deid").in_effect(generator=generator, region=region)
    out = tmp_path / "out"
    try:  # argparse exits on a name not in the choices, with its usage and a one-line error
        rc = main(["protect", str(SAMPLES / "obama.jpg"), "-o", str(out), "--method", "deid",
                   "--generator", generator, "--region", region])
    except SystemExit as exit_:
        rc = exit_.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "error: " in err[-1] and "--region" in err[-1], err
    assert not out.exists()

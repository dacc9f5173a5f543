"""``jaxpriv protect --method deid --generator face_gan_64`` on a bundled photo with the shipped
64×64 generator checkpoint (the fallback generator; the default, MobileStyleGAN, is tested in
tests/test_deid_msg.py): the face changes, nothing outside the face region does, the same seed
gives the same output."""

from __future__ import annotations

import numpy as np
import pytest

from jaxpriv.cli import main
from jaxpriv.deid.method import DEFAULT_CHECKPOINT, checkpoint_path
from jaxpriv.faces import detect_faces

from .conftest import SAMPLES, rgb

CKPT = checkpoint_path(DEFAULT_CHECKPOINT)
pytestmark = pytest.mark.skipif(
    not (CKPT / "config.json").is_file(),
    reason=f"shipped generator checkpoint {CKPT} not present (train it with "
           "experiments/configs/face_gan.py; see ckpt/face_gan_64/README.md)")


def test_protect_deid_on_sample(tmp_path, capsys) -> None:
    src = SAMPLES / "obama.jpg"
    args = ["protect", "--method", "deid", "--generator", "face_gan_64", str(src), "--mode",
            "paper", "--epsilon", "2", "--seed", "3",
            "--steps", "10", "--format", "png"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "ε = 2" in err and "Δf = 1" in err
    out = rgb(tmp_path / "a" / "obama.png")
    original = rgb(src)
    assert out.shape == original.shape
    changed = (out != original).any(-1)
    face = detect_faces(original)[0]
    x0, y0, x1, y1 = face.box
    w, h = x1 - x0, y1 - y0
    inside = np.zeros_like(changed)
    inside[max(int(y0 - 0.5 * h), 0):int(y1 + 0.5 * h),
           max(int(x0 - 0.5 * w), 0):int(x1 + 0.5 * w)] = True  # (a negative start would wrap)
    assert changed[inside].mean() > 0.05  # the face was replaced
    assert not changed[~inside].any()  # nothing else moved
    # same seed, same output; another seed, another face
    assert main([*args, "-o", str(tmp_path / "b")]) == 0
    assert np.array_equal(rgb(tmp_path / "b" / "obama.png"), out)
    args[args.index("--seed") + 1] = "4"
    assert main([*args, "-o", str(tmp_path / "c")]) == 0
    assert not np.array_equal(rgb(tmp_path / "c" / "obama.png"), out)


def test_default_bounded_mode_reports_true_epsilon(tmp_path, capsys) -> None:
    src = SAMPLES / "biden.jpg"
    assert main(["protect", "--method", "deid", "--generator", "face_gan_64", str(src), "-o",
                 str(tmp_path), "--steps", "10"]) == 0  # the default: bounded mode, default ε
    err = capsys.readouterr().err
    assert "Δf = 2·C·dim = 512" in err and "ε = 256" in err and "true ε-DP" in err
    assert "ψ = 0.7 toward the mean" in err


def test_options_in_effect_fill_the_mode_defaults() -> None:
    """What the demo and eval reports print: ε and ψ resolved per mode, explicit values kept."""
    from jaxpriv.errors import JaxprivError
    from jaxpriv.methods import get_method

    spec = get_method("deid")
    small = spec.in_effect(generator="face_gan_64")
    assert small["epsilon"] == 256.0 and small["truncation"] == 0.7
    paper = spec.in_effect(mode="paper", generator="face_gan_64")
    assert (paper["epsilon"], paper["truncation"]) == (3.0, 1.0)
    assert spec.in_effect(mode="paper", epsilon=2.0)["epsilon"] == 2.0
    with pytest.raises(JaxprivError, match="mode must be one of"):
        spec.in_effect(mode="strict")


def test_one_noised_identity_per_key_so_a_track_spends_epsilon_once(monkeypatch) -> None:
    """Issue 18 item 5: a video gives every frame of a track the same key. The frames' own
    latents must not each get the same noise (their differences would come out exactly): the
    first face under a key fixes the noised latent that is rendered, a later frame's face content
    does not reach the output (inside the mask), and another key draws another identity."""
    import jax

    from jaxpriv.deid import project
    from jaxpriv.deid.method import deid

    rendered: list[np.ndarray] = []
    real_render = project.render
    monkeypatch.setattr(project, "render",
                        lambda gen, w: rendered.append(np.asarray(w)) or real_render(gen, w))
    frame1 = rgb(SAMPLES / "obama.jpg")
    frame2 = rgb(SAMPLES / "obama2.jpg")
    f1, f2 = detect_faces(frame1)[0], detect_faces(frame2)[0]
    edited = frame2.copy()  # frame 2 with other face content well inside the face
    cx, cy = np.mean(f2.landmarks, axis=0).astype(int)  # between the eyes and the nose base
    edited[cy - 12:cy + 12, cx - 12:cx + 12] = 255 - edited[cy - 12:cy + 12, cx - 12:cx + 12]
    track = jax.random.key(7)

    def second_frame(image: np.ndarray, key: jax.Array) -> np.ndarray:
        # a fresh method: nothing released yet
        protect = deid(steps=5, region="ellipse", generator="face_gan_64")
        protect(frame1, [f1], key)
        return protect(image, [f2], key)

    out, out_edited = second_frame(frame2, track), second_frame(edited, track)
    w1, w2, w1_again, w2_edited = rendered
    assert np.array_equal(w1, w2) and np.array_equal(w1_again, w2_edited)  # one identity
    assert np.array_equal(out, out_edited)  # frame 2's face content did not reach the output
    second_frame(frame2, jax.random.key(8))
    assert not np.allclose(rendered[-1], w1)  # another track, another identity
    # no earlier frame: its own latent
    deid(steps=5, region="ellipse", generator="face_gan_64")(frame2, [f2], track)
    assert not np.allclose(rendered[-1], w1)

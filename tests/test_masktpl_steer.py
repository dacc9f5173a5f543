"""The steered pad (issue 20.1): it moves the face away from its identity for the recognizers of
the superposition, each seeing its own aligned chip, inside the template and the k-bit box, and
the key file restores it exactly."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from jaxpriv.cli import main
from jaxpriv.faces import detect_faces, extract_chips
from jaxpriv.io import load_image
from jaxpriv.masktpl import budget, steer, xor
from jaxpriv.recognizers.ensemble import chip_affines, load_ensemble, warp

from .conftest import SAMPLES
from .test_masktpl_xor import tiny_model


@functools.lru_cache(maxsize=1)
def obama() -> tuple[np.ndarray, list]:
    image = load_image(SAMPLES / "obama.jpg")
    return image, detect_faces(image)


def test_each_member_sees_its_own_chip_of_the_working_crop() -> None:
    """The working image is a crop of the photo at an offset; the members' chips warped from it
    are their own aligned chips (SFace: ArcFace-112, not a resized dlib chip). Bilinear warp vs
    dlib's / OpenCV's own sampling: mean difference within a few grey levels of 255."""
    image, faces = obama()
    ens = load_ensemble("dlib_resnet,sface")
    mask = np.zeros(image.shape[:2], bool)
    y0, y1, x0, x1 = steer.working_box(image, faces[0], ens, mask)
    assert (y1 - y0, x1 - x0) < image.shape[:2]  # a crop, not the photo
    crop = image[y0:y1, x0:x1].astype(np.float32)[None] / 255.0
    shift = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]])
    affines = chip_affines(image, faces[0], ens, shift)
    for i, rec in enumerate(ens.members):
        want = extract_chips(image, faces[:1], rec)[0][0].astype(np.float32)
        got = np.asarray(warp(crop, affines[i][None], rec.input_size))[0] * 255.0
        assert got.shape == want.shape
        assert np.abs(got - want).mean() < 6.0, rec.name


def test_steering_moves_away_inside_template_and_box() -> None:
    """A few steps against dlib push the protected face away from its clean embedding more than
    the generator's pad does; only the k low bits of template pixels change; the sealed pad
    restores the original exactly."""
    image, faces = obama()
    k = 3
    rec = load_ensemble("dlib_resnet").members[0]
    pad, mask = xor.face_pads(tiny_model(), image, faces, jax.random.key(0), k)[0]
    steered, rel = steer.steer_face(image, faces[0], mask, image, k,
                                    steer.Steering("dlib_resnet", steps=3, margin=9.0))
    changed = np.any(steered != image, axis=-1)
    assert changed.any() and not changed[~mask].any()
    np.testing.assert_array_equal(xor.high_bits(steered, k), xor.high_bits(image, k))

    def shift(x: np.ndarray) -> float:
        e = rec.embed(extract_chips(x, faces[:1], rec)[0])
        e0 = rec.embed(extract_chips(image, faces[:1], rec)[0])
        return float(np.linalg.norm(e - e0))

    assert shift(steered) > 1.5 * shift(image ^ pad)
    assert rel[0] > 0.1
    stored = xor.decode_pad(xor.encode_pad(image ^ steered, k), image.shape, k)
    np.testing.assert_array_equal(xor.restore_image(steered, stored), image)


def test_unknown_recognizer_is_a_one_line_error(tmp_path, capsys) -> None:  # noqa: ANN001
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery staple\n")
    rc = main(["protect", "--method", "mask", "--recognizer", "dlib_resnet,nosuch",
               "--password-file", str(pw), str(SAMPLES / "obama.jpg"), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "nosuch" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("steps", [-1])
def test_steps_checked(steps: int) -> None:
    from jaxpriv.errors import JaxprivError
    from jaxpriv.methods import get_method

    with pytest.raises(JaxprivError, match="--steps"):
        get_method("mask").make(steps=steps)


def test_faces_of_another_size_share_one_compilation() -> None:
    """Two faces whose working crops differ in size but fall in one bucket: the step loop is
    traced and compiled once (issue 20: a compile per crop size cost minutes per face)."""
    import cv2

    image, faces = obama()
    ens = load_ensemble("dlib_resnet")
    small = cv2.resize(image, None, fx=0.85, fy=0.85, interpolation=cv2.INTER_AREA)
    photos = [(image, faces[0]), (small, detect_faces(small)[0])]
    sides = []
    for photo, face in photos:
        y0, y1, x0, x1 = steer.working_box(photo, face, ens, np.zeros(photo.shape[:2], bool))
        sides.append(max(y1 - y0, x1 - x0))
    assert sides[0] != sides[1] and steer.bucket(sides[0]) == steer.bucket(sides[1])
    before = steer._steer._cache_size()
    for photo, face in photos:
        mask = np.zeros(photo.shape[:2], bool)
        mask[int(face.box[1]):int(face.box[3]), int(face.box[0]):int(face.box[2])] = True
        out, rel = steer.steer_face(photo, face, mask, photo, 2,
                                    steer.Steering("dlib_resnet", steps=1, margin=9.25))
        assert np.all(np.abs(out.astype(int) - photo) < 4) and len(rel) == 1
    assert steer._steer._cache_size() == before + 1


def test_texture_weight_steps_more_where_ssim_forgives() -> None:
    """Issue 20 (face SSIM ≥ 0.97): the step scale is larger on texture than on flat skin, about
    1 on average over the template, and within [0, TEXTURE_CLIP]."""
    rng = np.random.default_rng(0)
    image = np.full((1, 64, 64, 3), 128, np.uint8)
    image[0, :, 32:] = rng.integers(60, 200, (64, 32, 3))  # right half textured, left flat
    mask = np.ones((1, 64, 64), bool)
    w = budget.texture_weight(image, mask)
    assert w.shape == (1, 64, 64, 1)
    assert w[0, 8:56, 40:56].mean() > 4 * w[0, 8:56, 8:24].mean()
    assert 0.0 <= w.min() and w.max() <= budget.TEXTURE_CLIP
    flat = budget.texture_weight(np.full((1, 32, 32, 3), 90, np.uint8), np.ones((1, 32, 32), bool))
    np.testing.assert_allclose(flat, 1.0, rtol=1e-5)


def test_shrink_to_ssim_meets_the_budget_between_original_and_change() -> None:
    """The shrunk change keeps the region's SSIM ≥ the target, never exceeds the change nor flips
    its sign, and a change already within the budget is kept whole (α = 1)."""
    from jaxpriv.metrics import ssim

    rng = np.random.default_rng(1)
    original = rng.integers(40, 216, (80, 80, 3)).astype(np.uint8)
    original = np.asarray(np.repeat(np.repeat(original[::4, ::4], 4, 0), 4, 1))  # smooth-ish
    delta = rng.integers(-15, 16, original.shape)
    changed = np.clip(original.astype(int) + delta, 0, 255).astype(np.uint8)
    region = (slice(10, 70), slice(5, 75))
    assert ssim(changed[region], original[region]) < 0.97
    out, alpha = budget.shrink_to_ssim(original, changed, region, 0.97)
    assert 0.0 < alpha < 1.0
    assert ssim(out[region], original[region]) >= 0.97
    d_out = out.astype(int) - original
    d_chg = changed.astype(int) - original
    assert np.all(np.abs(d_out) <= np.abs(d_chg)) and np.all(d_out * d_chg >= 0)
    kept, alpha = budget.shrink_to_ssim(original, changed, region, 0.2)
    assert alpha == 1.0 and np.array_equal(kept, changed)


def test_steered_face_meets_the_ssim_target_and_restores() -> None:
    """steer_face at k = 4 with texture-weighted steps: the face box's SSIM ≥ the target, only
    the 4 low bits of template pixels change, and the stored pad restores bit for bit."""
    from jaxpriv.metrics import ssim

    image, faces = obama()
    k = 4
    _, mask = xor.face_pads(tiny_model(), image, faces, jax.random.key(0), k)[0]
    steered, _ = steer.steer_face(image, faces[0], mask, image, k, steer.Steering(
        "dlib_resnet", steps=6, margin=9.0, step=2.0, ssim_target=0.985))
    region = budget.face_box_region(faces[0], image.shape)
    assert np.any(steered != image)
    assert ssim(steered[region], image[region]) >= 0.985
    np.testing.assert_array_equal(xor.high_bits(steered, k), xor.high_bits(image, k))
    assert not np.any(steered != image, axis=-1)[~mask].any()
    stored = xor.decode_pad(xor.encode_pad(image ^ steered, k), image.shape, k)
    np.testing.assert_array_equal(xor.restore_image(steered, stored), image)


def test_steps_spend_the_ssim_budget_inside_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-loop projection alone (the final float64 check switched off) keeps the face box's
    SSIM at the target (float32 bisection: within 2e-3), where the same steps without a budget
    go far below it; and the change is not thrown away (SSIM stays near the target, not 1)."""
    from jaxpriv.metrics import ssim

    image, faces = obama()
    k, target = 4, 0.985
    _, mask = xor.face_pads(tiny_model(), image, faces, jax.random.key(0), k)[0]
    region = budget.face_box_region(faces[0], image.shape)
    monkeypatch.setattr(steer, "shrink_to_ssim", lambda o, c, r, t: (c, 1.0))
    free, held = (steer.steer_face(image, faces[0], mask, image, k, steer.Steering(
        "dlib_resnet", steps=6, margin=9.0, step=3.0, ssim_target=t, direction="sign",
        jitter=0.0))[0] for t in (0.0, target))
    assert ssim(free[region], image[region]) < target - 0.01
    assert target - 2e-3 <= ssim(held[region], image[region]) < target + 5e-3
    np.testing.assert_array_equal(xor.high_bits(held, k), xor.high_bits(image, k))


def test_tangent_step_keeps_ssim_to_first_order_at_the_budget() -> None:
    """At the budget (SSIM below target + slack) a step that lowers the region's SSIM loses its
    component along −∇SSIM: the same small step then costs < 1/10 of the SSIM the raw step costs
    and stays mostly the raw step (it is not zeroed); off the mask nothing moves; an image with
    SSIM to spare, or a step that raises SSIM, keeps its step."""
    from jaxpriv.metrics import region_ssim_jax

    rng = np.random.default_rng(3)
    original = rng.integers(40, 216, (2, 48, 48, 3)).astype(np.float32)
    original = np.repeat(np.repeat(original[:, ::4, ::4], 4, 1), 4, 2)  # smooth-ish
    high = original - original % 16
    low = (original % 16 + rng.integers(-3, 4, original.shape)).clip(0, 15).astype(np.float32)
    mask = np.ones((2, 48, 48, 1), np.float32)
    mask[:, :, :6] = 0
    region = budget.region_map([(slice(4, 44), slice(4, 44))] * 2, (48, 48))
    away = low - original % 16  # the change so far: more of it lowers SSIM
    delta = 0.02 * (away + 3 * rng.normal(size=original.shape)).astype(np.float32) * mask

    def ssim_at(lo: np.ndarray) -> np.ndarray:
        return np.asarray(region_ssim_jax(jax.numpy.asarray(high + lo), original, region))

    s0 = ssim_at(low)
    raw_cost = s0 - ssim_at(low + delta)
    targets = (float(s0[0]), float(s0[1]) - 0.05)  # image 0 at its budget, image 1 with room
    out = np.stack([np.asarray(budget.tangent_to_ssim(
        original[i:i + 1], high[i:i + 1], low[i:i + 1], delta[i:i + 1], mask[i:i + 1],
        region[i:i + 1], np.float32(t)))[0] for i, t in enumerate(targets)])
    assert raw_cost[0] > 0
    assert s0[0] - ssim_at(low + out)[0] < raw_cost[0] / 10
    cos = np.sum(out[0] * delta[0]) / (np.linalg.norm(out[0]) * np.linalg.norm(delta[0]))
    assert cos > 0.5
    assert not np.any(out[:, :, :6])
    np.testing.assert_array_equal(out[1], delta[1])
    back = -0.05 * away[:1] * mask[:1]  # towards the original: SSIM rises
    kept = budget.tangent_to_ssim(original[:1], high[:1], low[:1], back, mask[:1], region[:1],
                                  np.float32(targets[0]))
    np.testing.assert_array_equal(np.asarray(kept), back)


def test_scaled_step_direction_follows_the_gradient_within_its_clip() -> None:
    """"scaled": the gradient over its RMS on the template (pixels off it do not count), clipped
    at ±SCALED_CLIP, same sign as the gradient; "sign": the sign."""
    rng = np.random.default_rng(2)
    grad = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
    grad[:, :, 8:] *= 1000.0  # huge off the template: must not set the scale
    mask = np.zeros((2, 16, 16, 1), np.float32)
    mask[:, :, :8] = 1
    d = np.asarray(steer.step_direction(jax.numpy.asarray(grad), mask, "scaled"))
    rms = np.sqrt((grad[:, :, :8] ** 2).mean(axis=(1, 2, 3)))
    want = np.clip(grad / rms[:, None, None, None], -steer.SCALED_CLIP, steer.SCALED_CLIP)
    np.testing.assert_allclose(d[:, :, :8], want[:, :, :8], rtol=1e-5, atol=1e-6)
    assert np.abs(d).max() <= steer.SCALED_CLIP and np.all(d * grad >= 0)
    assert 0.3 < np.abs(d[:, :, :8]).mean() < 1.0  # magnitudes vary, unlike the sign's
    np.testing.assert_array_equal(steer.step_direction(grad, mask, "sign"), np.sign(grad))


def test_region_map_marks_the_windows_inside_the_rectangle() -> None:
    m = budget.region_map([(slice(3, 40), slice(10, 25)), (slice(0, 8), slice(0, 50))], (50, 60))
    assert m.shape == (2, 40, 50, 1)
    assert m[0].sum() == (40 - 3 - 10) * (25 - 10 - 10) and m[0, 3, 10, 0] == 1
    assert m[0, 29, 14, 0] == 1 and m[0, 2, 10, 0] == 0 and m[0, 30, 10, 0] == 0
    assert m[0, 3, 15, 0] == 0
    assert m[1].sum() == 0  # 8 rows: smaller than SSIM's window, no budget


@pytest.mark.parametrize("field", [{"weighting": "l2"}, {"direction": "l2"}, {"ssim_target": 1.0},
                                   {"ssim_target": -0.1}, {"focus": -0.1}, {"focus": "high"},
                                   {"jitter": -1.0}, {"jitter": 16.0}, {"jitter": "some"},
                                   {"rounds": 0}, {"rounds": 1.5}, {"rounds": 17},
                                   {"tangent": "yes"}])
def test_bad_steering_settings_are_one_line_errors(field: dict) -> None:
    from jaxpriv.errors import JaxprivError

    with pytest.raises(JaxprivError, match=next(iter(field))):
        steer.Steering(**field).ensemble()


def test_every_steering_field_reaches_the_steps() -> None:
    """Each Steering field is either a keyword of steer_batch (batch_keywords, with its value) or
    one steer_face / protect_image reads itself: a field added later cannot be silently dropped."""
    import dataclasses
    import inspect

    s = steer.Steering("sface", steps=5, margin=1.5, step=3.0, ssim_target=0.9, focus=0.2,
                       jitter=0.5, tangent=True, direction="sign", balance=True)
    kw = s.batch_keywords()
    assert set(kw) <= set(inspect.signature(steer.steer_batch).parameters)
    assert all(kw[f] == getattr(s, f) for f in kw)
    read_elsewhere = {"recognizers", "start", "weighting", "rounds"}
    assert set(kw) | read_elsewhere == {f.name for f in dataclasses.fields(steer.Steering)}


def test_the_loop_returns_its_best_visited_pad() -> None:
    """The loop returns the visited pad whose least-fooled member is furthest away, not the last:
    a toy member whose distance peaks inside the 4-bit box (d = 2|sin(ω·mean/2)|), a sign step of
    the whole box overshoots the peak and the next step falls back to the start's side."""
    import jax.numpy as jnp

    from jaxpriv.recognizers.base import Recognizer
    from jaxpriv.recognizers.ensemble import Ensemble

    omega = 1.5 * np.pi * 17.0  # one step (1 → 15 grey levels) lands at 3/4 of the period

    def apply(_: object, x: jax.Array) -> jax.Array:
        s = jnp.mean(x, axis=(1, 2, 3))
        return jnp.stack([jnp.sin(omega * s), jnp.cos(omega * s)], axis=-1)

    ens = Ensemble((Recognizer("toy", 8, 1.0, {}, apply),), (1.0,))
    high = np.zeros((1, 8, 8, 3), np.float32)
    start, mask = np.ones_like(high), np.ones((1, 8, 8, 1), np.float32)
    affines = np.array([[[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]], np.float32)
    ref = np.asarray(apply(None, jnp.zeros((1, 8, 8, 3))))
    runs = [steer.steer_batch(high, start, mask, affines, [ref], 4, ens, steps=steps, margin=9.0,
                              step=15.0, direction="sign", jitter=0.0) for steps in (1, 2)]
    (one, d_one), (two, d_two) = runs
    assert np.all(one == 15.0) and d_one[0, 0] > 1.4  # 2·sin(3π/4) ≈ 1.414: past the peak
    np.testing.assert_array_equal(two, one)  # step 2 falls back to l = 0 (d = 0): not returned
    np.testing.assert_allclose(d_two, d_one, rtol=1e-5)


@pytest.mark.parametrize("amount", [0.0, 2.0])
def test_jitter_composes_a_small_similarity_of_the_chip(amount: float) -> None:
    """jitter_affines(A) = A ∘ J with J a similarity of the chip about its centre: scale and
    rotation each move the chip's edge by ≤ amount px, the centre moves by ≤ amount per axis;
    amount 0 leaves A as it is; draws differ between images."""
    size, n = 150, 64
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.normal(size=(n, 2, 2)) + 2 * np.eye(2), rng.normal(size=(n, 2, 1))],
                       -1).astype(np.float32)
    got = np.asarray(steer.jitter_affines(jax.numpy.asarray(a), jax.random.key(1), size, amount),
                     np.float64)
    hom = np.concatenate([a, np.broadcast_to([[0.0, 0.0, 1.0]], (n, 1, 3))], 1).astype(np.float64)
    j = np.linalg.solve(hom, np.concatenate([got, np.broadcast_to([[0.0, 0.0, 1.0]], (n, 1, 3))],
                                            1))  # J = A⁻¹ A'
    m = j[:, :2, :2]
    np.testing.assert_allclose(m[:, 0, 0], m[:, 1, 1], atol=1e-4)  # a similarity
    np.testing.assert_allclose(m[:, 0, 1], -m[:, 1, 0], atol=1e-4)
    scale = np.hypot(m[:, 0, 0], m[:, 1, 0])
    angle = np.arctan2(m[:, 1, 0], m[:, 0, 0])
    c = (size - 1) / 2.0
    centre = np.einsum("nij,j->ni", j[:, :2, :2], [c, c]) + j[:, :2, 2] - c
    half = size / 2.0
    assert np.all(np.abs(scale - 1) * half <= amount + 1e-3)
    assert np.all(np.abs(angle) * half <= amount + 1e-3)
    assert np.all(np.abs(centre) <= amount + 1e-3)
    if amount == 0:
        np.testing.assert_allclose(got, a, atol=1e-5)
    else:  # the draws spread over the range, one per image
        assert np.abs(centre).max() > 0.8 * amount and np.abs(scale - 1).max() * half > 0.8 * amount
        assert len(np.unique(np.round(centre[:, 0], 4))) == n


def test_jittered_steering_is_reproducible_and_sees_other_geometries() -> None:
    """With jitter the pad is a fixed function of the inputs (same pad twice), and the steps see
    other geometries than the clean one (a pad different from jitter 0's)."""
    image, faces = obama()
    mask = np.zeros(image.shape[:2], bool)
    x0, y0, x1, y1 = (int(v) for v in faces[0].box)
    mask[y0:y1, x0:x1] = True
    runs = [steer.steer_face(image, faces[0], mask, image, 3, steer.Steering(
        "dlib_resnet", steps=2, margin=9.0, ssim_target=0.0, jitter=j))[0]
        for j in (2.0, 2.0, 0.0)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_rounds_steer_again_where_the_face_is_found_in_the_protected_photo(monkeypatch) -> None:  # noqa: ANN001, E501
    """rounds = 3: three runs of steps, each from the pad the last one reached; before the second
    and the third the face is found again in the protected photo by the detector that found it
    (YuNet), and the run steers at the found face's chips, not at the clean ones."""
    image, faces = obama()
    ens = load_ensemble("dlib_resnet")
    mask = np.zeros(image.shape[:2], bool)
    x0, y0, x1, y1 = (int(v) for v in faces[0].box)
    mask[y0:y1, x0:x1] = True
    runs, found = [], []
    steer_batch, refind_face = steer.steer_batch, steer.refind_face

    def recording(high, low, m, affines, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        runs.append((np.array(low), np.array(affines)))
        return steer_batch(high, low, m, affines, *args, **kwargs)

    def spying(photo, face, detector):  # noqa: ANN001, ANN202
        again = refind_face(photo, face, detector)
        found.append((photo, again, detector))
        return again

    monkeypatch.setattr(steer, "steer_batch", recording)
    monkeypatch.setattr(steer, "refind_face", spying)
    out, _ = steer.steer_face(image, faces[0], mask, image, 3, steer.Steering(
        "dlib_resnet", steps=2, margin=9.0, ssim_target=0.0, jitter=0.0, rounds=3))
    assert len(runs) == 3 and len(found) == 2
    assert [d for _, _, d in found] == ["yunet", "yunet"]
    photo, again, _ = found[0]
    assert again is not None
    assert np.array_equal(photo[~mask], image[~mask]) and not np.array_equal(photo, image)
    assert not np.array_equal(runs[1][0], runs[0][0])  # the second run starts at the pad reached
    wy0, _, wx0, _ = steer.working_box(image, faces[0], ens, mask)
    shift = np.array([[1.0, 0.0, wx0], [0.0, 1.0, wy0]])
    np.testing.assert_allclose(runs[1][1][0], chip_affines(photo, again, ens, shift), atol=1e-4)
    assert np.abs(runs[1][1] - runs[0][1]).max() > 1e-3  # the found geometry is another one
    assert np.array_equal(out[~mask], image[~mask])

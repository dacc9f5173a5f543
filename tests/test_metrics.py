"""Tests for jaxpriv.metrics: utility metrics against references on real photos, verification."""

from __future__ import annotations

import io
import math
import warnings

import imagehash
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageFilter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jaxpriv import metrics as M
from jaxpriv.errors import JaxprivError

from .conftest import SCENES

DATA = SCENES  # MIT-licensed photos (A. Geitgey)


def _skimage_ssim(protected: np.ndarray, original: np.ndarray) -> float:
    return float(
        structural_similarity(
            protected,
            original,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
            channel_axis=-1 if original.ndim == 3 else None,
        )
    )


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _mosaic(
    im: Image.Image, block: int, box: tuple[int, int, int, int] | None = None
) -> Image.Image:
    """Pixelate ``box`` (default: the whole image) with ``block``-pixel cells."""
    out = im.copy()
    box = box or (0, 0, im.width, im.height)
    region = im.crop(box)
    small = region.resize(
        (max(1, region.width // block), max(1, region.height // block)), Image.Resampling.BOX
    )
    out.paste(small.resize(region.size, Image.Resampling.NEAREST), box[:2])
    return out


@pytest.fixture(scope="module")
def originals() -> dict[str, Image.Image]:
    if not DATA.is_dir():
        pytest.skip(f"sample photos not found in {DATA}")
    return {
        "obama": Image.open(DATA / "obama-480p.jpg").convert("RGB"),  # 853 x 480
        "biden": Image.open(DATA / "biden.jpg").convert("RGB").reduce(4),  # 243 x 551
        "alex": Image.open(DATA / "alex-lacamoire.png").convert("RGB"),  # 424 x 394
    }


@pytest.fixture(scope="module")
def pairs(originals: dict[str, Image.Image]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, protected, original) uint8 HWC pairs: blur, JPEG, full and partial mosaic."""
    out = []
    for name, im in originals.items():
        w, h = im.size
        face_box = (w // 4, h // 5, w // 2, h // 2)
        variants = {
            "blur": im.filter(ImageFilter.GaussianBlur(3)),
            "jpeg": _jpeg(im, 20),
            "mosaic": _mosaic(im, 16),
            "partial_mosaic": _mosaic(im, 12, face_box),
        }
        for vname, v in variants.items():
            out.append((f"{name}/{vname}", np.asarray(v), np.asarray(im)))
    return out


# --------------------------------------------------------------------------- hand-computed


def _tiny() -> tuple[np.ndarray, np.ndarray]:
    original = np.full((2, 2, 3), 10, np.uint8)
    protected = original.copy()
    protected[0, 0, 1] = 7  # -3: would wrap to 253 under uint8 subtraction
    protected[1, 1, 0] = 14  # +4
    protected[1, 1, 2] = 6  # -4 (same pixel: counts once for L0)
    return protected, original


def test_tiny_hand_computed_values() -> None:
    protected, original = _tiny()
    assert M.l0_distance(protected, original) == 2
    assert M.l2_distance(protected, original) == pytest.approx(math.sqrt(41), rel=1e-12)
    # ||X||_2 = sqrt(12 * 100), ||X||_1 = 120, ||X||_inf = 10
    assert M.relative_lp(protected, original, 2) == pytest.approx(math.sqrt(41 / 1200), rel=1e-12)
    assert M.relative_lp(protected, original, 1) == pytest.approx(11 / 120, rel=1e-12)
    assert M.relative_lp(protected, original, math.inf) == pytest.approx(0.4, rel=1e-12)
    assert M.psnr(protected, original) == pytest.approx(
        10 * math.log10(255**2 * 12 / 41), rel=1e-12
    )
    # eq. (15) averages over images: second pair is unchanged, so the mean halves.
    assert M.ald_p([protected, original], [original, original], 1) == pytest.approx(11 / 240)


def test_identical_images(originals: dict[str, Image.Image]) -> None:
    x = np.asarray(originals["alex"])
    assert M.l0_distance(x, x) == 0
    assert M.l2_distance(x, x) == 0.0
    assert M.relative_lp(x, x) == 0.0
    assert M.psnr(x, x) == math.inf
    assert M.dhash_distance(x, x, 16) == 0
    assert M.ssim(x, x) == pytest.approx(1.0, abs=1e-12)


def test_l0_counts_pixels_not_channels() -> None:
    original = np.zeros((4, 5, 3), np.uint8)
    protected = original.copy()
    protected[1, 2, :] = 255  # one pixel, three channels
    protected[3, 4, 2] = 1  # one pixel, one channel
    assert M.l0_distance(protected, original) == 2
    assert M.l0_distance(protected[..., 2], original[..., 2]) == 2  # grey (H, W) input
    assert M.l0_distance(protected[..., 0], original[..., 0]) == 1


# --------------------------------------------------------------------------- real photos


def test_l0_l2_ald_match_numpy_formulas(pairs: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    for name, xa, x in pairs:
        d = xa.astype(np.int64) - x.astype(np.int64)
        l0 = int((np.abs(d).sum(axis=-1) > 0).sum())
        assert M.l0_distance(xa, x) == l0, name
        assert 0 < l0 <= x.shape[0] * x.shape[1], name
        assert M.l2_distance(xa, x) == pytest.approx(math.sqrt(float((d * d).sum())), rel=1e-12)
        for p in (1, 2, math.inf):
            want = np.linalg.norm(d.ravel().astype(float), p) / np.linalg.norm(
                x.ravel().astype(float), p
            )
            assert M.relative_lp(xa, x, p) == pytest.approx(want, rel=1e-12), (name, p)
    # The partial mosaic only changes its box: L0 is bounded by the box area.
    name, xa, x = next(t for t in pairs if t[0] == "obama/partial_mosaic")
    w, h = x.shape[1], x.shape[0]
    assert M.l0_distance(xa, x) <= (w // 2 - w // 4) * (h // 2 - h // 5)
    xs = [p[1] for p in pairs]
    os_ = [p[2] for p in pairs]
    want = np.mean([M.relative_lp(a, b, 2) for a, b in zip(xs, os_, strict=True)])
    assert M.ald_p(xs, os_, 2) == pytest.approx(want, rel=1e-12)


def test_ssim_matches_skimage(pairs: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    for name, xa, x in pairs:
        ref = _skimage_ssim(xa, x)
        assert M.ssim(xa, x) == pytest.approx(ref, abs=1e-10), name
        assert ref < 0.999, name  # the variants really change the image
    # grey (H, W) input, and the mean over images of eq. (16)
    name, xa, x = pairs[0]
    g_a, g = xa[..., 1].copy(), x[..., 1].copy()
    assert M.ssim(g_a, g) == pytest.approx(_skimage_ssim(g_a, g), abs=1e-10)
    refs = [_skimage_ssim(a, b) for _, a, b in pairs[:3]]
    got = M.mean_ssim([a for _, a, _ in pairs[:3]], [b for _, _, b in pairs[:3]])
    assert got == pytest.approx(float(np.mean(refs)), abs=1e-10)


def _centre(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return img[h // 2 - 80 : h // 2 + 80, w // 2 - 73 : w // 2 + 74]  # 160 x 147


def test_ssim_jax_matches_skimage(pairs: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    # A batch of equally sized crops from different photos and variants, jitted once.
    picks = [pairs[0], pairs[5], pairs[11]]
    xa = np.stack([_centre(a) for _, a, _ in picks])
    x = np.stack([_centre(b) for _, _, b in picks])
    refs = np.array([_skimage_ssim(a, b) for a, b in zip(xa, x, strict=True)])
    assert np.all(refs < 0.99)
    f = jax.jit(M.ssim_jax)
    got = np.asarray(f(jnp.asarray(xa, jnp.float32), jnp.asarray(x, jnp.float32), 255.0))
    assert got.shape == (3,)
    np.testing.assert_allclose(got, refs, rtol=0, atol=1e-5)
    got01 = np.asarray(f(jnp.asarray(xa / 255.0, jnp.float32), jnp.asarray(x / 255.0), 1.0))
    np.testing.assert_allclose(got01, refs, rtol=0, atol=1e-5)


def test_region_ssim_jax_is_skimage_ssim_of_the_crop(
        pairs: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    """The masked mean of the SSIM map over a rectangle (the mask budget's face box) is skimage's
    SSIM of that rectangle's crop, for rectangles at different places in one batch."""
    picks = [pairs[0], pairs[5]]
    xa = np.stack([_centre(a) for _, a, _ in picks])
    x = np.stack([_centre(b) for _, _, b in picks])
    rects = [(slice(7, 95), slice(20, 131)), (slice(40, 160), slice(0, 60))]
    region = np.zeros((2, xa.shape[1] - 10, xa.shape[2] - 10, 1), np.float32)
    for i, (r, c) in enumerate(rects):
        region[i, r.start:r.stop - 10, c.start:c.stop - 10] = 1
    refs = [_skimage_ssim(a[r, c], b[r, c]) for a, b, (r, c) in zip(xa, x, rects, strict=True)]
    whole = [_skimage_ssim(a, b) for a, b in zip(xa, x, strict=True)]
    assert min(abs(u - v) for u, v in zip(refs, whole, strict=True)) > 1e-3  # not the whole image
    got = np.asarray(jax.jit(M.region_ssim_jax)(jnp.asarray(xa, jnp.float32),
                                                jnp.asarray(x, jnp.float32), region))
    np.testing.assert_allclose(got, refs, rtol=0, atol=1e-5)


def test_ssim_jax_gradient(pairs: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    xa = jnp.asarray(_centre(pairs[0][1])[:40, :40], jnp.float32)
    x = jnp.asarray(_centre(pairs[0][2])[:40, :40], jnp.float32)

    def fun(a: jax.Array) -> jax.Array:
        return M.ssim_jax(a, x)

    grad = jax.jit(jax.grad(fun))(xa)
    assert bool(jnp.all(jnp.isfinite(grad)))
    v = jnp.asarray(np.random.default_rng(0).normal(size=xa.shape), jnp.float32)
    eps = 0.1
    fd = float((fun(xa + eps * v) - fun(xa - eps * v)) / (2 * eps))
    assert abs(fd) > 1e-4
    assert float(jnp.vdot(grad, v)) == pytest.approx(fd, rel=1e-2)


def test_psnr_matches_skimage(pairs: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    for name, xa, x in pairs:
        ref = peak_signal_noise_ratio(x, xa, data_range=255)
        assert M.psnr(xa, x) == pytest.approx(ref, rel=1e-12), name


@pytest.mark.parametrize("hash_size", [8, 16])
def test_dhash_matches_imagehash(
    pairs: list[tuple[str, np.ndarray, np.ndarray]], hash_size: int
) -> None:
    nonzero = 0
    for name, xa, x in pairs:
        ha = imagehash.dhash(Image.fromarray(xa), hash_size)
        h = imagehash.dhash(Image.fromarray(x), hash_size)
        np.testing.assert_array_equal(M.dhash_bits(xa, hash_size), ha.hash)
        assert M.dhash_distance(xa, x, hash_size) == ha - h, name
        nonzero += ha - h > 0
    assert nonzero >= 3  # the comparison is not trivially 0 == 0


def test_utility_metrics_means(pairs: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    sub = pairs[4:8]  # the smaller biden variants
    xs, os_ = [a for _, a, _ in sub], [b for _, _, b in sub]
    got = M.utility_metrics(xs, os_, p=1, hash_size=8)
    assert set(got) == {"l0", "l2", "ald_p", "ssim", "dhash", "psnr"}
    assert got["l0"] == pytest.approx(
        np.mean([M.l0_distance(a, b) for a, b in zip(xs, os_, strict=True)])
    )
    assert got["l2"] == pytest.approx(
        np.mean([M.l2_distance(a, b) for a, b in zip(xs, os_, strict=True)])
    )
    assert got["ald_p"] == pytest.approx(
        np.mean([M.relative_lp(a, b, 1) for a, b in zip(xs, os_, strict=True)])
    )
    assert got["ssim"] == pytest.approx(
        np.mean([_skimage_ssim(a, b) for a, b in zip(xs, os_, strict=True)])
    )
    assert got["dhash"] == pytest.approx(
        np.mean([M.dhash_distance(a, b) for a, b in zip(xs, os_, strict=True)])
    )
    assert got["psnr"] == pytest.approx(
        np.mean(
            [peak_signal_noise_ratio(b, a, data_range=255) for a, b in zip(xs, os_, strict=True)]
        )
    )


def test_bad_inputs_raise() -> None:
    a = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(JaxprivError, match="shapes differ"):
        M.l2_distance(a, np.zeros((16, 15, 3), np.uint8))
    with pytest.raises(JaxprivError, match="uint8"):
        M.l0_distance(a.astype(np.float32), a.astype(np.float32))
    with pytest.raises(JaxprivError, match="shape"):
        M.psnr(np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(JaxprivError, match="all-zero"):
        M.relative_lp(a + 1, a)
    with pytest.raises(JaxprivError, match="at least 11x11"):
        M.ssim(a[:10], a[:10])
    with pytest.raises(JaxprivError, match="protected images"):
        M.ald_p([a], [a, a])


# --------------------------------------------------------------------------- verification


def test_accept_rates_use_strict_threshold() -> None:
    d = np.array([0.1, 0.2, 0.3, 0.4])
    assert M.true_accept_rate(d, 0.3) == 0.5  # 0.3 itself is not accepted
    assert M.false_accept_rate(d, 0.31) == 0.75
    assert M.protection_success_rate(d, 0.3) == 0.5
    assert M.protection_success_rate([0.5, 0.6, 0.7], 0.6) == pytest.approx(2 / 3)
    with pytest.raises(JaxprivError):
        M.true_accept_rate([], 0.5)
    with pytest.raises(JaxprivError):
        M.false_accept_rate([0.1, float("nan")], 0.5)


def test_threshold_at_far_known_answers() -> None:
    d = np.arange(100, 0, -1) / 100.0  # 1.00 .. 0.01, unsorted on purpose
    t = M.threshold_at_far(d, 0.05)
    assert t == pytest.approx(0.06)
    assert M.false_accept_rate(d, t) == 0.05
    assert M.false_accept_rate(d, np.nextafter(t, 1.0)) > 0.05  # it is the largest
    assert M.threshold_at_far(d, 0.29) == pytest.approx(0.30)  # 0.29 * 100 = 28.999...
    assert M.threshold_at_far(d, 0.0555) == pytest.approx(0.06)  # floor(5.55) = 5


def test_threshold_at_far_ties_and_random() -> None:
    d = [0.5, 0.2, 0.1, 0.2, 0.2]
    t = M.threshold_at_far(d, 0.4)  # may accept 2 of 5, but three tie at 0.2
    assert t == 0.2
    assert M.false_accept_rate(d, t) == 0.2  # below the target because of the tie
    assert M.false_accept_rate(d, np.nextafter(t, 1.0)) == 0.8
    rng = np.random.default_rng(0)
    imp = rng.normal(1.0, 0.2, size=1000)
    for target in (0.001, 0.01, 0.1, 0.5):
        t = M.threshold_at_far(imp, target)
        assert M.false_accept_rate(imp, t) <= target
        assert M.false_accept_rate(imp, np.nextafter(t, np.inf)) > target


def test_threshold_at_far_too_few_impostors() -> None:
    d = np.linspace(0.5, 1.4, 10)
    with pytest.warns(M.FarResolutionWarning, match="cannot resolve"):
        t = M.threshold_at_far(d, 0.05)
    assert t == 0.5
    assert M.false_accept_rate(d, t) == 0.0
    with pytest.raises(JaxprivError, match="cannot resolve"):
        M.threshold_at_far(d, 0.05, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert M.threshold_at_far(d, 0.1) == pytest.approx(0.6)  # 1 of 10: resolvable
    for bad in (1.0, -0.1):
        with pytest.raises(JaxprivError, match="target_far"):
            M.threshold_at_far(d, bad)
    with pytest.raises(JaxprivError, match="empty"):
        M.threshold_at_far([], 0.1)

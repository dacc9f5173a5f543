"""DP-Pix (Fan 2018): the privacy loss the mechanism as implemented realises is at most the ε it
claims (cells observed from its output, not from its formula), the log-likelihood ratio of
actual releases of neighbouring images stays within ε, and new region sizes compile nothing."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxpriv.baselines import dppix, dppix_scale
from jaxpriv.faces import Face

CELL, M, EPS = 8, 16, 0.5
SHAPES = [(64, 64), (81, 81), (5, 5), (1, 1), (5, 100), (100, 3), (13, 29), (23, 17), (200, 9)]


def release(image: np.ndarray, key: jax.Array, cell: int = CELL, m: int = M,
            epsilon: float = EPS) -> np.ndarray:
    """DP-Pix of a whole image (one face region covering it exactly)."""
    h, w = image.shape[:2]
    face = Face((0.0, 0.0, w - 1.0, h - 1.0), np.zeros((5, 2)))
    return dppix(cell=cell, m=m, epsilon=epsilon, margin=0.0)(image, [face], key)


def observed_cells(h: int, w: int, cell: int, m: int) -> np.ndarray:
    """Cell label of every pixel, read off the mechanism's output: at a tiny ε each cell and
    channel comes out 0 or 255 at random, so over 16 keys (48 random bits per cell) two pixels
    agree everywhere only if they share a cell."""
    grey = np.full((h, w, 3), 128, np.uint8)
    outs = np.concatenate([release(grey, jax.random.key(k), cell, m, 1e-6) for k in range(16)],
                          axis=-1)
    assert set(np.unique(outs)) <= {0, 255}
    return np.unique(outs.reshape(h * w, -1), axis=0, return_inverse=True)[1].reshape(h, w)


def realised_loss(labels: np.ndarray, scale: float, m: int) -> float:
    """Worst-case privacy loss over images differing in ≤ m pixels: a pixel of an n-pixel cell
    moves that cell's 3 released means by ≤ 255/n each, i.e. the log-likelihood by
    ≤ 3·255/(n·scale); the worst neighbour changes the m pixels where that is largest."""
    n = np.bincount(labels.ravel())[labels.ravel()]
    return float(np.sort(3 * 255.0 / (n * scale))[::-1][:m].sum())


@pytest.mark.parametrize(("cell", "m"), [(CELL, M), (5, 1), (8, 200)])
@pytest.mark.parametrize("shape", SHAPES)
def test_realised_privacy_loss_is_the_claimed_epsilon(shape: tuple[int, int], cell: int,
                                                      m: int) -> None:
    """Old code: 1.5 in full 8×8 cells and 17.25 in the 1-pixel edge cell of 81×81 (ε = 0.5)."""
    h, w = shape
    loss = realised_loss(observed_cells(h, w, cell, m), dppix_scale(h, w, cell, m, EPS), m)
    assert loss <= EPS * (1 + 1e-9)
    assert loss >= EPS * (1 - 1e-9)  # exact: no more noise than the bound needs


def test_no_cell_smaller_than_b_by_b() -> None:
    sizes = np.bincount(observed_cells(81, 81, CELL, M).ravel())
    assert sizes.min() == 64 and sizes.max() == 9 * 9 and len(sizes) == 100


def _laplace_cdf(x: np.ndarray, mu: np.ndarray, b: float) -> np.ndarray:
    z = (x - mu) / b
    return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0)), 1 - 0.5 * np.exp(-np.maximum(z, 0)))


def _log_prob(y: np.ndarray, mu: np.ndarray, b: float) -> np.ndarray:
    """log P(clip(rint(mu + Lap(b)), 0, 255) = y): the released uint8 value of a cell."""
    lo = np.where(y == 0, -np.inf, y - 0.5)
    hi = np.where(y == 255, np.inf, y + 0.5)
    return np.log(_laplace_cdf(hi, mu, b) - _laplace_cdf(lo, mu, b))


@pytest.mark.parametrize("shape", [(64, 64), (81, 81), (5, 5), (13, 29)])
def test_log_likelihood_ratio_of_releases_within_epsilon(shape: tuple[int, int]) -> None:
    """Neighbouring images (the m pixels of largest weight set to white), 300 releases of each:
    |log P(release | x) − log P(release | x')| ≤ ε for every one, with P the Laplace model of
    the release in the cells seen in the output. Old code: up to ≈ 1.4 (64×64) and ≈ 6 (81×81)."""
    h, w = shape
    labels = observed_cells(h, w, CELL, M).ravel()
    scale = dppix_scale(h, w, CELL, M, EPS)
    rng = np.random.default_rng(0)
    x = rng.integers(10, 31, (h, w, 3)).astype(np.uint8)  # dark: releases often clip at 0
    n = np.bincount(labels)
    worst = np.argsort(-1.0 / n[labels], kind="stable")[:M]
    x2 = x.reshape(-1, 3).copy()
    x2[worst] = 255
    x2 = x2.reshape(h, w, 3)
    first = np.unique(labels, return_index=True)[1]  # one pixel of each cell

    def means(img: np.ndarray) -> np.ndarray:
        flat = img.reshape(-1, 3).astype(np.float64)
        return np.stack([np.bincount(labels, flat[:, c]) for c in range(3)], 1) / n[:, None]

    mu, mu2 = means(x), means(x2)
    llr = []
    for source in (x, x2):
        for k in range(300):
            y = release(source, jax.random.key(k)).reshape(-1, 3)[first].astype(np.float64)
            llr.append(np.sum(_log_prob(y, mu, scale) - _log_prob(y, mu2, scale)))
    llr = np.abs(np.array(llr))
    assert llr.max() <= EPS + 1e-6
    assert llr.max() > 0.5 * EPS  # the test gets near the bound: it could fail


def test_new_region_sizes_compile_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The noise draw is traced (compiled) at most once for faces of 30 sizes (old code: one
    compilation per new size); same key and image give the same output, another key another."""
    traced = []
    laplace = jax.random.laplace

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        traced.append(args[1] if len(args) > 1 else kwargs.get("shape"))
        return laplace(*args, **kwargs)

    monkeypatch.setattr(jax.random, "laplace", counting)
    protect = dppix()
    image = np.random.default_rng(1).integers(0, 256, (560, 560, 3), np.uint8)
    key = jax.random.key(4)
    for size in range(60, 360, 10):
        face = Face((40.0, 40.0, 40.0 + size, 40.0 + 1.2 * size), np.zeros((5, 2)))
        out = protect(image, [face], key)
        assert np.array_equal(protect(image, [face], key), out)
        assert not np.array_equal(protect(image, [face], jax.random.key(5)), out)
    assert len(traced) <= 1, traced

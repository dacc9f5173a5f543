"""FFHQ alignment and back (issue 18 item 2): the FFHQ square from the 5 ArcFace points, a crop
that puts image points where the transform says, and a paste-back that leaves the photo unchanged
outside its soft face mask and returns an unedited crop to the photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from jaxpriv.deid import ffhq
from jaxpriv.faces import Face, detect_faces

from .conftest import SAMPLES, rgb

# eyes (left, right), nose, mouth corners (left, right): an upright face, eyes 60 px apart
POINTS = np.array([[170.0, 200.0], [230.0, 200.0], [200.0, 235.0], [178.0, 262.0],
                   [222.0, 262.0]])


def _similarity(angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def test_quad_is_the_ffhq_square() -> None:
    quad = ffhq.ffhq_quad(POINTS)
    eye, b = np.array([200.0, 200.0]), np.array([0.0, 62.0])  # eye centre, eye→mouth
    half = max(2 * 60.0, 1.8 * 62.0)  # |x| = max(2·|eye→eye|, 1.8·|eye→mouth|)
    np.testing.assert_allclose(quad.mean(0), eye + 0.1 * b, atol=1e-9)
    np.testing.assert_allclose(quad, [[80, 86.2], [80, 326.2], [320, 326.2], [320, 86.2]],
                               atol=1e-9)
    assert np.allclose(np.linalg.norm(quad - np.roll(quad, 1, 0), axis=1), 2 * half)


@pytest.mark.parametrize("angle,scale", [(0.3, 1.7), (-1.1, 0.6)])
def test_quad_follows_a_similarity_of_the_face(angle: float, scale: float) -> None:
    s = _similarity(angle, scale, (40.0, -13.0))
    moved = POINTS @ s[:, :2].T + s[:, 2]
    np.testing.assert_allclose(ffhq.ffhq_quad(moved), ffhq.ffhq_quad(POINTS) @ s[:, :2].T
                               + s[:, 2], atol=1e-9)


def test_transform_maps_chip_edges_to_the_quad_and_rescales() -> None:
    quad = ffhq.ffhq_quad(POINTS @ _similarity(0.4, 1.3, (5, 7))[:, :2].T)
    for size in (256, 1024):
        t = ffhq.quad_transform(quad, size)
        edges = np.array([[-0.5, -0.5, 1], [-0.5, size - 0.5, 1], [size - 0.5, size - 0.5, 1],
                          [size - 0.5, -0.5, 1]])
        np.testing.assert_allclose(edges @ t.T, quad, atol=1e-9)
    np.testing.assert_allclose(ffhq.resize_transform(ffhq.quad_transform(quad, 256), 256, 1024),
                               ffhq.quad_transform(quad, 1024), atol=1e-9)


@pytest.mark.parametrize("size", [128, 512])  # shrinking (anti-aliased) and enlarging
def test_crop_puts_an_image_point_where_the_transform_says(size: int) -> None:
    h, w = 480, 420
    ys, xs = np.mgrid[:h, :w]
    spot = np.array([213.3, 251.7])  # a Gaussian spot off the pixel grid, σ = 4 px
    blob = 255 * np.exp(-((xs - spot[0]) ** 2 + (ys - spot[1]) ** 2) / (2 * 4.0**2))
    image = np.repeat(blob[..., None], 3, -1).round().astype(np.uint8)
    t = ffhq.quad_transform(ffhq.ffhq_quad(POINTS @ _similarity(0.5, 1.0, (0, 0))[:, :2].T
                                           + [60, -20]), size)
    crop = ffhq.align_crop(image, t, size)[..., 0].astype(np.float64)
    v, u = np.mgrid[:size, :size]
    found = np.array([(u * crop).sum(), (v * crop).sum()]) / crop.sum()
    expected = np.linalg.solve(t[:, :2], spot - t[:, 2])
    # a chip pixel is |t[:, 0]| image px; the centroid of a sampled blob is good to ~0.1 px
    assert np.linalg.norm(found - expected) < 0.15 * max(1.0, size / 240)


@pytest.fixture(scope="module")
def photo() -> tuple[np.ndarray, Face]:
    image = rgb(SAMPLES / "obama.jpg")
    return image, detect_faces(image)[0]


@pytest.mark.parametrize("region", ffhq.REGIONS)
def test_unedited_crop_pasted_back_is_the_photo(photo, region: str) -> None:
    image, face = photo
    size = 1024
    t = ffhq.ffhq_transform(image, face, size)
    crop = ffhq.align_crop(image, t, size)
    weight = ffhq.soft_mask(ffhq.region_polygon(image, face, t, size, region), size)
    out, wimg = ffhq.paste_back(image, crop, t, weight)
    assert out.shape == image.shape and out.dtype == np.uint8
    outside = wimg == 0
    assert outside.mean() > 0.5 and (wimg > 0.99).sum() > 2000  # a face-sized mask
    assert np.array_equal(out[outside], image[outside])  # unchanged outside, bit for bit
    # inside: two bilinear resamplings of a ≈ 3× enlarged crop — the photo to within a few
    # grey levels (its local contrast), not a shifted or mirrored copy
    diff = np.abs(out.astype(int) - image.astype(int))[~outside]
    assert diff.mean() < 1.5 and np.percentile(diff, 99) < 8, (diff.mean(), diff.max())
    shifted = np.abs(np.roll(image, 3, 1).astype(int) - image.astype(int))[~outside]
    assert shifted.mean() > 3 * diff.mean()


def test_soft_mask_has_no_visible_edge() -> None:
    size = 512
    poly = ffhq.region_polygon(np.zeros((1, 1, 3), np.uint8), Face((0, 0, 1, 1), POINTS),
                               np.eye(2, 3), size, "ellipse")
    m = ffhq.soft_mask(poly, size)
    inside = np.zeros((size, size), np.uint8)
    cv2.fillPoly(inside, [np.round(poly).astype(np.int32)], 1)
    assert m[inside == 0].max() <= 0.02 and m.max() == pytest.approx(1.0)
    assert m[size * 62 // 100, size // 2] == pytest.approx(1.0)  # the face centre is replaced
    # no step: neighbouring weights differ by at most ~ one feather's slope
    feather = ffhq.FEATHER * size
    steps = max(np.abs(np.diff(m, axis=0)).max(), np.abs(np.diff(m, axis=1)).max())
    assert steps < 3.0 / feather, steps


def test_generated_face_changes_only_the_mask(photo) -> None:
    image, face = photo
    t = ffhq.ffhq_transform(image, face, 256)
    weight = ffhq.soft_mask(ffhq.region_polygon(image, face, t, 256), 256)
    other = np.full((256, 256, 3), (30, 200, 90), np.uint8)
    out, wimg = ffhq.paste_back(image, other, t, weight, match_colour=False)
    assert np.array_equal(out[wimg == 0], image[wimg == 0])
    centre = wimg > 0.999
    np.testing.assert_allclose(out[centre].mean(0), (30, 200, 90), atol=1.0)


@pytest.mark.parametrize("region", ["forehead", "forehead_wide"])
def test_forehead_region_covers_the_forehead_inside_the_chip(photo, region: str) -> None:
    """The brows lifted (by FOREHEAD_LIFT × eye-to-chin): the polygon holds the whole hull68 and
    points above the brows that hull68 leaves to the photo, and stays inside the chip — also for
    a photo cut just above the brows."""
    from jaxpriv.deid.blend import landmarks68

    image, face = photo
    size = 512
    for img in (image, image[int(landmarks68(image, face)[17:27, 1].min()) - 5:]):
        f = detect_faces(img)[0] if img is not image else face
        t = ffhq.ffhq_transform(img, f, size)
        hull = ffhq.region_polygon(img, f, t, size, "hull68")
        poly = ffhq.region_polygon(img, f, t, size, region)
        assert poly.min() >= -0.5 and poly.max() <= size - 0.5
        inside = [cv2.pointPolygonTest(poly.astype(np.float32), tuple(map(float, p)), False)
                  for p in hull]
        assert min(inside) >= 0  # hull68 ⊂ the new region
        # a forehead point: above the middle of the brows by ¼ of the eye-to-chin distance
        pts = landmarks68(img, f) @ np.linalg.inv(np.vstack([t, [0, 0, 1]]))[:2, :2].T \
            + np.linalg.inv(np.vstack([t, [0, 0, 1]]))[:2, 2]
        up = 0.25 * (pts[8, 1] - pts[36:48, 1].mean())
        forehead = (float(pts[17:27, 0].mean()), float(pts[17:27, 1].mean() - up))
        assert cv2.pointPolygonTest(poly.astype(np.float32), forehead, True) > 0.05 * up
        assert cv2.pointPolygonTest(hull.astype(np.float32), forehead, False) < 0
        weight = ffhq.soft_mask(poly, size)
        assert weight[int(forehead[1]), int(forehead[0])] > 0.5  # replaced, not just feathered

"""FFHQ alignment and back: the crop MobileStyleGAN's faces live in, and paste-back into the photo.

**The FFHQ crop** (Karras et al. 2019, the FFHQ data set's alignment) is a square oriented and
scaled by the eyes and the mouth. With ``e_l, e_r`` the eye centres and ``m_l, m_r`` the mouth
corners: ``e = (e_l + e_r)/2``, ``a = e_r − e_l`` (eye to eye), ``b = (m_l + m_r)/2 − e`` (eye to
mouth); ``x = a − rot90(b)`` (``rot90(b) = (−b_y, b_x)``) normalised to length
``max(2·|a|, 1.8·|b|)``, ``y = rot90(x)``, centre ``c = e + 0.1·b``; the square's corners are
``c − x − y`` (top left), ``c − x + y`` (bottom left), ``c + x + y``, ``c + x − y`` (top right),
side ``2·|x|``. FFHQ takes the eye centres as the means of dlib's six 68-point eye landmarks and
the mouth corners as points 48 and 54; those are exactly the 5 ArcFace points of a
:class:`~jaxpriv.faces.Face` (eye centres, nose tip, mouth corners): YuNet's own, or for HOG
faces derived from dlib's 68 landmarks by :func:`jaxpriv.faces.detect.arcface_landmarks_in_box`.
The nose is not used. dlib's 5-point model (eye corners + nose base) has no mouth, so it cannot
define this crop.

The square maps to a ``size``-pixel chip (pixel centres at ``(i + ½)/size`` of the side). A
chip is sampled bilinearly after an anti-alias Gaussian blur when the face is larger than the
chip. **Paste-back** warps a chip back with the same transform and blends it with a soft weight
that is 1 inside the face region and falls to 0 at its border: the convex hull of dlib's 68
landmarks (``hull68``: jaw line to eyebrows), that hull with the brows lifted over the forehead
(``forehead``; also grown around its centre over the face outline: ``forehead_wide``) or a fixed
ellipse of the FFHQ template (``ellipse``), so hair and background stay the photo's own; the
generated face is first shifted to the photo's mean colour along the region's soft border.
Pixels where the weight is 0 are copied unchanged. Images are uint8 HWC RGB.
"""

from __future__ import annotations

import cv2
import numpy as np

from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face
from jaxpriv.faces.align import chip_footprint
from jaxpriv.faces.detect import arcface_landmarks_in_box, check_image

REGION_HELP = {
    "hull68": "convex hull of dlib's 68 landmarks (jaw line to eyebrows)",
    "ellipse": "fixed ellipse of the FFHQ chip template",
    "forehead": "hull68 with the 10 brow points lifted by 0.4 × the eye-to-chin distance "
                "(covers the forehead)",
    "forehead_wide": "forehead grown ×1.1 around its centroid (covers the face outline too)"}
REGIONS = tuple(REGION_HELP)
FOREHEAD_LIFT = 0.4  # brow lift, as a share of the eye-to-chin distance (chip's vertical)
WIDE_GROWTH = 1.1  # forehead_wide: scale of the forehead polygon around its centroid
# face ellipse in the FFHQ chip (fractions of the side: centre, half-axes): eyes at y ≈ 0.47,
# mouth ≈ 0.74 by the construction above; brows to chin ≈ 0.36 … 0.90, cheeks ≈ 0.5 ± 0.25
ELLIPSE = ((0.5, 0.62), (0.26, 0.30))
FEATHER = 0.03  # width of the soft border, as a share of the chip side


def face_points(image: np.ndarray, face: Face) -> np.ndarray:
    """The 5 ArcFace points of ``face`` (YuNet's, or from dlib's 68 landmarks in its box)."""
    if face.arcface_landmarks is not None:
        return np.asarray(face.arcface_landmarks, np.float64)
    return arcface_landmarks_in_box(image, face.box)


def ffhq_quad(points: np.ndarray) -> np.ndarray:
    """The FFHQ crop square (4, 2) — top left, bottom left, bottom right, top right — from the 5
    ArcFace points (image-left eye, image-right eye, nose, image-left and right mouth corner)."""
    p = np.asarray(points, np.float64)
    eye_l, eye_r, mouth_l, mouth_r = p[0], p[1], p[3], p[4]
    eye = (eye_l + eye_r) / 2
    a, b = eye_r - eye_l, (mouth_l + mouth_r) / 2 - eye

    def rot90(v: np.ndarray) -> np.ndarray:
        return np.array([-v[1], v[0]])

    x = a - rot90(b)
    x = x / np.hypot(*x) * max(2.0 * np.hypot(*a), 1.8 * np.hypot(*b))
    y = rot90(x)
    c = eye + 0.1 * b
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def quad_transform(quad: np.ndarray, size: int) -> np.ndarray:
    """2×3 affine taking chip pixel ``(u, v, 1)`` of a ``size``-pixel chip to image ``(x, y)``:
    pixel centres at ``(u + ½)/size`` of the square's sides."""
    q = np.asarray(quad, np.float64)
    ex, ey = (q[3] - q[0]) / size, (q[1] - q[0]) / size
    origin = q[0] + 0.5 * (ex + ey)
    return np.stack([ex, ey, origin], 1)


def ffhq_transform(image: np.ndarray, face: Face, size: int) -> np.ndarray:
    """The chip→image affine of ``face``'s FFHQ crop at ``size`` pixels."""
    return quad_transform(ffhq_quad(face_points(image, face)), size)


def resize_transform(transform: np.ndarray, size: int, new_size: int) -> np.ndarray:
    """The same square's chip→image affine at ``new_size`` pixels."""
    t = np.asarray(transform, np.float64)
    s = size / new_size
    return np.stack([t[:, 0] * s, t[:, 1] * s, t @ [0.5 * s - 0.5, 0.5 * s - 0.5, 1.0]], 1)


def _inverse(transform: np.ndarray) -> np.ndarray:
    return np.linalg.inv(np.vstack([transform, [0.0, 0.0, 1.0]]))[:2]


def _pixel_scale(transform: np.ndarray) -> float:
    """Image pixels per chip pixel."""
    return float(np.hypot(*np.asarray(transform)[:, 0]))


def align_crop(image: np.ndarray, transform: np.ndarray, size: int) -> np.ndarray:
    """The ``size``-pixel chip of ``transform`` (bilinear; Gaussian anti-aliasing of σ =
    ½·√(s² − 1) image px when ``s`` > 1 image px per chip px; black outside the photo)."""
    image = check_image(image)
    s = _pixel_scale(transform)
    y0, y1, x0, x1 = chip_footprint(transform, size, image.shape)
    if y1 <= y0 or x1 <= x0:
        return np.zeros((size, size, 3), np.uint8)
    window = image[y0:y1, x0:x1]
    if s > 1.0:
        sigma = 0.5 * np.sqrt(s * s - 1.0)
        window = cv2.GaussianBlur(window, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    shifted = np.asarray(transform, np.float64) - [[0, 0, x0], [0, 0, y0]]
    return cv2.warpAffine(np.ascontiguousarray(window), shifted, (size, size),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def region_polygon(image: np.ndarray, face: Face, transform: np.ndarray, size: int,
                   region: str = "hull68") -> np.ndarray:
    """The face region as a polygon (K, 2) in the chip's pixel coordinates."""
    if region in ("hull68", "forehead", "forehead_wide"):
        from jaxpriv.deid.blend import landmarks68

        pts = landmarks68(image, face) @ _inverse(transform)[:, :2].T + _inverse(transform)[:, 2]
        if region != "hull68":  # the chip is upright: "up" is −v
            eye_to_chin = pts[8, 1] - pts[36:48, 1].mean()
            pts[17:27, 1] -= FOREHEAD_LIFT * max(eye_to_chin, 0.0)
        if region == "forehead_wide":
            pts = pts.mean(0) + WIDE_GROWTH * (pts - pts.mean(0))
        pts = np.clip(pts, -0.5, size - 0.5)  # inside the chip
        return cv2.convexHull(pts.astype(np.float32))[:, 0].astype(np.float64)
    if region == "ellipse":
        (cx, cy), (ax, ay) = ELLIPSE
        t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], 1) * size - 0.5
    raise JaxprivError(f"--region must be one of {list(REGIONS)}, got {region!r}")


def soft_mask(polygon: np.ndarray, size: int, feather: float = FEATHER) -> np.ndarray:
    """float32 (size, size) weight: 1 well inside ``polygon`` (chip px), falling smoothly to 0
    at its edge over ``feather``·size px (eroded, then Gaussian-blurred), 0 outside it."""
    r = max(int(round(feather * size)), 1)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    inside = mask == 255
    core = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    soft = cv2.GaussianBlur(core.astype(np.float32) / 255.0, (0, 0), r / 2.0)
    return np.where(inside, np.clip(soft, 0.0, 1.0), 0.0).astype(np.float32)


def paste_back(image: np.ndarray, chip: np.ndarray, transform: np.ndarray, weight: np.ndarray,
               match_colour: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Blend ``chip`` (uint8 (S, S, 3); ``transform`` its chip→image affine) into a copy of
    ``image`` with the chip-space ``weight`` (S, S) in [0, 1], warped like the chip. With
    ``match_colour`` the chip is first shifted by the mean colour difference over the outer half
    of the soft border (0 < weight < ½; like Poisson blending, only the region's edge is read,
    not the face inside it). Returns (new image, image-space weight); pixels of weight 0 are
    unchanged."""
    image = check_image(image)
    size = chip.shape[0]
    out = image.copy()
    y0, y1, x0, x1 = chip_footprint(transform, size, image.shape)
    full = np.zeros(image.shape[:2], np.float32)
    if y1 <= y0 or x1 <= x0:
        return out, full
    shifted = np.asarray(transform, np.float64) - [[0, 0, x0], [0, 0, y0]]
    dsize = (x1 - x0, y1 - y0)
    src = cv2.warpAffine(np.asarray(chip, np.float32), shifted, dsize, flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    wgt = cv2.warpAffine(np.asarray(weight, np.float32), shifted, dsize, flags=cv2.INTER_LINEAR,
                         borderValue=0.0)
    wgt = np.clip(wgt, 0.0, 1.0)
    base = image[y0:y1, x0:x1].astype(np.float32)
    band = (wgt > 0) & (wgt < 0.5)  # the outer half of the soft border
    if match_colour and band.any():
        src = src + (base[band] - src[band]).mean(0)
    blended = base + wgt[..., None] * (src - base)
    out[y0:y1, x0:x1] = np.where(wgt[..., None] > 0, np.clip(np.rint(blended), 0, 255), base)
    full[y0:y1, x0:x1] = wgt
    return out, full

"""Licence plates under DP (paper 001, §5.3.2, Fig. 6-7, Table A1).

Pipeline for one plate: text → 2-digit codes (§5.3.2: province → 00-30 by Table A1, digits
0-9 → 00-09, letters → 10-33) → code + Lap(Δf/ε) (eq. 11-12, Δf = 1) → round → cyclic wrap into
the valid range of each position ("cyclic shifting", §5.3.2) → a new, always valid plate string →
rendered (blue background, white glyphs, Noto Sans SC from PyPI) → warped onto the plate's four
corners; only pixels inside the quadrilateral change. Privacy metric: the edit distance between
the original and the synthetic plate (§5.2.1 "Distance", threshold 3).

What ε means here (stated honestly): each character code is released by the Laplace mechanism
with sensitivity Δf = 1, i.e. ε-DP *per character code* between codes that differ by 1 in the
code order; codes k apart are only (kε)-indistinguishable, and a plate of n characters spends
nε in total (sequential composition). Rounding and wrapping are post-processing.

Two alphabets:

* ``"cn"`` (Chinese plates, as the paper): position 0 a province (codes 0-30), position 1 a
  letter (10-33), positions 2.. a digit or letter (0-33). Letters are the 24 of CCPD (no I, O).
* ``"latin"`` (e.g. the openalpr US/EU photos): digits 0-9 → 0-9, letters A-Z → 10-35; each
  position wraps within the class of its original character (digit stays digit, letter stays
  letter), so the plate keeps its format.

Annotations: CCPD file names (:func:`parse_ccpd_name`), openalpr ``X.txt`` files
(:func:`read_openalpr`), and a JSON list ``[{"image", "corners", "text"}]``
(:func:`load_plates_json`) for users with their own plate detector/OCR. Corners are always
stored top-left, top-right, bottom-right, bottom-left, as (x, y) pixels.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import cv2
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from jaxpriv.errors import JaxprivError

__all__ = [
    "CCPD_ADS",
    "CCPD_ALPHABETS",
    "CCPD_PROVINCES",
    "CN_LETTERS",
    "DIGITS",
    "LATIN_LETTERS",
    "PROVINCES",
    "Plate",
    "PlateFn",
    "PlateSource",
    "box_corners",
    "code_noise",
    "code_ranges",
    "decode_plate",
    "deidentify_plates",
    "deidentify_plates_with_texts",
    "edit_distance",
    "encode_plate",
    "font_path",
    "is_valid_plate",
    "load_plates_json",
    "parse_ccpd_name",
    "paste_plate",
    "perturb_plate",
    "plate_mask",
    "plate_scheme",
    "plate_source",
    "read_openalpr",
    "render_plate",
    "wrap_codes",
]

Scheme = Literal["cn", "latin"]

# --------------------------------------------------------------------------- alphabets

CCPD_PROVINCES = (*"皖沪津渝冀晋蒙辽吉黑苏浙京闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新警学", "O")
"""CCPD's first-character list (index in the file name); the last entry "O" = no character."""
CCPD_ALPHABETS = (*"ABCDEFGHJKLMNPQRSTUVWXYZ", "O")
"""CCPD's second-character list; "O" = no character."""
CCPD_ADS = (*"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", "O")
"""CCPD's list for characters 3..; "O" = no character."""

PROVINCES = tuple("京津冀鲁晋蒙豫辽苏吉宁皖陕鄂沪黑浙甘赣湘青渝川闽贵粤桂云琼新藏")
"""Table A1: provinces sorted by distance to Beijing; the index is the 2-digit code 00-30.
(Table A1 lists "Shanxi" twice: 04 is 山西 晋 at 407 km, 12 is 陕西 陕 at 908 km.)"""
DIGITS = string.digits
"""Digits 0-9 → codes 00-09 (§5.3.2)."""
CN_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
"""The 24 letters of Chinese plates (no I, O) → codes 10-33 (§5.3.2)."""
LATIN_LETTERS = string.ascii_uppercase
"""Letters of Latin plates → codes 10-35."""

_CN_REST = DIGITS + CN_LETTERS  # code = index, 0..33
_LATIN = DIGITS + LATIN_LETTERS  # code = index, 0..35
_SEPARATORS = " -·•."  # dropped when normalising user-given text


# --------------------------------------------------------------------------- annotations


@dataclasses.dataclass(frozen=True, eq=False)
class Plate:
    """One annotated plate: ``corners`` (4, 2) float (x, y) ordered top-left, top-right,
    bottom-right, bottom-left; ``text`` the plate string; ``box`` (left, top, right, bottom)
    when the annotation has one."""

    corners: np.ndarray
    text: str
    box: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        c = np.asarray(self.corners, np.float64)
        if c.shape != (4, 2) or not np.all(np.abs(c) < 1e6):
            raise JaxprivError(f"plate corners must be 4 (x, y) points within ±1e6 pixels, "
                               f"got {c.tolist()}")
        object.__setattr__(self, "corners", c)


def box_corners(x: float, y: float, w: float, h: float) -> np.ndarray:
    """Corners (TL, TR, BR, BL) of the box with top-left (x, y), width w, height h (pixel edges)."""
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)


def parse_ccpd_name(name: str | Path) -> Plate:
    """Decode a CCPD file name ``AREA-TILT-BOX-CORNERS-INDICES-BRIGHTNESS-BLUR.jpg``.

    BOX is ``x1&y1_x2&y2``; CORNERS are four ``x&y`` starting at the right-bottom one (RB, LB,
    LT, RT; reordered here to TL, TR, BR, BL); INDICES index :data:`CCPD_PROVINCES`,
    :data:`CCPD_ALPHABETS`, then :data:`CCPD_ADS` ("O" entries are skipped)."""
    stem = Path(name).name.rsplit(".", 1)[0]
    fields = stem.split("-")
    try:
        if len(fields) != 7:
            raise ValueError(f"{len(fields)} '-'-separated fields, need 7")
        box_pts = [tuple(int(v) for v in p.split("&")) for p in fields[2].split("_")]
        pts = [tuple(float(v) for v in p.split("&")) for p in fields[3].split("_")]
        idx = [int(v) for v in fields[4].split("_")]
        if len(box_pts) != 2 or len(pts) != 4 or len(idx) < 3:
            raise ValueError("need 2 box points, 4 corners and >= 3 character indices")
        if any(i < 0 for i in idx):
            raise IndexError("negative index")
        chars = [CCPD_PROVINCES[idx[0]], CCPD_ALPHABETS[idx[1]]]
        chars += [CCPD_ADS[i] for i in idx[2:]]
        (x1, y1), (x2, y2) = box_pts
        rb, lb, lt, rt = (tuple(q) for q in np.asarray(pts, np.float64).reshape(4, 2))
    except (ValueError, IndexError) as e:
        raise JaxprivError(f"{Path(name).name}: not a CCPD annotated file name ({e})") from None
    text = "".join(c for c in chars if c != "O")
    return Plate(np.array([lt, rt, rb, lb], np.float64), text, (x1, y1, x2, y2))


def read_openalpr(path: str | Path) -> list[tuple[str, Plate]]:
    """Read an openalpr annotation ``X.txt``: lines ``file<TAB>x<TAB>y<TAB>w<TAB>h<TAB>PLATE``.

    Returns (image file name, plate) pairs; the box's corners stand in for the plate corners."""
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            fname, x, y, w, h, text = parts
            xi, yi, wi, hi = int(x), int(y), int(w), int(h)
        except ValueError:
            raise JaxprivError(
                f"{path}:{n}: expected 'file x y w h PLATE' (tab-separated)") from None
        plate = Plate(box_corners(xi, yi, wi, hi), text.strip(), (xi, yi, xi + wi, yi + hi))
        out.append((fname, plate))
    return out


# --------------------------------------------------------------------------- code mapping


def _normalise(text: str) -> str:
    return "".join(c for c in text.upper() if c not in _SEPARATORS)


def plate_scheme(text: str) -> Scheme:
    """``"cn"`` when the plate starts with a Table A1 province, else ``"latin"``."""
    t = _normalise(text)
    return "cn" if t and t[0] in PROVINCES else "latin"


def encode_plate(text: str) -> tuple[int, ...]:
    """Plate string → 2-digit codes (§5.3.2; e.g. "京A132B3" → 00 10 01 03 02 11 03).

    Chinese: province by Table A1 (00-30), digits 00-09, letters 10-33 (no I, O). Latin:
    digits 00-09, letters 10-35. Spaces, dashes and dots are dropped; lower case is upper-cased."""
    t = _normalise(text)
    if not t:
        raise JaxprivError("empty plate text")
    if plate_scheme(t) == "cn":
        if len(t) < 2 or t[1] not in CN_LETTERS:
            raise JaxprivError(f"plate {text!r}: the second character must be a letter (no I, O)")
        bad = [c for c in t[2:] if c not in _CN_REST]
        if bad:
            raise JaxprivError(f"plate {text!r}: unsupported character(s) {bad} (0-9, A-Z w/o I O)")
        return (PROVINCES.index(t[0]), 10 + CN_LETTERS.index(t[1]),
                *(_CN_REST.index(c) for c in t[2:]))
    bad = [c for c in t if c not in _LATIN]
    if bad:
        raise JaxprivError(f"plate {text!r}: unsupported character(s) {bad} (need a Table A1 "
                           "province first, or only 0-9 and A-Z)")
    return tuple(_LATIN.index(c) for c in t)


def decode_plate(codes: Sequence[int], scheme: Scheme) -> str:
    """Inverse of :func:`encode_plate` for valid codes of ``scheme``."""
    c = [int(v) for v in codes]
    try:
        if scheme == "cn":
            if c[0] < 0 or not 10 <= c[1] <= 33 or min(c[2:], default=0) < 0:
                raise IndexError
            return PROVINCES[c[0]] + CN_LETTERS[c[1] - 10] + "".join(_CN_REST[v] for v in c[2:])
        if min(c) < 0:
            raise IndexError
        return "".join(_LATIN[v] for v in c)
    except IndexError:
        raise JaxprivError(f"codes {c} are not a valid {scheme} plate") from None


def code_ranges(text: str) -> np.ndarray:
    """Valid code interval [lo, hi] of every position, shape (n, 2) (§5.3.2 cyclic shifting).

    Chinese: [0, 30] (provinces), [10, 33] (letters), then [0, 33]. Latin: [0, 9] where the
    original character is a digit, [10, 35] where it is a letter."""
    codes = encode_plate(text)
    if plate_scheme(text) == "cn":
        return np.array([(0, len(PROVINCES) - 1), (10, 33)] + [(0, 33)] * (len(codes) - 2))
    return np.array([(0, 9) if c < 10 else (10, 35) for c in codes])


def code_noise(key: jax.Array, shape: int | tuple[int, ...], epsilon: float,
               sensitivity: float = 1.0) -> jax.Array:
    """Draws of Lap(Δf/ε) (eq. 11-12), one per character code: ``jax.random.laplace`` × Δf/ε.

    ``shape`` is the number of codes, or e.g. (draws, codes) for many synthetic plates at once."""
    if not epsilon > 0:
        raise JaxprivError(f"epsilon must be > 0, got {epsilon}")
    if not sensitivity > 0:
        raise JaxprivError(f"sensitivity must be > 0, got {sensitivity}")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return jax.random.laplace(key, shape, jnp.float32) * (sensitivity / epsilon)


def wrap_codes(values: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Round, then wrap cyclically into [lo, hi] per position: lo + (v - lo) mod (hi - lo + 1).

    ``values`` (..., n) against ``ranges`` (n, 2) from :func:`code_ranges`."""
    v = np.rint(np.asarray(values, np.float64)).astype(np.int64)
    lo, hi = ranges[:, 0], ranges[:, 1]
    return lo + np.mod(v - lo, hi - lo + 1)


def perturb_plate(text: str, key: jax.Array, epsilon: float, sensitivity: float = 1.0) -> str:
    """The DP synthetic plate of Fig. 6: codes + Lap(Δf/ε), rounded and wrapped, decoded."""
    codes = np.asarray(encode_plate(text), np.float64)
    noise = np.asarray(code_noise(key, len(codes), epsilon, sensitivity), np.float64)
    return decode_plate(wrap_codes(codes + noise, code_ranges(text)), plate_scheme(text))


def is_valid_plate(text: str, scheme: Scheme | None = None) -> bool:
    """Is ``text`` a well-formed plate of ``scheme`` (default: its own)?"""
    if scheme is None:
        scheme = plate_scheme(text)
    if scheme == "cn":
        return (len(text) >= 3 and text[0] in PROVINCES and text[1] in CN_LETTERS
                and all(c in _CN_REST for c in text[2:]))
    return len(text) >= 1 and all(c in _LATIN for c in text)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute = 1): the plate "Distance" of §5.2.1."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


# --------------------------------------------------------------------------- rendering

FONT_PACKAGE = "pylopdf_fonts_zh_cn"
FONT_FILE = "NotoSansSC-Regular.otf"
CN_BLUE = (12, 62, 170)
CN_WHITE = (250, 250, 250)
LATIN_BACKGROUND = (236, 236, 230)
LATIN_INK = (24, 24, 28)
CN_SIZE_MM = (440, 140)  # standard blue plate (GA 36): 45x90 mm glyphs, 12 mm gaps, 34 mm dot gap


def font_path() -> Path:
    """Path of Noto Sans SC (OFL-1.1) from the PyPI package ``pylopdf-fonts-zh-cn``, found via
    importlib (never a system font)."""
    try:
        path = Path(str(importlib.resources.files(FONT_PACKAGE) / FONT_FILE))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise JaxprivError("plate rendering needs the Noto Sans SC font: "
                           "pip install 'pylopdf-fonts-zh-cn>=0.1.1,<0.2'")
    return path


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path()), size)


@functools.lru_cache(maxsize=256)
def _glyph(ch: str, bold: float) -> np.ndarray:
    """Tight float alpha mask (0..1) of one character at a large size, emboldened by a stroke."""
    size = 160
    font = _font(size)
    stroke = max(0, round(bold * size))
    left, top, right, bottom = font.getbbox(ch, stroke_width=stroke)
    im = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(im).text((1 - left, 1 - top), ch, font=font, fill=255, stroke_width=stroke,
                            stroke_fill=255)
    a = np.asarray(im, np.float32) / 255.0
    ys, xs = np.nonzero(a > 0)
    return a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _put(canvas: np.ndarray, alpha: np.ndarray, color: tuple[int, int, int]) -> None:
    a = alpha[..., None]
    canvas[:] = canvas * (1 - a) + np.asarray(color, np.float32) * a


def _draw_glyph(canvas: np.ndarray, ch: str, x: float, y: float, w: float, h: float,
                color: tuple[int, int, int], bold: float) -> None:
    """Fill the cell (x, y, w, h) with the glyph: full height, width ≤ w (condensed, centred)."""
    g = _glyph(ch, bold)
    gh, gw = g.shape
    th = max(1, round(h))
    tw = max(1, min(round(w), round(gw * th / gh)))
    small = cv2.resize(g, (tw, th), interpolation=cv2.INTER_AREA)
    x0 = round(x + (w - tw) / 2)
    y0 = round(y + (h - th) / 2)
    alpha = np.zeros(canvas.shape[:2], np.float32)
    ys = slice(max(y0, 0), min(y0 + th, canvas.shape[0]))
    xs = slice(max(x0, 0), min(x0 + tw, canvas.shape[1]))
    alpha[ys, xs] = small[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    _put(canvas, alpha, color)


def _layout_cn(n: int) -> tuple[list[float], float, float]:
    """x of each glyph cell, cell width and dot centre x, in mm on the 440 mm plate."""
    width, margin, gap, dot_gap = CN_SIZE_MM[0], 15.5, 12.0, 34.0
    cw = (width - 2 * margin - (n - 2) * gap - dot_gap) / n
    xs, x = [], margin
    for i in range(n):
        xs.append(x)
        x += cw + (dot_gap if i == 1 else gap)
    return xs, cw, margin + 2 * cw + gap + dot_gap / 2


def render_plate(text: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """A synthetic plate image, uint8 (H, W, 3) RGB; ``size`` = (W, H), default 440 x 140.

    Chinese plates (the paper's rule 4, §5.3.2): blue background, white frame and glyphs, 45 x 90
    mm glyph cells with a dot after the second character. Latin plates: light background, dark
    glyphs. Glyphs are Noto Sans SC (:func:`font_path`), emboldened and condensed to the cell."""
    t = _normalise(text)
    if not t:
        raise JaxprivError("empty plate text")
    w, h = size if size is not None else CN_SIZE_MM
    if w < 8 or h < 4:
        raise JaxprivError(f"plate image too small: {w}x{h}")
    cn = plate_scheme(t) == "cn"
    scale = 4 if max(w, h) < 400 else 1  # draw large, then area-downsample: clean small plates
    W, H = w * scale, h * scale
    bg, ink = (CN_BLUE, CN_WHITE) if cn else (LATIN_BACKGROUND, LATIN_INK)
    canvas = np.empty((H, W, 3), np.float32)
    canvas[:] = bg
    # frame: a thin rounded rectangle inset from the edge
    frame = Image.new("L", (W, H), 0)
    d = ImageDraw.Draw(frame)
    inset, lw = 0.025 * H, max(1, round(0.018 * H))
    d.rounded_rectangle([inset, inset, W - 1 - inset, H - 1 - inset], radius=0.08 * H,
                        outline=255, width=lw)
    _put(canvas, np.asarray(frame, np.float32) / 255.0, ink)
    if cn:
        sx, sy = W / CN_SIZE_MM[0], H / CN_SIZE_MM[1]
        xs, cw, dot_x = _layout_cn(len(t))
        for ch, x in zip(t, xs, strict=True):
            _draw_glyph(canvas, ch, x * sx, 25 * sy, cw * sx, 90 * sy, ink, 0.035)
        dot = Image.new("L", (W, H), 0)
        r = 4.5 * min(sx, sy)
        ImageDraw.Draw(dot).ellipse([dot_x * sx - r, 70 * sy - r, dot_x * sx + r, 70 * sy + r],
                                    fill=255)
        _put(canvas, np.asarray(dot, np.float32) / 255.0, ink)
    else:
        n = len(t)
        ch_h = 0.62 * H
        gw = 0.5 * ch_h  # condensed glyph cells, tighter than the plate when the text is short
        gap = 0.15 * gw
        room = W * (1 - 2 * 0.07)
        if n * gw + (n - 1) * gap > room:
            gw = room / (n + 0.15 * (n - 1))
            gap = 0.15 * gw
        x = (W - (n * gw + (n - 1) * gap)) / 2
        for ch in t:
            _draw_glyph(canvas, ch, x, (H - ch_h) / 2, gw, ch_h, ink, 0.03)
            x += gw + gap
    out = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    if scale > 1:
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)
    return out


def _quad_size(corners: np.ndarray, limit: int = 1024) -> tuple[int, int]:
    """Width and height (pixels) of the quadrilateral: its longer opposite edges, scaled down
    to at most ``limit`` (the render is warped anyway)."""
    tl, tr, br, bl = corners
    w = max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))
    h = max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))
    s = min(1.0, limit / max(w, h, 1.0))
    return max(8, round(w * s)), max(4, round(h * s))


def plate_mask(shape: tuple[int, ...], corners: np.ndarray) -> np.ndarray:
    """Boolean (H, W) mask of the pixels inside the quadrilateral (its rasterised polygon)."""
    mask = np.zeros(shape[:2], np.uint8)
    pts = np.rint(np.asarray(corners, np.float64) * 16).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _two_tone(pixels: np.ndarray, bright_ink: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(background, ink) colours of plate pixels (N, 3).

    Ink: the mean of the 8 % brightest (``bright_ink``) or darkest pixels; ``None`` picks the
    extreme farther from the median luminance. Background: the mean colour of a luminance
    percentile band on the other side of the median (35-60 % for bright ink, 55-85 % for dark
    ink), which skips the glyphs and most frame and decoration pixels."""
    lum = pixels @ _LUMA
    order = np.argsort(lum, kind="stable")
    n = len(order)
    k = max(1, int(0.08 * n))
    med = float(lum[order[n // 2]])
    if bright_ink is None:
        bright_ink = lum[order[-k:]].mean() - med >= med - lum[order[:k]].mean()
    lo, hi = (0.35, 0.6) if bright_ink else (0.55, 0.85)
    band = order[int(lo * n) : max(int(hi * n), int(lo * n) + 1)]
    ink = pixels[order[-k:]] if bright_ink else pixels[order[:k]]
    return pixels[band].mean(0), ink.mean(0)


def _harmonize(warped: np.ndarray, region: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Match the synthetic plate to the photo (float32 in and out): its two tones are mapped to
    the original plate's background and ink colours (:func:`_two_tone`, same polarity unless the
    other gives more contrast; a subdued synthetic contrast on a featureless region), then
    blurred with the Gaussian σ (from a small set) whose sharpness (variance of the Laplacian of
    grey) is closest to the original plate's."""
    if inside.sum() < 16:
        return warped
    bg_s, ink_s = _two_tone(warped[inside])
    bright = bool((ink_s - bg_s) @ _LUMA > 0)
    bg_o, ink_o = _two_tone(region[inside], bright_ink=bright)
    if abs(float((ink_o - bg_o) @ _LUMA)) < 40:  # the photo's plate may have the other polarity
        bg_2, ink_2 = _two_tone(region[inside], bright_ink=not bright)
        if abs(float((ink_2 - bg_2) @ _LUMA)) > abs(float((ink_o - bg_o) @ _LUMA)):
            bg_o, ink_o = bg_2, ink_2
    if abs(float((ink_o - bg_o) @ _LUMA)) < 24:  # featureless region: keep a readable plate
        ink_o = np.clip(bg_o + 0.35 * (ink_s - bg_s), 0, 255)
    d = ink_s - bg_s
    t = np.clip((warped - bg_s) @ d / max(float(d @ d), 1.0), 0.0, 1.0)[..., None]
    out = np.clip(bg_o + t * (ink_o - bg_o), 0, 255).astype(np.float32)

    def sharpness(a: np.ndarray) -> float:
        lap = cv2.Laplacian(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.CV_32F)
        return float(lap[inside].var())

    target = np.log1p(sharpness(region))
    best, best_err = out, abs(np.log1p(sharpness(out)) - target)
    for sigma in (0.5, 0.8, 1.2, 1.7, 2.4):
        cand = cv2.GaussianBlur(out, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        err = abs(np.log1p(sharpness(cand)) - target)
        if err < best_err:
            best, best_err = cand, err
    return best


def paste_plate(image: np.ndarray, plate_image: np.ndarray, corners: np.ndarray,
                harmonize: bool = True) -> np.ndarray:
    """Warp ``plate_image`` onto the quadrilateral ``corners`` (TL, TR, BR, BL) and blend it in.

    ``cv2.getPerspectiveTransform`` + ``cv2.warpPerspective`` (bilinear) on the quad's bounding
    box only; with ``harmonize`` the plate takes the background/ink colours and the sharpness
    of the original plate pixels (:func:`_harmonize`). The blend weight is the warped plate's
    coverage times :func:`plate_mask`, so pixels outside the quadrilateral are returned
    unchanged (Algorithm 2, content swapping)."""
    out = image.copy()
    corners = np.asarray(corners, np.float64)
    ih, iw = image.shape[:2]
    x0 = max(int(np.floor(corners[:, 0].min())) - 1, 0)
    y0 = max(int(np.floor(corners[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(corners[:, 0].max())) + 2, iw)
    y1 = min(int(np.ceil(corners[:, 1].max())) + 2, ih)
    if x1 <= x0 or y1 <= y0:
        return out
    ph, pw = plate_image.shape[:2]
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32) - 0.5
    dst = (corners - [x0, y0]).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpPerspective(plate_image, m, size, flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    cover = cv2.warpPerspective(np.ones((ph, pw), np.float32), m, size, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = cover * plate_mask(image.shape, corners)[y0:y1, x0:x1]
    region = out[y0:y1, x0:x1].astype(np.float32)
    if harmonize:
        warped = _harmonize(warped, region, alpha > 0.5)
    a = alpha[..., None]
    blended = np.clip(np.rint(region * (1 - a) + warped * a), 0, 255)
    out[y0:y1, x0:x1] = np.where(a > 0, blended, region).astype(np.uint8)
    return out


def _render_for(corners: np.ndarray, text: str) -> np.ndarray:
    w, h = _quad_size(corners)
    if plate_scheme(text) == "cn":  # keep the standard 440:140 layout, sized to the quad
        return render_plate(text, (w, max(4, round(w * CN_SIZE_MM[1] / CN_SIZE_MM[0]))))
    return render_plate(text, (w, h))


# --------------------------------------------------------------------------- de-identification


def deidentify_plates_with_texts(
    image: np.ndarray,
    plates: Sequence[Plate],
    key: jax.Array,
    epsilon: float,
    sensitivity: float = 1.0,
) -> tuple[np.ndarray, list[str]]:
    """:func:`deidentify_plates` that also returns the synthetic plate strings (in order).

    Plate i uses ``jax.random.fold_in(key, i)``."""
    out, texts = image, []
    for i, plate in enumerate(plates):
        new = perturb_plate(plate.text, jax.random.fold_in(key, i), epsilon, sensitivity)
        out = paste_plate(out, _render_for(plate.corners, new), plate.corners)
        texts.append(new)
    return (out if plates else image.copy()), texts


def deidentify_plates(
    image: np.ndarray,
    plates: Sequence[Plate],
    key: jax.Array,
    epsilon: float,
    sensitivity: float = 1.0,
) -> np.ndarray:
    """Replace every annotated plate by a DP synthetic plate (§5.3.2, Fig. 6-7).

    ``image`` uint8 (H, W, 3) RGB; returns a new image in which only pixels inside the plates'
    quadrilaterals differ. ``epsilon`` is per character code (module docstring)."""
    return deidentify_plates_with_texts(image, plates, key, epsilon, sensitivity)[0]


# --------------------------------------------------------------------------- CLI source

PlateFn = Callable[[Path, np.ndarray, jax.Array], tuple[np.ndarray, int]]
"""``(input path, pixels, key) -> (pixels, number of plates replaced)``, for
:func:`jaxpriv.protect.protect_files`."""


def load_plates_json(path: str | Path) -> dict[Path, list[Plate]]:
    """Read ``[{"image": PATH, "corners": [[x, y] x 4] (TL, TR, BR, BL), "text": PLATE}, ...]``.

    Relative image paths are taken from the JSON file's folder, or from the working directory
    when no such file is there. Returns resolved image path → plates."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise JaxprivError(f"{path}: cannot read plates JSON ({e})") from None
    if not isinstance(entries, list):
        raise JaxprivError(f"{path}: must be a JSON list of {{image, corners, text}} objects")
    out: dict[Path, list[Plate]] = {}
    for i, e in enumerate(entries):
        try:
            img = Path(e["image"])
            plate = Plate(np.asarray(e["corners"], np.float64), str(e["text"]))
            encode_plate(plate.text)
        except (KeyError, TypeError, ValueError, JaxprivError) as err:
            raise JaxprivError(f"{path}: entry {i}: {err}") from None
        if not img.is_absolute():
            img = path.parent / img if (path.parent / img).exists() else Path.cwd() / img
        out.setdefault(img.resolve(), []).append(plate)
    return out


@dataclasses.dataclass(frozen=True)
class PlateSource:
    """A :data:`PlateFn` plus where its annotations come from: ``from_names`` when they are read
    from the file names, which then encode the plates, so outputs must not keep those names
    (:func:`jaxpriv.protect.plan_outputs` gives them neutral ones)."""

    apply: PlateFn
    from_names: bool = False

    def __call__(self, path: Path, image: np.ndarray, key: jax.Array) -> tuple[np.ndarray, int]:
        return self.apply(path, image, key)


def plate_source(spec: str, epsilon: float = 1.0, sensitivity: float = 1.0) -> PlateSource:
    """The ``--plates`` option: ``"ccpd-names"`` (each input's CCPD file name) or a JSON file
    (:func:`load_plates_json`); inputs not in the JSON get no plate change."""
    code_noise(jax.random.key(0), 1, epsilon, sensitivity)  # validate ε and Δf early
    if spec == "ccpd-names":
        def lookup(path: Path) -> list[Plate]:
            return [parse_ccpd_name(path.name)]
    else:
        table = load_plates_json(spec)

        def lookup(path: Path) -> list[Plate]:
            return table.get(Path(path).resolve(), [])

    def apply(path: Path, image: np.ndarray, key: jax.Array) -> tuple[np.ndarray, int]:
        plates = lookup(path)
        try:
            return deidentify_plates(image, plates, key, epsilon, sensitivity), len(plates)
        except JaxprivError as e:
            raise JaxprivError(f"{Path(path).name}: {e}") from None

    return PlateSource(apply, from_names=spec == "ccpd-names")

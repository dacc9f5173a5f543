"""Rendering a synthetic plate and pasting it onto a photo (paper 001 §5.3.2, Fig. 6-7).

A plate string is rendered (blue background, white glyphs for Chinese plates; Noto Sans SC from
PyPI) and warped onto the plate's four corners (TL, TR, BR, BL); only pixels inside the
quadrilateral change.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from jaxpriv.deid.plates.codes import normalise_text, plate_scheme
from jaxpriv.errors import JaxprivError

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
    t = normalise_text(text)
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


def render_for_corners(text: str, corners: np.ndarray) -> np.ndarray:
    """:func:`render_plate` of ``text`` at about the size of the quadrilateral ``corners``
    (Chinese plates keep the standard 440:140 layout)."""
    w, h = _quad_size(corners)
    if plate_scheme(text) == "cn":  # keep the standard 440:140 layout, sized to the quad
        return render_plate(text, (w, max(4, round(w * CN_SIZE_MM[1] / CN_SIZE_MM[0]))))
    return render_plate(text, (w, h))

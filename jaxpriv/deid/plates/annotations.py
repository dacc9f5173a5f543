"""Plate annotations: CCPD file names, openalpr ``X.txt`` files and a JSON list.

CCPD file names (:func:`parse_ccpd_name`), openalpr ``X.txt`` files (:func:`read_openalpr`), and
a JSON list ``[{"image", "corners", "text"}]`` (:func:`load_plates_json`) for users with their
own plate detector/OCR. Corners are always stored top-left, top-right, bottom-right,
bottom-left, as (x, y) pixels.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from jaxpriv.deid.plates.codes import encode_plate
from jaxpriv.errors import JaxprivError

CCPD_PROVINCES = (*"皖沪津渝冀晋蒙辽吉黑苏浙京闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新警学", "O")
"""CCPD's first-character list (index in the file name); the last entry "O" = no character."""
CCPD_ALPHABETS = (*"ABCDEFGHJKLMNPQRSTUVWXYZ", "O")
"""CCPD's second-character list; "O" = no character."""
CCPD_ADS = (*"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", "O")
"""CCPD's list for characters 3..; "O" = no character."""


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

"""Licence plates under DP (paper 001, §5.3.2, Fig. 6-7, Table A1).

Pipeline for one plate: text → 2-digit codes → code + Lap(Δf/ε) (eq. 11-12) → round → cyclic
wrap → a new, always valid plate string (:mod:`~jaxpriv.deid.plates.codes`, which also states
what ε means: it is *per character code*) → rendered and warped onto the plate's four corners,
only pixels inside the quadrilateral change (:mod:`~jaxpriv.deid.plates.render`). The plates
come from annotations (:mod:`~jaxpriv.deid.plates.annotations`: CCPD file names, openalpr
files, a JSON list); :mod:`~jaxpriv.deid.plates.replace` puts the pieces together for a photo
and for ``jaxpriv protect --plates``. The public names of the submodules are re-exported here.
"""

from jaxpriv.deid.plates.annotations import (
    CCPD_ADS,
    CCPD_ALPHABETS,
    CCPD_PROVINCES,
    Plate,
    box_corners,
    load_plates_json,
    parse_ccpd_name,
    read_openalpr,
)
from jaxpriv.deid.plates.codes import (
    CN_LETTERS,
    DIGITS,
    LATIN_LETTERS,
    PROVINCES,
    code_noise,
    code_ranges,
    decode_plate,
    edit_distance,
    encode_plate,
    is_valid_plate,
    perturb_plate,
    plate_scheme,
    wrap_codes,
)
from jaxpriv.deid.plates.render import font_path, paste_plate, plate_mask, render_plate
from jaxpriv.deid.plates.replace import (
    PlateFn,
    PlateSource,
    deidentify_plates,
    deidentify_plates_with_texts,
    plate_source,
)

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

"""Replacing the annotated plates of a photo by DP synthetic ones (paper 001 §5.3.2, Fig. 6-7),
and the ``--plates`` source of :func:`jaxpriv.protect.protect_files`.

Each plate: :func:`~jaxpriv.deid.plates.codes.perturb_plate` (the DP string) →
:func:`~jaxpriv.deid.plates.render.render_for_corners` →
:func:`~jaxpriv.deid.plates.render.paste_plate`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np

from jaxpriv.deid.plates.annotations import Plate, load_plates_json, parse_ccpd_name
from jaxpriv.deid.plates.codes import code_noise, perturb_plate
from jaxpriv.deid.plates.render import paste_plate, render_for_corners
from jaxpriv.errors import JaxprivError


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
        out = paste_plate(out, render_for_corners(new, plate.corners), plate.corners)
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
    quadrilaterals differ. ``epsilon`` is per character code
    (:mod:`jaxpriv.deid.plates.codes`)."""
    return deidentify_plates_with_texts(image, plates, key, epsilon, sensitivity)[0]


PlateFn = Callable[[Path, np.ndarray, jax.Array], tuple[np.ndarray, int]]
"""``(input path, pixels, key) -> (pixels, number of plates replaced)``, for
:func:`jaxpriv.protect.protect_files`."""


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

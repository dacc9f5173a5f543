"""The ``smna`` protection method (paper 000, Fig. 3 + Alg. 3): G(x) from a trained SMGG, noise
weighted by it, pasted back into the photo.

Per face: dlib-exact 150×150 chip → SMNA image 64×64 (``to_smna_image``, as in training) → G(x) →
Alg. 3 change on the chip (:func:`jaxpriv.smna.noise.chip_change`, ``noise_level`` = δ): by default
G(x) smoothed (``noise_smoothing`` σ = 1 map pixel), up-sampled bicubically to the chip as weights,
normalised there (optionally confined to the face, ``noise_region="face"``: the feathered hull of
dlib's 68 landmarks); or the first implementation's bilinearly up-sampled 64×64 change
(``noise_resolution="map" noise_smoothing=0``, its default δ was 1250) → only that change is warped
back into the photo (:func:`jaxpriv.faces.paste_chip` with ``reference``), so the photo keeps its
resolution and pixels outside the chips are unchanged. Deterministic: the key is not used. Defaults
chosen on validation identities: ``experiments/results/smna_visibility.md``.

Checkpoint format: a :mod:`jaxpriv.checkpoints` model directory (``--checkpoint DIR``), written
by :func:`jaxpriv.smna.smgg.save_generator` (``experiments/smgg.py`` with ``--config.export_dir``):

- ``DIR/params/`` — the generator's ``{"params": ..., "batch_stats": ...}`` (Flax linen names
  ``conv1``…``conv12``, ``bn2``…``bn11``; the channel counts follow from ``width``);
- ``DIR/config.json`` — ``format`` (``"jaxpriv.smgg.generator/2"``), ``noise`` (black|white: the
  maps it was trained on), ``width``, ``map_normalization``, ``image_size`` (64) and the training
  settings / data counts / last evaluation, for the record.

Default checkpoints: ``ckpt/smgg_dlib_black`` and ``ckpt/smgg_dlib_white`` of the repository
(each with a ``README.md`` saying how it was trained).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import jax
import numpy as np

from jaxpriv.checkpoints import shipped_checkpoint
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face, extract_chips, paste_chip
from jaxpriv.faces.detect import landmarks68_in_box
from jaxpriv.methods import MethodSpec, Option, ProtectFn, at_least, register_method
from jaxpriv.parallel import bucket
from jaxpriv.smna import noise as noise_lib
from jaxpriv.smna.sensitivity import to_smna_image
from jaxpriv.smna.smgg import load_generator

DEFAULT_CHECKPOINT = "ckpt/smgg_dlib_{noise}"
REGIONS = ("chip", "face")
DEFAULT_REGION = "chip"
DEFAULT_NOISE_LEVEL = 600.0  # δ: most protection at face SSIM ≥ 0.95 (smna_visibility.md)
REGION_FEATHER = 4.0  # Gaussian σ (chip px) softening the edge of the face region
TRAIN_HINT = ("train one with: python -m experiments.main --config experiments/configs/smgg.py "
              "--workdir runs/smgg_{noise} --config.noise={noise} --config.maps_path=MAPS "
              "--config.export_dir={path}")


def resolve_checkpoint(checkpoint: str, noise: str) -> Path:
    """The checkpoint directory: ``{noise}`` in the string is replaced; the default
    (:data:`DEFAULT_CHECKPOINT`) is taken relative to the repository, other relative paths
    relative to the working directory."""
    path = Path(checkpoint.format(noise=noise))
    if checkpoint == DEFAULT_CHECKPOINT:
        path = shipped_checkpoint(path.name)
    return path


@functools.lru_cache(maxsize=4)
def load_checkpoint(path: str, noise: str) -> tuple[Any, dict[str, Any]]:
    """(G's ``{"params", "batch_stats"}``, its config.json) from an SMGG checkpoint directory;
    a clear error if it is missing or was trained on the other noise colour. Cached."""
    if not (Path(path) / "config.json").is_file():
        raise JaxprivError(f"no SMGG checkpoint at {path}; "
                           + TRAIN_HINT.format(noise=noise, path=path))
    generator, meta = load_generator(path)
    if meta.get("noise") != noise:
        raise JaxprivError(f"SMGG checkpoint {path} was trained on {meta.get('noise')} maps, "
                           f"not {noise}: pass --noise {meta.get('noise')} or another checkpoint")
    return generator, meta


def face_region_mask(image: np.ndarray, face: Face, transform: np.ndarray, size: int,
                     feather: float = REGION_FEATHER) -> np.ndarray:
    """float32 (size, size) weights in [0, 1] on the chip cut with ``transform`` (chip → photo):
    the convex hull of dlib's 68 landmarks of ``face`` (jaw line and brows: the face without
    forehead and hair), blurred by a Gaussian of σ = ``feather`` chip pixels."""
    to_chip = np.linalg.inv(np.vstack([transform, [0.0, 0.0, 1.0]]))[:2]
    points = landmarks68_in_box(image, face.box) @ to_chip[:, :2].T + to_chip[:, 2]
    mask = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1.0)
    return cv2.GaussianBlur(mask, (0, 0), feather) if feather > 0 else mask


def smna(noise: str = "black", noise_level: float = DEFAULT_NOISE_LEVEL,
         checkpoint: str = DEFAULT_CHECKPOINT, noise_sign: str = "toward", noise_norm: str = "l2",
         noise_resolution: str = noise_lib.DEFAULT_RESOLUTION,
         noise_smoothing: float = noise_lib.DEFAULT_SMOOTHING,
         noise_region: str = DEFAULT_REGION) -> ProtectFn:
    """Build SMNA protection (Alg. 3) with δ = ``noise_level`` (``noise_norm`` of the change on
    the 64×64 grid, in grey levels, per channel) applied as ``noise_resolution``,
    ``noise_smoothing`` and ``noise_region`` say (see :mod:`jaxpriv.smna.noise`)."""
    if noise not in noise_lib.NOISE_COLORS:
        raise JaxprivError(f"--noise must be black or white, got {noise!r}")
    if noise_sign not in noise_lib.SIGNS:
        raise JaxprivError(f"--noise-sign must be one of {noise_lib.SIGNS}, got {noise_sign!r}")
    if noise_norm not in ("l1", "l2"):
        raise JaxprivError(f"--noise-norm must be l1 or l2, got {noise_norm!r}")
    if noise_level < 0:
        raise JaxprivError(f"--noise-level must be ≥ 0, got {noise_level}")
    if noise_resolution not in noise_lib.RESOLUTIONS:
        raise JaxprivError(f"--noise-resolution must be map or face, got {noise_resolution!r}")
    if noise_smoothing < 0:
        raise JaxprivError(f"--noise-smoothing must be ≥ 0, got {noise_smoothing}")
    if noise_region not in REGIONS:
        raise JaxprivError(f"--noise-region must be chip or face, got {noise_region!r}")
    if noise_region == "face" and noise_resolution == "map":
        raise JaxprivError("--noise-region face needs --noise-resolution face")
    generator, _ = load_checkpoint(str(resolve_checkpoint(checkpoint, noise)), noise)
    run = jax.jit(functools.partial(noise_lib.protect_chips, noise=noise, sign=noise_sign,
                                    norm=noise_norm, resolution=noise_resolution,
                                    smoothing=float(noise_smoothing)))

    def protect(image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        del key  # deterministic
        if not faces:
            return image.copy()
        chips, transforms = extract_chips(image, list(faces))
        n, m = len(chips), bucket(len(chips))
        padded = np.concatenate([chips, np.zeros((m - n, *chips.shape[1:]), np.uint8)])
        region = None
        if noise_region == "face":
            size = chips.shape[1]
            region = np.zeros((m, size, size), np.float32)
            for i, (face, transform) in enumerate(zip(faces, transforms, strict=True)):
                region[i] = face_region_mask(image, face, transform, size)
        out = np.asarray(run(generator, padded, np.float32(noise_level),
                             image64=to_smna_image(padded), region=region))[:n]
        result = image
        for chip, edited, transform in zip(chips, out, transforms, strict=True):
            result = paste_chip(result, edited, transform, reference=chip)
        return result

    return protect


register_method(MethodSpec(
    "smna", "SMNA: sensitivity-map weighted noise from a trained SMGG generator (paper 000)", smna,
    (Option("noise", str, "black", "SMNA noise colour (which SMGG generator)",
            choices=("black", "white")),
     Option("noise_level", float, DEFAULT_NOISE_LEVEL,
            "SMNA δ: norm (--noise-norm) of the 64×64 change, in grey levels",
            check=at_least(0)),
     Option("checkpoint", str, DEFAULT_CHECKPOINT,
            "model checkpoint directory ({noise} is replaced; default: the shipped one)"),
     Option("noise_sign", str, "toward", "SMNA sign: toward the noise colour (works), literal "
            "Alg. 3, or away (ablations)", choices=noise_lib.SIGNS),
     Option("noise_norm", str, "l2", "SMNA |NoiseMap| of Alg. 3: l2 (RMS change δ/64) or l1 "
            "(mean change δ/4096)",
            choices=("l1", "l2")),
     Option("noise_resolution", str, noise_lib.DEFAULT_RESOLUTION,
            "SMNA: change computed at the face chip's resolution from bicubic map weights "
            "(face) or at 64×64, bilinearly up-sampled (map: the first implementation)",
            choices=noise_lib.RESOLUTIONS),
     Option("noise_smoothing", float, noise_lib.DEFAULT_SMOOTHING,
            "SMNA: Gaussian σ (64-map pixels) smoothing G(x) before Alg. 3", check=at_least(0)),
     Option("noise_region", str, DEFAULT_REGION, "SMNA: change confined to the face (hull of the "
            "landmarks) or spread over the whole chip", choices=REGIONS))))

"""The ``smna`` protection method (paper 000, Fig. 3 + Alg. 3): G(x) from a trained SMGG, noise
weighted by it, pasted back into the photo.

Per face: dlib-exact 150×150 chip → SMNA image 64×64 (``to_smna_image``, as in training) →
G(x) → Alg. 3 change at 64×64 (:func:`jaxpriv.smna.noise.noise_delta`, ``noise_level`` = δ) →
bilinear up-sampling to the chip → only that change is warped back into the photo
(:func:`jaxpriv.faces.paste_chip` with ``reference``), so the photo keeps its resolution and
pixels outside the chips are unchanged. Deterministic: the key is not used.

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

import jax
import numpy as np

from jaxpriv.checkpoints import shipped_checkpoint
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face, extract_chips, paste_chip
from jaxpriv.methods import MethodSpec, Option, ProtectFn, at_least, register_method
from jaxpriv.parallel import bucket
from jaxpriv.smna import noise as noise_lib
from jaxpriv.smna.sensitivity import to_smna_image
from jaxpriv.smna.smgg import load_generator

DEFAULT_CHECKPOINT = "ckpt/smgg_dlib_{noise}"
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


def smna(noise: str = "black", noise_level: float = 1250.0, checkpoint: str = DEFAULT_CHECKPOINT,
         noise_sign: str = "toward", noise_norm: str = "l2") -> ProtectFn:
    """Build SMNA protection (Alg. 3) with δ = ``noise_level`` (``noise_norm`` of the 64×64 change
    in grey levels, per channel; see :mod:`jaxpriv.smna.noise` for the reading and units)."""
    if noise not in noise_lib.NOISE_COLORS:
        raise JaxprivError(f"--noise must be black or white, got {noise!r}")
    if noise_sign not in noise_lib.SIGNS:
        raise JaxprivError(f"--noise-sign must be one of {noise_lib.SIGNS}, got {noise_sign!r}")
    if noise_norm not in ("l1", "l2"):
        raise JaxprivError(f"--noise-norm must be l1 or l2, got {noise_norm!r}")
    if noise_level < 0:
        raise JaxprivError(f"--noise-level must be ≥ 0, got {noise_level}")
    generator, _ = load_checkpoint(str(resolve_checkpoint(checkpoint, noise)), noise)
    run = jax.jit(functools.partial(noise_lib.protect_chips, noise=noise, sign=noise_sign,
                                    norm=noise_norm))

    def protect(image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        del key  # deterministic
        if not faces:
            return image.copy()
        chips, transforms = extract_chips(image, list(faces))
        n, m = len(chips), bucket(len(chips))
        padded = np.concatenate([chips, np.zeros((m - n, *chips.shape[1:]), np.uint8)])
        out = np.asarray(run(generator, padded, np.float32(noise_level),
                             image64=to_smna_image(padded)))[:n]
        result = image
        for chip, edited, transform in zip(chips, out, transforms, strict=True):
            result = paste_chip(result, edited, transform, reference=chip)
        return result

    return protect


register_method(MethodSpec(
    "smna", "SMNA: sensitivity-map weighted noise from a trained SMGG generator (paper 000)", smna,
    (Option("noise", str, "black", "SMNA noise colour (which SMGG generator)",
            choices=("black", "white")),
     Option("noise_level", float, 1250.0,
            "SMNA δ: norm (--noise-norm) of the 64×64 change, in grey levels",
            check=at_least(0)),
     Option("checkpoint", str, DEFAULT_CHECKPOINT,
            "model checkpoint directory ({noise} is replaced; default: the shipped one)"),
     Option("noise_sign", str, "toward", "SMNA sign: toward the noise colour (works), literal "
            "Alg. 3, or away (ablations)", choices=noise_lib.SIGNS),
     Option("noise_norm", str, "l2", "SMNA |NoiseMap| of Alg. 3: l2 (RMS change δ/64) or l1 "
            "(mean change δ/4096)",
            choices=("l1", "l2")))))

"""The trained mask model (template network + perturbation generator): load, save, and the
per-face pad M ⊙ P of one chip.

A model directory is a :func:`jaxpriv.checkpoints.save_model` directory: ``params/`` =
{"template": …, "generator": …} and ``config.json`` (the template settings and how it was
trained). Its *fingerprint* (SHA-256 of the parameters) goes into every key file, so a
key is never opened with another model.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv import checkpoints
from jaxpriv.errors import JaxprivError
from jaxpriv.masktpl.perturb import GENERATOR, MAX_BITS, Z_DIM, bit_logits_at
from jaxpriv.masktpl.template import NET_SIZE, keyed_template, template_scores, to_net_input

CHIP_SIZE = 150  # dlib chips: the face geometry the pad lives in
MODEL_ENV = "JAXPRIV_MASK_MODEL"
DEFAULT_MODEL_NAME = "mask_perturb_dlib"  # shipped in ckpt/
CHECKPOINT_FORMAT = "jaxpriv.masktpl.model/1"


@dataclasses.dataclass(frozen=True)
class TemplateSettings:
    """How a template is cut from the predicted map: keep ``fraction`` of the chip's pixels after
    a keyed shift of up to ``offset`` px and keyed jitter of amplitude ``jitter``."""

    fraction: float = 0.4
    offset: int = 4
    jitter: float = 0.15


@dataclasses.dataclass(frozen=True, eq=False)
class MaskModel:
    """Parameters of both networks, the template settings and free-form training info."""

    template_params: Any
    generator_params: Any
    settings: TemplateSettings = TemplateSettings()
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 (hex, first 16 chars) of all parameters and the template settings."""
        h = hashlib.sha256(repr(dataclasses.astuple(self.settings)).encode())
        for tree in (self.template_params, self.generator_params):
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
                h.update(jax.tree_util.keystr(path).encode())
                h.update(np.ascontiguousarray(np.asarray(leaf, np.float32)).tobytes())
        return h.hexdigest()[:16]


def face_keys(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(template key, generator-noise key) of one face's key."""
    return jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)


@functools.partial(jax.jit, static_argnames=("fraction", "offset", "jitter"))
def _pad_core(tparams: Any, gparams: Any, chip_u8: jax.Array, key: jax.Array, k: jax.Array,
              fraction: float, offset: int, jitter: float) -> tuple[jax.Array, jax.Array]:
    x01 = chip_u8[None].astype(jnp.float32) / 255.0
    k_tpl, k_z = face_keys(key)
    mask = keyed_template(template_scores(tparams, x01)[0], k_tpl, fraction, offset, jitter)
    m64 = jax.image.resize(mask.astype(jnp.float32), (NET_SIZE, NET_SIZE), "linear",
                           antialias=True)
    z = jax.random.normal(k_z, (1, Z_DIM))
    logits = GENERATOR.apply({"params": gparams}, to_net_input(x01), m64[None], z,
                             jnp.full((1,), k / MAX_BITS, jnp.float32))  # one compile for every k
    bits = bit_logits_at(logits, chip_u8.shape[0])[0] > 0  # (S, S, 3, MAX_BITS)
    weights = jnp.where(jnp.arange(MAX_BITS) < k, 2 ** jnp.arange(MAX_BITS), 0)
    pad = jnp.sum(bits.astype(jnp.int32) * weights, axis=-1) * mask[..., None]
    return pad.astype(jnp.uint8), mask


def chip_pad(model: MaskModel, chip_high: np.ndarray, key: jax.Array,
             k: int) -> tuple[np.ndarray, np.ndarray]:
    """The pad M ⊙ P of one face: uint8 ``(S, S, 3)`` with values < 2^k, and the template M
    (bool ``(S, S)``). ``chip_high`` is the uint8 chip cut from the image's high bits
    (x & ~(2^k − 1)); ``key`` the face's ``jax.random`` key. Deterministic."""
    if not 1 <= k <= MAX_BITS:
        raise JaxprivError(f"bits k must be 1..{MAX_BITS}, got {k}")
    s = model.settings
    pad, mask = _pad_core(model.template_params, model.generator_params,
                          jnp.asarray(chip_high, jnp.uint8), key, jnp.int32(k),
                          float(s.fraction), int(s.offset), float(s.jitter))
    return np.asarray(pad), np.asarray(mask)


def save_model(directory: str | os.PathLike[str], model: MaskModel) -> Path:
    """Write ``model`` as a model directory (:func:`jaxpriv.checkpoints.save_model`)."""
    config = {"format": CHECKPOINT_FORMAT, "settings": dataclasses.asdict(model.settings),
              "info": model.info, "fingerprint": model.fingerprint}
    params = {"template": model.template_params, "generator": model.generator_params}
    return checkpoints.save_model(directory, params, config)


def default_model_dir() -> Path:
    """``$JAXPRIV_MASK_MODEL`` or the shipped ``ckpt/mask_perturb_dlib``."""
    env = os.environ.get(MODEL_ENV)
    return Path(env) if env else checkpoints.shipped_checkpoint(DEFAULT_MODEL_NAME)


@functools.lru_cache(maxsize=4)
def _load(directory: str) -> MaskModel:
    path = Path(directory)
    if not path.is_dir():
        raise JaxprivError(f"mask model not found at {path} (set {MODEL_ENV} to its folder)")
    if not (path / checkpoints.CONFIG_FILE).is_file():
        raise JaxprivError(f"{path}: no mask model inside (needs config.json and params/)")
    params, config = checkpoints.load_model(path, CHECKPOINT_FORMAT)
    model = MaskModel(params["template"], params["generator"],
                      TemplateSettings(**config["settings"]), config.get("info", {}))
    if config.get("fingerprint") not in (None, model.fingerprint):
        raise JaxprivError(f"{path}: checkpoint does not match its recorded fingerprint")
    return model


def load_model(directory: str | os.PathLike[str] | None = None) -> MaskModel:
    """Load (cached) the mask model from ``directory`` (default :func:`default_model_dir`)."""
    return _load(str(Path(directory or default_model_dir()).resolve()))

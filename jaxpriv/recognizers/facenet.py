"""FaceNet (InceptionResnetV1, 512-d embeddings) in Flax, converted from facenet-pytorch weights.

The architecture matches facenet-pytorch's ``InceptionResnetV1`` in eval mode (NHWC here,
BatchNorm with running statistics and eps=1e-3, dropout off). facenet-pytorch downloads its
weights at run time and does not ship them, so the user supplies the ``.pt`` state dict:
``load_recognizer("facenet", weights="/path/to/20180402-114759-vggface2.pt")``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

from jaxpriv.errors import JaxprivError
from jaxpriv.recognizers.base import Recognizer, register

INPUT_SIZE = 160
EMBED_DIM = 512
# Euclidean distance between L2-normalised embeddings below which two faces are called the same
# person. 1.1 is the usual operating point for these FaceNet models (best-accuracy LFW
# thresholds for the VGGFace2/CASIA models lie around 1.1-1.2); pass ``threshold=`` to change it.
DEFAULT_THRESHOLD = 1.1

_WEIGHTS_HELP = (
    "facenet-pytorch does not ship its recognition weights: on a machine with network download "
    "20180402-114759-vggface2.pt (or 20180408-102900-casia-webface.pt) from the facenet-pytorch "
    "GitHub releases (https://github.com/timesler/facenet-pytorch/releases) and pass it with "
    'load_recognizer("facenet", weights="/path/to/20180402-114759-vggface2.pt") '
    "or the CLI option --recognizer facenet --weights PATH"
)


class BasicConv(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3, running stats) -> ReLU."""

    features: int
    kernel: tuple[int, int]
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ph, pw = self.padding
        x = nn.Conv(
            self.features,
            self.kernel,
            strides=(self.stride, self.stride),
            padding=((ph, ph), (pw, pw)),
            use_bias=False,
            name="conv",
        )(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
        return nn.relu(x)


def _max_pool(x: jax.Array) -> jax.Array:
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class Block35(nn.Module):
    """Inception-ResNet-A block (35x35 grid in the original; 17x17 at 160 px input)."""

    scale: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b0 = BasicConv(32, (1, 1), name="branch0")(x)
        b1 = BasicConv(32, (1, 1), name="branch1_0")(x)
        b1 = BasicConv(32, (3, 3), padding=(1, 1), name="branch1_1")(b1)
        b2 = BasicConv(32, (1, 1), name="branch2_0")(x)
        b2 = BasicConv(32, (3, 3), padding=(1, 1), name="branch2_1")(b2)
        b2 = BasicConv(32, (3, 3), padding=(1, 1), name="branch2_2")(b2)
        out = nn.Conv(x.shape[-1], (1, 1), name="conv2d")(jnp.concatenate([b0, b1, b2], -1))
        return nn.relu(out * self.scale + x)


class Block17(nn.Module):
    """Inception-ResNet-B block."""

    scale: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b0 = BasicConv(128, (1, 1), name="branch0")(x)
        b1 = BasicConv(128, (1, 1), name="branch1_0")(x)
        b1 = BasicConv(128, (1, 7), padding=(0, 3), name="branch1_1")(b1)
        b1 = BasicConv(128, (7, 1), padding=(3, 0), name="branch1_2")(b1)
        out = nn.Conv(x.shape[-1], (1, 1), name="conv2d")(jnp.concatenate([b0, b1], -1))
        return nn.relu(out * self.scale + x)


class Block8(nn.Module):
    """Inception-ResNet-C block; the last one has no ReLU."""

    scale: float
    relu: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b0 = BasicConv(192, (1, 1), name="branch0")(x)
        b1 = BasicConv(192, (1, 1), name="branch1_0")(x)
        b1 = BasicConv(192, (1, 3), padding=(0, 1), name="branch1_1")(b1)
        b1 = BasicConv(192, (3, 1), padding=(1, 0), name="branch1_2")(b1)
        out = nn.Conv(x.shape[-1], (1, 1), name="conv2d")(jnp.concatenate([b0, b1], -1))
        out = out * self.scale + x
        return nn.relu(out) if self.relu else out


class Mixed6a(nn.Module):
    """Reduction-A block."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b0 = BasicConv(384, (3, 3), stride=2, name="branch0")(x)
        b1 = BasicConv(192, (1, 1), name="branch1_0")(x)
        b1 = BasicConv(192, (3, 3), padding=(1, 1), name="branch1_1")(b1)
        b1 = BasicConv(256, (3, 3), stride=2, name="branch1_2")(b1)
        return jnp.concatenate([b0, b1, _max_pool(x)], -1)


class Mixed7a(nn.Module):
    """Reduction-B block."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b0 = BasicConv(256, (1, 1), name="branch0_0")(x)
        b0 = BasicConv(384, (3, 3), stride=2, name="branch0_1")(b0)
        b1 = BasicConv(256, (1, 1), name="branch1_0")(x)
        b1 = BasicConv(256, (3, 3), stride=2, name="branch1_1")(b1)
        b2 = BasicConv(256, (1, 1), name="branch2_0")(x)
        b2 = BasicConv(256, (3, 3), padding=(1, 1), name="branch2_1")(b2)
        b2 = BasicConv(256, (3, 3), stride=2, name="branch2_2")(b2)
        return jnp.concatenate([b0, b1, b2, _max_pool(x)], -1)


class InceptionResnetV1(nn.Module):
    """InceptionResnetV1 on standardised NHWC input; returns (N, 512) embeddings.

    Submodule names mirror facenet-pytorch's state-dict keys with ``.<index>`` written ``_<index>``.
    With ``normalize=False`` it returns the ``last_bn`` output before L2 normalisation.
    """

    normalize: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = BasicConv(32, (3, 3), stride=2, name="conv2d_1a")(x)
        x = BasicConv(32, (3, 3), name="conv2d_2a")(x)
        x = BasicConv(64, (3, 3), padding=(1, 1), name="conv2d_2b")(x)
        x = _max_pool(x)
        x = BasicConv(80, (1, 1), name="conv2d_3b")(x)
        x = BasicConv(192, (3, 3), name="conv2d_4a")(x)
        x = BasicConv(256, (3, 3), stride=2, name="conv2d_4b")(x)
        for i in range(5):
            x = Block35(0.17, name=f"repeat_1_{i}")(x)
        x = Mixed6a(name="mixed_6a")(x)
        for i in range(10):
            x = Block17(0.10, name=f"repeat_2_{i}")(x)
        x = Mixed7a(name="mixed_7a")(x)
        for i in range(5):
            x = Block8(0.20, name=f"repeat_3_{i}")(x)
        x = Block8(1.0, relu=False, name="block8")(x)
        x = jnp.mean(x, axis=(1, 2))
        x = nn.Dense(EMBED_DIM, use_bias=False, name="last_linear")(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="last_bn")(x)
        if self.normalize:
            # Same as torch.nn.functional.normalize(x, p=2, dim=1, eps=1e-12).
            x = x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
        return x


_MODEL = InceptionResnetV1()
_MODEL_RAW = InceptionResnetV1(normalize=False)


def standardize(x01: jax.Array) -> jax.Array:
    """facenet-pytorch's ``fixed_image_standardization`` for pixels in [0, 1]."""
    return (x01 * 255.0 - 127.5) / 128.0


def facenet_apply(params: Any, x01: jax.Array, normalize: bool = True) -> jax.Array:
    """Embed float32 ``(N, 160, 160, 3)`` RGB in [0, 1]; unit-norm unless ``normalize=False``."""
    model = _MODEL if normalize else _MODEL_RAW
    return model.apply(params, standardize(x01))


def _expected_shapes() -> dict[tuple[str, ...], tuple[int, ...]]:
    dummy = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
    shapes = jax.eval_shape(_MODEL.init, jax.random.PRNGKey(0), dummy)
    return {k: tuple(v.shape) for k, v in flatten_dict(shapes).items()}


def _flax_path(key: str, value: np.ndarray) -> tuple[tuple[str, ...], np.ndarray] | None:
    """Map one torch state-dict entry to (flax path, array), or None for entries we skip."""
    *mods, leaf = key.split(".")
    names: list[str] = []
    for m in mods:
        if m.isdigit() and names:
            names[-1] = f"{names[-1]}_{m}"
        else:
            names.append(m)
    if leaf == "num_batches_tracked":
        return None
    if leaf == "running_mean":
        return ("batch_stats", *names, "mean"), value
    if leaf == "running_var":
        return ("batch_stats", *names, "var"), value
    if leaf == "bias":
        return ("params", *names, "bias"), value
    if leaf == "weight":
        if value.ndim == 4:  # conv OIHW -> HWIO
            return ("params", *names, "kernel"), value.transpose(2, 3, 1, 0)
        if value.ndim == 2:  # linear (out, in) -> (in, out)
            return ("params", *names, "kernel"), value.T
        return ("params", *names, "scale"), value  # BatchNorm gamma
    raise JaxprivError(f"unexpected key {key!r} in facenet state dict")


def params_from_torch_state_dict(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a facenet-pytorch ``InceptionResnetV1`` state dict to Flax variables.

    Values may be numpy arrays or CPU torch tensors. ``logits.*`` (classifier head) is ignored.
    Returns ``{"params": ..., "batch_stats": ...}`` for :func:`facenet_apply`."""
    if not isinstance(state_dict, Mapping):
        raise JaxprivError(f"facenet weights must be a state dict, got {type(state_dict).__name__}")
    flat: dict[tuple[str, ...], np.ndarray] = {}
    for key, value in state_dict.items():
        if not isinstance(key, str) or key.startswith("logits."):
            continue
        mapped = _flax_path(key, np.asarray(value, dtype=np.float32))
        if mapped is not None:
            flat[mapped[0]] = mapped[1]
    expected = _expected_shapes()
    missing = sorted(".".join(k) for k in expected.keys() - flat.keys())
    extra = sorted(".".join(k) for k in flat.keys() - expected.keys())
    if missing or extra:
        raise JaxprivError(
            "not a facenet-pytorch InceptionResnetV1 state dict: "
            f"{len(missing)} missing entries (e.g. {missing[:3]}), "
            f"{len(extra)} unexpected (e.g. {extra[:3]})"
        )
    for k, shape in expected.items():
        if flat[k].shape != shape:
            raise JaxprivError(
                f"facenet state dict entry {'.'.join(k)} has shape {flat[k].shape}, "
                f"expected {shape}"
            )
    return unflatten_dict({k: jnp.asarray(v) for k, v in flat.items()})


def load_facenet_weights(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a facenet-pytorch ``.pt`` state dict (needs torch) and convert it to Flax variables."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise JaxprivError(f"facenet weights file not found: {path}. {_WEIGHTS_HELP}")
    try:
        import torch
    except ImportError as e:
        raise JaxprivError(
            "reading facenet .pt weights needs PyTorch (CPU is enough): pip install torch"
        ) from e
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise JaxprivError(f"cannot read facenet weights {path}: {msg}") from e
    if isinstance(state, Mapping):
        state = {
            k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v
            for k, v in state.items()
        }
    return params_from_torch_state_dict(state)


def _apply(params: Any, x: jax.Array) -> jax.Array:
    return facenet_apply(params, x)


@register("facenet")
def facenet(
    weights: str | os.PathLike[str] | None = None, threshold: float = DEFAULT_THRESHOLD
) -> Recognizer:
    """FaceNet InceptionResnetV1 (160 px chips, 512-d unit embeddings) from a facenet-pytorch
    ``.pt`` state dict; ``threshold`` is the same-person Euclidean distance (default 1.1)."""
    if weights is None:
        raise JaxprivError(_WEIGHTS_HELP)
    params = load_facenet_weights(weights)
    return Recognizer(
        name="facenet",
        input_size=INPUT_SIZE,
        threshold=float(threshold),
        params=params,
        apply=_apply,
    )

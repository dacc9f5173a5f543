"""FaceNet (InceptionResnetV1) in Flax vs facenet-pytorch, plus weight loading errors."""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from jaxpriv.errors import JaxprivError
from jaxpriv.recognizers import facenet as fn
from jaxpriv.recognizers.base import load_recognizer


def _torch_model_class():
    """facenet-pytorch's InceptionResnetV1, without its package __init__ (needs torchvision)."""
    torch = pytest.importorskip("torch", reason="parity test needs torch (CPU)")
    try:
        from facenet_pytorch import InceptionResnetV1

        return torch, InceptionResnetV1
    except ImportError:
        pass
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("parity test needs facenet-pytorch==2.6.0 (pip install --no-deps)")
    # Stand-in parent package so the module's relative import (.utils.download) resolves
    # without running facenet_pytorch/__init__.py.
    saved = {k: v for k, v in sys.modules.items() if k.startswith("facenet_pytorch")}
    pkg = types.ModuleType("facenet_pytorch")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["facenet_pytorch"] = pkg
    try:
        mod = importlib.import_module("facenet_pytorch.models.inception_resnet_v1")
    finally:
        for k in [k for k in sys.modules if k.startswith("facenet_pytorch")]:
            del sys.modules[k]
        sys.modules.update(saved)
    return torch, mod.InceptionResnetV1


@pytest.fixture(scope="module")
def torch_model():
    torch, cls = _torch_model_class()
    torch.manual_seed(0)
    model = cls(pretrained=None, classify=False).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            # torch's default init shrinks activations layer by layer, so the residual branches
            # barely matter; He-like scaling keeps every block visible in the output.
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.mul_(math.sqrt(6.0))
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                n = m.num_features
                m.weight.copy_(1.0 + 0.2 * (torch.rand(n, generator=gen) - 0.5))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
    return torch, model


def test_parity_with_facenet_pytorch(torch_model) -> None:
    torch, model = torch_model
    x01 = np.random.default_rng(0).random((2, 160, 160, 3), dtype=np.float32)
    xt = torch.from_numpy(x01.transpose(0, 3, 1, 2).copy())
    xt = (xt * 255.0 - 127.5) / 128.0  # fixed_image_standardization
    pre: dict[str, np.ndarray] = {}
    hook = model.last_bn.register_forward_hook(
        lambda _m, _i, out: pre.__setitem__("last_bn", out.detach().numpy())
    )
    with torch.no_grad():
        want = model(xt).numpy()
    hook.remove()

    params = fn.params_from_torch_state_dict(model.state_dict())
    got = np.asarray(fn.facenet_apply(params, x01))
    got_pre = np.asarray(fn.facenet_apply(params, x01, normalize=False))

    assert got.shape == want.shape == (2, 512)
    scale = np.abs(pre["last_bn"]).max()
    np.testing.assert_allclose(got_pre, pre["last_bn"], atol=1e-4 * max(1.0, scale), rtol=0)
    diff = float(np.abs(got - want).max())
    print(f"facenet max |jax - torch| = {diff:.3g} (pre-norm scale {scale:.3g})")
    assert diff <= 1e-4
    # The two images really differ, so this is not a degenerate constant network.
    assert np.linalg.norm(want[0] - want[1]) > 1e-3


def test_missing_weights_message() -> None:
    with pytest.raises(JaxprivError) as info:
        load_recognizer("facenet")
    msg = str(info.value)
    assert "\n" not in msg
    assert 'weights="' in msg and "--weights" in msg and "vggface2.pt" in msg


def test_bad_weight_files(tmp_path: Path) -> None:
    with pytest.raises(JaxprivError, match="not found"):
        load_recognizer("facenet", weights=str(tmp_path / "nope.pt"))
    with pytest.raises(JaxprivError, match="state dict"):
        fn.params_from_torch_state_dict({"conv2d_1a.conv.weight": np.zeros((32, 3, 3, 3))})
    pytest.importorskip("torch", reason="reading .pt files needs torch")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(JaxprivError, match="cannot read"):
        load_recognizer("facenet", weights=str(junk))


def test_load_from_pt_and_embed(torch_model, tmp_path: Path) -> None:
    torch, model = torch_model
    path = tmp_path / "facenet-random.pt"
    state = dict(model.state_dict())
    state["logits.weight"] = torch.zeros(7, 512)  # classifier head is ignored
    state["logits.bias"] = torch.zeros(7)
    torch.save(state, path)

    rec = load_recognizer("facenet", weights=str(path))
    assert rec.name == "facenet" and rec.input_size == 160 and rec.threshold == 1.1
    chips = np.random.default_rng(1).integers(0, 256, (2, 160, 160, 3), dtype=np.uint8)
    emb = rec.embed(chips)
    assert emb.dtype == np.float32 and emb.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)

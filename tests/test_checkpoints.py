"""One model-directory format: save_model / load_model round trip, atomic replace, clear errors,
and every shipped model loads through the one function."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from jaxpriv import checkpoints
from jaxpriv.errors import JaxprivError

TREE = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": {"c": np.float32([0.1, -2.5])}}


def test_round_trip_is_exact(tmp_path):
    out = checkpoints.save_model(tmp_path / "m", TREE, {"format": "test.model/1", "k": 3})
    tree, config = checkpoints.load_model(out, "test.model/1")
    assert config == {"format": "test.model/1", "k": 3}
    assert jax.tree_util.tree_structure(tree) == jax.tree_util.tree_structure(TREE)
    for got, want in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(TREE),
                         strict=True):
        assert got.dtype == want.dtype and np.array_equal(np.asarray(got), want)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "params"]


def test_save_replaces_atomically_and_leaves_no_temp(tmp_path):
    target = tmp_path / "m"
    checkpoints.save_model(target, TREE, {"format": "test.model/1", "v": 1})
    checkpoints.save_model(target, {"a": np.ones(4, np.float32)}, {"format": "test.model/1",
                                                                    "v": 2})
    tree, config = checkpoints.load_model(target)
    assert config["v"] == 2 and list(tree) == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    with pytest.raises(TypeError, match="must be arrays"):  # unsavable: the old model stays whole
        checkpoints.save_model(target, {"a": object()}, {"format": "test.model/1", "v": 3})
    assert checkpoints.load_model(target)[1]["v"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_unversioned_format_refused(tmp_path):
    with pytest.raises(ValueError, match="versioned 'format'"):
        checkpoints.save_model(tmp_path / "m", TREE, {"format": "nameonly"})


def test_clear_errors(tmp_path):
    with pytest.raises(JaxprivError, match="not a jaxpriv model directory"):
        checkpoints.load_model(tmp_path / "missing")
    out = checkpoints.save_model(tmp_path / "m", TREE, {"format": "test.model/1"})
    with pytest.raises(JaxprivError, match="format 'test.model/1', expected 'other/1'"):
        checkpoints.load_model(out, "other/1")

    def wrong(_config):
        return {"a": jax.ShapeDtypeStruct((5,), np.float32),
                "b": {"c": jax.ShapeDtypeStruct((2,), np.float32)}}

    with pytest.raises(JaxprivError, match="cannot read the model parameters"):
        checkpoints.load_model(out, abstract=wrong)
    (out / "config.json").write_text("{not json")
    with pytest.raises(JaxprivError, match="unreadable"):
        checkpoints.load_model(out)


@pytest.mark.parametrize("name,fmt", [
    ("smgg_dlib_black", "jaxpriv.smgg.generator/2"),
    ("smgg_dlib_white", "jaxpriv.smgg.generator/2"),
    ("face_gan_64", "jaxpriv.deid.generator/1"),
    ("mask_perturb_dlib", "jaxpriv.masktpl.model/1"),
])
def test_shipped_models_load_through_one_function(name, fmt):
    path = checkpoints.shipped_checkpoint(name)
    tree, config = checkpoints.load_model(path, fmt)
    assert config["format"] == fmt
    assert json.loads((path / "config.json").read_text()) == config
    assert len(jax.tree_util.tree_leaves(tree)) > 10


def test_model_loaders_use_the_one_format():
    from jaxpriv.deid.generator import load_generator as load_gan
    from jaxpriv.masktpl.model import load_model as load_mask
    from jaxpriv.smna.smgg import load_generator as load_smgg

    _, meta = load_smgg(checkpoints.shipped_checkpoint("smgg_dlib_black"))
    assert meta["noise"] == "black"
    gan = load_gan(checkpoints.shipped_checkpoint("face_gan_64"))
    assert gan.w_avg.shape == (gan.config.w_dim,)
    mask = load_mask(checkpoints.shipped_checkpoint("mask_perturb_dlib"))
    recorded = json.loads((checkpoints.shipped_checkpoint("mask_perturb_dlib")
                           / "config.json").read_text())["fingerprint"]
    assert mask.fingerprint == recorded

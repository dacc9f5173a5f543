"""Experiment settings and outputs: a bad setting is one line (``jaxpriv: error: …``, exit 2)
from ``python -m experiments.main``, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jaxpriv.errors import JaxprivError

from .conftest import ROOT


@pytest.mark.parametrize("runs", [(), ((3,),), ((9, "sface"),), ((3, ""),)])
def test_mask_eval_refuses_empty_or_malformed_runs(runs: object) -> None:
    from experiments import mask_eval
    from experiments.configs.mask_eval import get_config

    config = get_config()
    config.runs = runs
    config.figure = ""
    with pytest.raises(JaxprivError, match="config.runs"):
        mask_eval.run(config, "unused")


def test_main_prints_a_bad_setting_as_one_line(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "experiments.main", "--config",
                          "experiments/configs/mask_eval.py", "--workdir", str(tmp_path),
                          "--config.runs=()"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.strip().splitlines() == [
        "jaxpriv: error: config.runs must list (k, superposition) pairs, got (); "
        "e.g. --config.runs=\"((3, 'dlib_resnet,sface'),)\""]


@pytest.mark.parametrize("regions", [("nosuch",), ("forehead",)])
def test_deid_msg_refuses_unknown_or_repeated_regions(tmp_path, regions: tuple) -> None:
    """An unknown region, or the run's own region listed again, is a one-line error before any
    model loads (``msg_region`` is forehead by default)."""
    from experiments import deid_msg
    from experiments.configs.deid_eval import get_config

    config = get_config()
    config.msg_regions = regions
    with pytest.raises(JaxprivError, match="msg_regions"):
        deid_msg.run(config, tmp_path)

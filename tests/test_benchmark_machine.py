"""Every benchmark record's machine comes from :mod:`jaxpriv.machine`, in the shape of its
committed results file."""

from __future__ import annotations

import importlib
import json

import pytest

from jaxpriv.machine import machine_facts

from .conftest import ROOT

# benchmark -> (committed record, machine keys its main() adds after the run)
RECORDS = {"peers": ("baselines.peers.json", {"loadavg_end"}),
           "recognizers": ("recognizers_bench.json", {"uptime_end", "loadavg_end", "repeats",
                                                      "batch", "single_faces", "chips",
                                                      "command"}),
           "video": ("video_bench.json", {"clip", "loadavg_end", "uptime", "skipped"})}


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_machine_record_keeps_its_committed_shape(name: str) -> None:
    if name == "video":
        pytest.importorskip("av")
    record, late = RECORDS[name]
    committed = json.loads((ROOT / "experiments" / "results" / record).read_text())["machine"]
    info = importlib.import_module(f"benchmarks.{name}").machine()
    assert set(info) == set(committed) - late
    assert set(machine_facts()) <= set(info)
    # a package a benchmark compares with may be absent here (its version is then None)
    assert all(type(info[k]) is type(committed[k]) for k in info
               if info[k] is not None and committed[k] is not None)

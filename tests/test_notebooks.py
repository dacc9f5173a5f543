"""The notebooks run headless, top to bottom (nbclient, small inputs, a timeout per cell)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

CELL_TIMEOUT = 600  # seconds per cell (a loaded 2-core CI machine)


@pytest.mark.parametrize("name", ["quickstart", "scale"])
def test_notebook_runs(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    monkeypatch.setenv("JAXPRIV_QUICK", "1")
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws PNGs
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= (4 if name == "quickstart" else 1)
    text = "".join(o.get("text", "") for o in outputs)
    if name == "quickstart":
        assert "hidden" in text and "jaxpriv from" in text
    else:
        assert "4 devices" in text and "skipped 2" in text.replace("skipped  ", "skipped ")
    assert os.environ.get("JAXPRIV_QUICK") == "1"

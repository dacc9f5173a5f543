"""`jaxpriv demo` on the bundled samples: grid PNG + metrics JSON, skips, no overwrite."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from jaxpriv.cli import main
from jaxpriv.demo import CELL, sample_photos


def test_demo_writes_grid_and_metrics(tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    from jaxpriv.masktpl.model import MODEL_ENV

    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "no-such-model"))  # mask: model missing
    out = tmp_path / "demo"
    rc = main(["demo", "-o", str(out), "--methods", "solid,smna,mask", "--quiet"])
    assert rc == 0
    report = json.loads((out / "metrics.json").read_text())
    photos = sample_photos()
    assert report["photos"] == [p.name for p in photos] and len(photos) == 4
    assert set(report["methods"]) == {"solid", "smna"}  # the shipped SMGG checkpoint is used
    assert "no-such-model" in report["skipped"]["mask"]  # skipped with the reason
    for m in report["methods"].values():
        assert m["faces"] == 5  # two_people.jpg has two faces
        assert 0 < m["mean_ssim"] < 1
    solid = report["methods"]["solid"]
    assert solid["same_person"] == 0 and 0.6 <= solid["mean_distance"] < 2
    assert report["methods"]["smna"]["mean_ssim"] > solid["mean_ssim"]  # noise, not a fill
    grid = Image.open(out / "grid.png")
    assert grid.width > 3 * CELL and grid.height > 4 * CELL  # 3 columns, 4 rows
    assert (out / "solid" / "obama.png").is_file() and (out / "smna" / "obama.png").is_file()
    printed = capsys.readouterr().out
    assert "solid" in printed and "skipped mask" in printed
    # never into a non-empty folder without --overwrite
    assert main(["demo", "-o", str(out), "--methods", "solid", "--quiet"]) == 2


def test_demo_results_file_names_its_command(tmp_path: Path) -> None:
    """Defect 7: the demo table the README quotes is written with its command and machine."""
    res = tmp_path / "res" / "demo.json"
    assert main(["demo", "-o", str(tmp_path / "d"), "--methods", "solid", "--quiet",
                 "--results", str(res)]) == 0
    rec = json.loads(res.read_text())
    assert rec["command"] == (f"jaxpriv demo -o DIR --methods solid --seed 0 "  # no machine
                              f"--results {res}")  # folder for the scratch output
    assert rec["machine"] and rec["wall_seconds"] > 0 and set(rec["methods"]) == {"solid"}
    md = res.with_suffix(".md").read_text()
    assert rec["command"] in md and "solid" in md and "0/5" in md
    # never overwritten without --overwrite, refused before the demo runs; .json required
    assert main(["demo", "-o", str(tmp_path / "e"), "--methods", "solid", "--quiet",
                 "--results", str(res)]) == 2
    assert not (tmp_path / "e").exists()
    assert main(["demo", "-o", str(tmp_path / "f"), "--methods", "solid", "--quiet",
                 "--results", str(tmp_path / "x.md")]) == 2

"""`jaxpriv demo` on the bundled samples: grid PNG + metrics JSON, skips, no overwrite."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from jaxpriv.cli import main
from jaxpriv.demo import CELL, sample_photos


def test_demo_writes_grid_and_metrics(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "demo"
    rc = main(["demo", "-o", str(out), "--methods", "solid,smna", "--quiet"])
    assert rc == 0
    report = json.loads((out / "metrics.json").read_text())
    photos = sample_photos()
    assert report["photos"] == [p.name for p in photos] and len(photos) == 4
    assert set(report["methods"]) == {"solid"}
    assert "smna" in report["skipped"]  # no SMGG checkpoint shipped: skipped with a note
    for m in report["methods"].values():
        assert m["faces"] == 5 and m["same_person"] == 0  # two_people.jpg has two faces
        assert 0.6 <= m["mean_distance"] < 2 and 0 < m["mean_ssim"] < 1
    grid = Image.open(out / "grid.png")
    assert grid.width > 2 * CELL and grid.height > 4 * CELL  # 2 columns, 4 rows
    assert (out / "solid" / "obama.png").is_file()
    printed = capsys.readouterr().out
    assert "solid" in printed and "skipped smna" in printed
    # never into a non-empty folder without --overwrite
    assert main(["demo", "-o", str(out), "--methods", "solid", "--quiet"]) == 2

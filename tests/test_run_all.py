"""benchmarks/run_all.py: ratios are read from every benchmark's JSON shape."""

from __future__ import annotations

from benchmarks.run_all import benchmarks, ratios, table


def test_ratios_from_each_json_shape() -> None:
    rows = {"results": [{"implementation": "a", "batch": 1, "ratio_vs_dlib_batch1": 1.0},
                        {"implementation": "b", "batch": 64, "ratio_vs_dlib_batch1": 5.5}]}
    assert ratios(rows) == [("a [batch 1]", "ratio_vs_dlib_batch1", 1.0),
                            ("b [batch 64]", "ratio_vs_dlib_batch1", 5.5)]
    assert ratios({"ratios": {"(a) x": 3.0}, "rows": {"r": {"queries_per_s": 9}}}) == [
        ("", "(a) x", 3.0)]
    fps = ratios({"results": [{"name": "x", "fps": 2.0}, {"name": "y", "fps": 3.0}]})
    assert [v for *_, v in fps] == [1.0, 1.5]
    text = table({"one": {"data": rows}, "two": {"error": "exit 1: boom"}})
    assert "5.50x" in text and "failed: exit 1: boom" in text
    names = [p.stem for p in benchmarks()]
    assert "peers" in names and "run_all" not in names


def test_main_writes_the_table_ratios_to_json(tmp_path, monkeypatch) -> None:
    """Defect 7: the ratios the README quotes come from a results file run_all writes."""
    import json
    from pathlib import Path

    import benchmarks.run_all as run_all

    fake = {"smna": {"data": {"ratios": {"(a) exact / loop": 1.8}}, "seconds": 1.0},
            "peers": {"error": "exit 1: boom", "seconds": 2.0}}
    monkeypatch.setattr(run_all, "benchmarks", lambda only=None: [Path(f"{n}.py") for n in fake])
    monkeypatch.setattr(run_all, "run", lambda script, *a: fake[script.stem])
    out = tmp_path / "bench.json"
    assert run_all.main(["--only", "smna,peers", "--json", str(out)]) == 1
    rec = json.loads(out.read_text())
    assert rec["ratios"] == [{"benchmark": "smna", "row": "", "ratio": "(a) exact / loop",
                              "value": 1.8}]
    assert rec["failed"] == {"peers": "exit 1: boom"} and rec["mode"] == "quick"
    assert rec["command"] == f"python benchmarks/run_all.py --only smna,peers --json {out}"
    assert "cores" in rec["machine"]
    assert run_all.DEFAULT_JSON.name == "bench_all.json"

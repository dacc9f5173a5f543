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

"""Where code lives (issue 16): the library's modules stay short enough to read in one sitting."""

from __future__ import annotations

from .conftest import ROOT

MAX_LINES = 450


def test_no_library_module_is_over_450_lines() -> None:
    lengths = {p.relative_to(ROOT).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
               for p in (ROOT / "jaxpriv").rglob("*.py")}
    assert len(lengths) > 50  # the walk found the package
    too_long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert not too_long, f"split these where their concepts divide: {too_long}"

"""The experiment layout: every config has ``get_config()`` naming an ``experiments/<name>.py``
whose ``run(config, workdir)`` it feeds, no machine paths in the defaults, and
``python -m experiments.main`` requires ``--workdir`` and reads relative paths from the repo."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import ROOT

CONFIGS = sorted(p.stem for p in (ROOT / "experiments" / "configs").glob("*.py")
                 if p.stem != "__init__")


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize("name", CONFIGS)
def test_config_names_a_run_and_holds_no_machine_path(name: str) -> None:
    get_config = importlib.import_module(f"experiments.configs.{name}").get_config
    variants = [()] + ([("128",)] if name == "face_gan" else [])
    for args in variants:
        config = get_config(*args)
        run = importlib.import_module(f"experiments.{config.experiment}").run
        assert list(inspect.signature(run).parameters) == ["config", "workdir"]
        assert "workdir" not in config and "run_dir" not in config and "out_dir" not in config
        absolute = [s for s in _strings(config.to_dict())
                    if s.startswith("/") and not s.startswith("/tmp/")]
        assert absolute == [], absolute


def _main(args: list[str], cwd: os.PathLike) -> subprocess.CompletedProcess:
    """``experiments.main`` with a stand-in experiment that reports what its run received."""
    script = textwrap.dedent(f"""
        import os, sys, types
        from absl import app
        probe = types.ModuleType("experiments._probe")
        def run(config, workdir):
            print("RESULT", os.getcwd(), workdir, os.path.isdir(config.data), flush=True)
        probe.run = run
        sys.modules["experiments._probe"] = probe
        import experiments.main
        app.run(experiments.main.main, argv=["main", *{args!r}])
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_main_requires_workdir_and_resolves_paths_from_the_repo(tmp_path) -> None:
    (tmp_path / "probe.py").write_text(textwrap.dedent("""
        import ml_collections
        def get_config():
            c = ml_collections.ConfigDict()
            c.experiment = "_probe"
            c.data = "jaxpriv/samples"  # relative to the repository root
            return c
    """))
    missing = _main(["--config", "probe.py"], tmp_path)
    assert missing.returncode != 0 and "--workdir" in missing.stderr
    res = _main(["--config", "probe.py", "--workdir", "run"], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    line = next(x for x in res.stdout.splitlines() if x.startswith("RESULT "))
    assert line.split() == ["RESULT", str(ROOT), str(tmp_path / "run"), "True"]


def test_recorded_command_hides_the_workdir(tmp_path: Path) -> None:
    """Results files record the command with ``--workdir DIR``: the experiments that wrote
    ``sys.argv`` as is put machine folders (the temp folder) into committed results."""
    from experiments.results_io import recorded_command

    argv = ["--config", "experiments/configs/x.py", "--workdir", str(tmp_path / "run1"),
            "--config.n=2"]
    assert recorded_command(argv) == ("python -m experiments.main --config experiments/configs/"
                                      "x.py --workdir DIR --config.n=2")
    assert recorded_command([f"--workdir={Path.home() / 'run'}", "--config", "c.py"]) == (
        "python -m experiments.main --workdir=DIR --config c.py")


MACHINE_PATH = re.compile(r"(^|[^A-Za-z0-9_.])/(tmp|work|home|root|Users)/")


def test_committed_records_hold_no_machine_path() -> None:
    """Results, checkpoints, benchmarks and docs record commands with DIR / MAPS placeholders,
    never the folders of the machine that made them (a recorded /tmp/… or /work/… path names
    one machine and may name a person's home)."""
    roots = ["experiments/results", "experiments/data", "ckpt", "benchmarks", "docs",
             "notebooks", "README.md", "SECURITY.md"]
    found = []
    for root in roots:
        path = ROOT / root
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            if f.suffix not in {".md", ".json", ".txt", ".py", ".ipynb", ".csv", ""}:
                continue
            text = f.read_text(errors="replace")
            found += [f"{f.relative_to(ROOT)}: {m.group(0)}" for m in MACHINE_PATH.finditer(text)]
    assert found == [], found[:10]

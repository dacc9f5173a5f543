"""`pip install .` ships the default models: every file of the repository's ckpt/ is in the wheel
as jaxpriv/ckpt/, and the installed package finds them there (no source checkout needed)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import ROOT


def test_wheel_carries_checkpoints_and_samples(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path),
                    str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("jaxpriv-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"jaxpriv/ckpt/{p.relative_to(ROOT / 'ckpt').as_posix()}"
               for p in (ROOT / "ckpt").rglob("*") if p.is_file()}
    assert {"jaxpriv/ckpt/face_gan_64/config.json",
            "jaxpriv/ckpt/mask_perturb_dlib/README.md"} <= shipped
    assert shipped <= names, sorted(shipped - names)[:5]
    assert {f"jaxpriv/samples/{p.name}" for p in (ROOT / "jaxpriv" / "samples").iterdir()} <= names
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "jaxpriv").rglob("*.py")}
    assert {"jaxpriv/eval/cli.py", "jaxpriv/deid/plates/codes.py", "jaxpriv/io/paths.py",
            "jaxpriv/video/pipeline.py"} <= modules
    assert modules <= names, sorted(modules - names)[:5]  # every subpackage is listed

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("from jaxpriv.checkpoints import shipped_checkpoint as s; "
            "from jaxpriv.masktpl.model import default_model_dir as m; "
            "print(s('face_gan_64')); print(m())")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True, env={"PYTHONPATH": str(site), "PATH": ""})
    found = [Path(line) for line in out.stdout.split()]
    assert found == [site / "jaxpriv" / "ckpt" / "face_gan_64",
                     site / "jaxpriv" / "ckpt" / "mask_perturb_dlib"]

"""The machine a number was measured on, for results files and benchmark reports.

No JAX import at module level: benchmarks that set ``XLA_FLAGS`` before importing JAX can use it.
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (the platform string where there is none)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_description() -> str:
    """CPU model, core count, load, Python and JAX versions in one line."""
    import jax

    load = " ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"{cpu_model()}, {os.cpu_count()} cores, load {load}; python "
            f"{platform.python_version()}, jax {jax.__version__} ({jax.default_backend()})")

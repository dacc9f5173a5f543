"""The machine a number was measured on, for results files and benchmark reports.

No JAX import at module level: benchmarks that set ``XLA_FLAGS`` before importing JAX can use it.
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (the platform string where there is none)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def usable_cpus() -> int | None:
    """CPUs this process may run on (its affinity mask; None where the OS does not tell)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def machine_facts() -> dict[str, Any]:
    """The machine part every benchmark record shares: ``cpu_model``, ``os_cpu_count``,
    ``loadavg_start`` (each benchmark adds its own versions and load at the end)."""
    return {"cpu_model": cpu_model(), "os_cpu_count": os.cpu_count(),
            "loadavg_start": list(os.getloadavg())}


def machine_description() -> str:
    """CPU model, core count, load, Python and JAX versions in one line."""
    import jax

    load = " ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"{cpu_model()}, {os.cpu_count()} cores, load {load}; python "
            f"{platform.python_version()}, jax {jax.__version__} ({jax.default_backend()})")

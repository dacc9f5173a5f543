"""One build of a TFDS dataset directory at a time.

Map workers (one per core, or one per host on a shared disk) start together and each prepares
the same dataset: without a lock the second one's ``download_and_prepare`` races the first on
the rename of tfds's ``incomplete.*`` folder and dies with ``FileExistsError``. Holding
:func:`exclusive_build` around "is it prepared? else build it" makes the first build and the
others wait, then reuse what it built.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".jaxpriv-build.lock"


@contextlib.contextmanager
def exclusive_build(data_dir: str | os.PathLike[str]) -> Iterator[None]:
    """An exclusive ``flock`` on ``data_dir``/:data:`LOCK_NAME` (the folder made if missing),
    held for the block: other processes (and other threads) entering it on the same directory
    wait."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(data_dir) / LOCK_NAME, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

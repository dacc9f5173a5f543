"""What every experiment does last: write its JSON and Markdown results (committed outputs under
``experiments/results/``) and print the Markdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ml_collections


def write_results(config: ml_collections.ConfigDict, result: dict[str, Any], text: str) -> None:
    """``result`` as JSON to ``config.out_json`` and ``text`` to ``config.out_md`` (folders
    created; a rerun replaces them), then print ``text``."""
    Path(config.out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(config.out_json).write_text(json.dumps(result, indent=2) + "\n")
    Path(config.out_md).write_text(text)
    print(text)

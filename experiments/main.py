"""Run an experiment from an ml_collections config file.

    python -m experiments.main --config experiments/configs/verify_table.py \
        [--config.<field>=... to override a config value]
"""

from __future__ import annotations

import importlib

from absl import app
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment config (.py)",
                                          lock_config=True)


def main(argv: list[str]) -> None:
    del argv
    config = _CONFIG.value
    module = importlib.import_module(f"experiments.{config.experiment}")
    module.run(config)


if __name__ == "__main__":
    app.run(main)

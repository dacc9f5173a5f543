"""Train the mask template network and the perturbation generator (paper 004) against dlib.

``run(config, workdir)`` (config: ``experiments/configs/mask_train.py``) runs the stages of
:mod:`jaxpriv.masktpl.train`, each resumable from ``workdir``: cached training chips and saliency
targets, the template network (eq. 4–5), the generator (eq. 7); then exports both networks as one
model directory (``config.out_ckpt``, :func:`jaxpriv.masktpl.model.save_model`). Every stage is
logged to ``workdir/log.jsonl``.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import ml_collections
from absl import logging

from jaxpriv.masktpl.model import MaskModel, TemplateSettings, save_model
from jaxpriv.masktpl.train import (
    log_line,
    recognizer_terms,
    saliency_targets,
    train_generator,
    train_template,
    training_chips,
)


def run(config: ml_collections.ConfigDict, workdir: str | Path) -> MaskModel:
    """All stages of the config; writes the model to ``config.out_ckpt`` (if set) and returns
    it."""
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    run_dir = Path(workdir)
    t0 = time.time()
    log_line(run_dir, {"stage": "start", "config": config.to_dict()})
    chips = training_chips(config.faces_dir, config.max_per_identity, run_dir / "chips.npy")
    terms = recognizer_terms(config.recognizers)
    targets = saliency_targets(terms[0], chips, jax.random.key(config.seed),
                               config.saliency_batch, config.saliency_draws,
                               run_dir / "saliency.npy")
    log_line(run_dir, {"stage": "data", "chips": len(chips),
                       "seconds": round(time.time() - t0, 1)})
    tparams = train_template(chips, targets, config.template, run_dir)
    settings = TemplateSettings(**config.settings)
    gparams = train_generator(chips, tparams, terms, config.generator, settings, run_dir)
    seconds = round(time.time() - t0, 1)
    info = {"trained_on": f"{len(chips)} chips of training identities of {config.faces_dir}",
            "recognizers": [[t.name, t.tau] for t in terms],
            "template_steps": config.template.steps, "generator_steps": config.generator.steps,
            "budget": config.generator.budget, "sigma": config.generator.sigma,
            "wall_seconds_total_run": seconds}
    model = MaskModel(tparams, gparams, settings, info)
    if config.out_ckpt:
        save_model(config.out_ckpt, model)
    log_line(run_dir, {"stage": "done", "seconds": seconds, "fingerprint": model.fingerprint})
    return model

"""Transfer: one protected probe measured by several recognizers, each white-box or black-box.

A recognizer is *white-box* for a protection when it was used to build it (its gradients, its
sensitivity maps or its features shaped the change), *black-box* otherwise (the protection never
saw it: the transfer setting of Fawkes and LowKey). :func:`built_with` is the one rule;
:func:`recognizer_section` summarises one recognizer's measurements for the report.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxpriv import metrics
from jaxpriv.checkpoints import read_config
from jaxpriv.errors import JaxprivError
from jaxpriv.eval.models import cwd_relative, model_dir
from jaxpriv.methods import get_method

if TYPE_CHECKING:
    from jaxpriv.recognizers import Recognizer

WHITE_BOX, BLACK_BOX = "white-box", "black-box"
# Methods whose shipped code or checkpoints use a recognizer without recording it in an option or
# a checkpoint config: the shipped SMGG checkpoints learnt dlib sensitivity maps, deid's projection
# (eq. 18–19) matches dlib ResNet activations (jaxpriv/deid/project.py).
BUILT_BY_CODE = {"smna": ("dlib_resnet",), "deid": ("dlib_resnet",)}


def recognizer_names(value: str | Sequence[str]) -> list[str]:
    """``"dlib_resnet,sface"`` (or a list of names) → the names in order, once each."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    names = list(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if not names:
        raise JaxprivError("--recognizers needs at least one recognizer name")
    return names


def load_recognizers(names: str | Sequence[str], weights: str | None = None) -> list[Recognizer]:
    """The recognizers ``names`` (:func:`recognizer_names`; ``weights`` for the first), each
    loaded once per process: a new instance would compile its network again."""
    from jaxpriv.recognizers import shared_recognizer

    return [shared_recognizer(n, None if i else weights)
            for i, n in enumerate(recognizer_names(names))]


def _recorded(config: dict[str, Any]) -> list[str] | None:
    """Recognizer names a model config records (``recognizer(s)`` at its top or in ``info``;
    entries may be ``[name, weight]``), ``None`` if it records none."""
    for where in (config, config.get("info", {})):
        for key in ("recognizers", "recognizer"):
            value = where.get(key)
            if isinstance(value, str):
                return recognizer_names(value)
            if value:
                return [str(v[0] if isinstance(v, list | tuple) else v) for v in value]
    return None


def _option_recognizers(method: str, opts: dict[str, Any]) -> list[str]:
    """The names in the method's ``recognizer`` option (``NAME[:TAU][,NAME...]``, e.g. cloak's
    attack, mask's steering) when the run uses it; mask with ``steps=0`` steers nothing."""
    from jaxpriv.recognizers.ensemble import parse_spec

    if not opts.get("recognizer") or (method == "mask" and opts.get("steps") == 0):
        return []
    return [name for name, _ in parse_spec(opts["recognizer"])]


def built_with(method: str, options: dict[str, Any]) -> dict[str, Any]:
    """Which recognizers built ``method`` with ``options`` and where that is recorded: the
    model's checkpoint config (smna, deid, mask) and the method's ``recognizer`` option (cloak,
    mask: both count, e.g. mask's model trained on one and its pad steered against others), else
    :data:`BUILT_BY_CODE`; none for the rest (blur, mosaic, solid, dppix).
    Returns ``{"recognizers": [...], "source": ...}``."""
    opts = get_method(method).in_effect(**options)
    path = model_dir(method, options)
    recorded = (_recorded(read_config(path)) if path is not None else None) or []
    option = _option_recognizers(method, opts)
    sources = ([f"the checkpoint config of {cwd_relative(path)}"] if recorded else []) + (
        ["the method's recognizer option"] if option else [])
    if sources:
        return {"recognizers": list(dict.fromkeys([*recorded, *option])),
                "source": " and ".join(sources)}
    if method == "deid" and opts.get("generator") == "mobilestylegan":
        return {"recognizers": [], "source": "no recognizer used (LPIPS-VGG projection)"}
    if method in BUILT_BY_CODE:
        return {"recognizers": list(BUILT_BY_CODE[method]),
                "source": "the method's code" + ("; its checkpoint records none"
                                                  if path is not None else "")}
    return {"recognizers": [], "source": "no recognizer used"}


def access(recognizer: str, built: Collection[str]) -> str:
    """``"white-box"`` if ``recognizer`` is among the recognizers that ``built`` the protection,
    else ``"black-box"``."""
    return WHITE_BOX if recognizer in built else BLACK_BOX


def recognizer_section(name: str, threshold: float, genuine: np.ndarray,
                       per_option: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One recognizer's part of the report. ``genuine``: clean probe-to-reference distances;
    each of ``per_option``: ``options``, ``built`` (:func:`built_with`), the protected distances
    ``protected`` (one per probe, same order) and ``robustness`` (name → distances after it).
    Protection success over the clean-matched probes is the headline (a probe the recognizer
    missed when clean says nothing about the protection)."""
    matched = genuine < threshold
    results = []
    for row in per_option:
        dp = np.asarray(row["protected"])
        hidden = dp >= threshold
        results.append({
            "options": row["options"],
            "built_with": row["built"],
            "access": access(name, row["built"]["recognizers"]),
            "tar_protected": metrics.true_accept_rate(dp, threshold),
            "protection_success": metrics.protection_success_rate(dp, threshold),
            "protection_success_clean_matched": (float(hidden[matched].mean())
                                                 if matched.any() else None),
            "hidden_of_matched": int(hidden[matched].sum()),
            "robustness": {k: metrics.protection_success_rate(d, threshold)
                           for k, d in row["robustness"].items()},
        })
    return {"recognizer": name, "threshold": threshold, "probes": int(genuine.size),
            "matched_clean": int(matched.sum()),
            "tar_clean": metrics.true_accept_rate(genuine, threshold), "results": results}

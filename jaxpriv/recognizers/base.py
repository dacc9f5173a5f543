"""Recognizer interface and registry.

A recognizer is a pure JAX function ``apply(params, x)`` plus its parameters and a few facts
(name, chip size, same-person threshold). ``x`` is float32 ``(N, S, S, 3)`` RGB in [0, 1] (an
aligned chip); each network applies its own normalisation inside ``apply``, so callers can
``jax.jit`` / ``jax.vmap`` / ``jax.grad`` with respect to pixels without knowing it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv.errors import JaxprivError

ApplyFn = Callable[[Any, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True, eq=False)
class Recognizer:
    """A face recognizer: ``apply(params, chips01) -> (N, D)`` embeddings, compared by Euclidean
    distance; two faces are the same person when ``distance < threshold``. ``alignment`` names
    the chip geometry the network expects: ``"dlib150"`` (dlib's 5-point chip) or
    ``"arcface112"`` (the ArcFace 5-point template, 112×112)."""

    name: str
    input_size: int
    threshold: float
    params: Any
    apply: ApplyFn
    alignment: str = "dlib150"

    def __post_init__(self) -> None:
        object.__setattr__(self, "_jitted", jax.jit(self.apply))

    def embed(self, chips: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Embed uint8 ``(N, S, S, 3)`` RGB aligned chips; returns float32 ``(N, D)``.

        Batches are padded to ``batch_size`` so one compiled function serves every call."""
        chips = check_chips(chips, self.input_size)
        out = []
        for start in range(0, len(chips), batch_size):
            batch = chips[start : start + batch_size]
            n = len(batch)
            if len(chips) > batch_size and n < batch_size:
                pad = np.zeros((batch_size - n, *batch.shape[1:]), batch.dtype)
                batch = np.concatenate([batch, pad])
            x = jnp.asarray(batch, jnp.float32) / 255.0
            out.append(np.asarray(self._jitted(self.params, x))[:n])
        if not out:
            return np.zeros((0, 0), np.float32)
        return np.concatenate(out).astype(np.float32)

    def distance(self, a: np.ndarray | jax.Array, b: np.ndarray | jax.Array) -> np.ndarray:
        """Euclidean distance between embeddings ``a`` and ``b`` (broadcast over leading axes)."""
        return np.asarray(embedding_distance(jnp.asarray(a), jnp.asarray(b)))


def embedding_distance(a: jax.Array, b: jax.Array) -> jax.Array:
    """Euclidean distance over the last axis (pure, differentiable away from a == b)."""
    return jnp.sqrt(jnp.sum(jnp.square(a - b), axis=-1))


def check_chips(chips: np.ndarray, size: int) -> np.ndarray:
    """Validate a batch of uint8 RGB chips of shape ``(N, size, size, 3)``."""
    chips = np.asarray(chips)
    if chips.ndim == 3:
        chips = chips[None]
    if chips.dtype != np.uint8:
        raise JaxprivError(f"chips must be uint8 RGB, got dtype {chips.dtype}")
    if chips.ndim != 4 or chips.shape[1:] != (size, size, 3):
        raise JaxprivError(
            f"chips must have shape (N, {size}, {size}, 3), got {tuple(chips.shape)}"
        )
    return chips


_REGISTRY: dict[str, Callable[..., Recognizer]] = {}


def register(name: str) -> Callable[[Callable[..., Recognizer]], Callable[..., Recognizer]]:
    """Decorator: register a factory ``f(**kw) -> Recognizer`` under ``name`` (a taken name
    raises)."""

    def deco(factory: Callable[..., Recognizer]) -> Callable[..., Recognizer]:
        if _REGISTRY.setdefault(name, factory) is not factory:
            raise ValueError(f"recognizer {name!r} is already registered")
        return factory

    return deco


def available_recognizers() -> list[str]:
    """Names accepted by :func:`load_recognizer`."""
    _import_builtin()
    return sorted(_REGISTRY)


def load_recognizer(name: str = "dlib_resnet", **kw: Any) -> Recognizer:
    """Build a registered recognizer, e.g. ``load_recognizer("dlib_resnet")``."""
    _import_builtin()
    if name not in _REGISTRY:
        raise JaxprivError(
            f"unknown recognizer {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name](**kw)


@functools.lru_cache(maxsize=8)
def shared_recognizer(name: str, weights: str | None = None) -> Recognizer:
    """:func:`load_recognizer` once per ``(name, weights)`` per process: every caller (an
    ensemble, the transfer evaluation) gets the same instance, whose network compiles once."""
    return load_recognizer(name, **({"weights": weights} if weights else {}))


def _import_builtin() -> None:
    # Importing the modules runs their @register decorators.
    from jaxpriv.recognizers import dlib_resnet, facenet, sface  # noqa: F401

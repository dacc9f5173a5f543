"""One device mesh with a ``data`` axis, and sharding helpers.

On CPU, simulate N devices with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` set before
jax is imported. On pods, call ``jax.distributed.initialize()`` first; the mesh then spans every
process's devices and each process feeds its own slice of the batch."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA = "data"


def make_mesh(num_devices: int | None = None, local: bool = False) -> Mesh:
    """A 1-D mesh with axis ``data`` over the first ``num_devices`` devices (default: all) of
    every process, or of this process only when ``local`` (each process then works alone)."""
    devices = jax.local_devices() if local else jax.devices()
    n = len(devices) if num_devices is None else num_devices
    return jax.make_mesh((n,), (DATA,), (AxisType.Auto,), devices=devices[:n])


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over ``data``; other axes whole."""
    return NamedSharding(mesh, P(DATA))


def replicated(mesh: Mesh) -> NamedSharding:
    """Same value on every device (parameters)."""
    return NamedSharding(mesh, P())


def bucket(n: int) -> int:
    """``n`` rounded up to a power of two: pad a varying count (e.g. faces in a photo) to it so
    that jit compiles few shapes."""
    return 1 << max(n - 1, 0).bit_length()


def pad_to_multiple(x: np.ndarray, multiple: int) -> tuple[np.ndarray, int]:
    """Zero-pad the leading axis to a multiple of ``multiple``; returns (padded, old length)."""
    n = len(x)
    extra = (-n) % multiple
    if extra:
        x = np.concatenate([x, np.zeros((extra, *x.shape[1:]), x.dtype)])
    return x, n


def sharded_embed(recognizer: Any, chips: np.ndarray, mesh: Mesh | None = None) -> np.ndarray:
    """Embed uint8 chips ``(N, S, S, 3)`` with the batch split over ``mesh``'s ``data`` axis and
    the recognizer's parameters replicated. Returns float32 ``(N, D)``."""
    mesh = make_mesh() if mesh is None else mesh
    chips, n = pad_to_multiple(np.asarray(chips), mesh.size)
    params = jax.device_put(recognizer.params, replicated(mesh))
    x = jax.device_put(chips, batch_sharding(mesh))
    return np.asarray(_sharded_apply(recognizer.apply, mesh)(params, x))[:n].astype(np.float32)


@functools.lru_cache(maxsize=16)
def _sharded_apply(apply: Callable[[Any, jax.Array], jax.Array], mesh: Mesh) -> Callable:
    """jit of ``apply`` on uint8 chips, batch on ``data``, params replicated (cached per mesh)."""
    return jax.jit(
        lambda p, c: apply(p, c.astype(jnp.float32) / 255.0),
        in_shardings=(replicated(mesh), batch_sharding(mesh)),
        out_shardings=batch_sharding(mesh),
    )

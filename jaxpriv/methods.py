"""Registry of protection methods, shared by ``jaxpriv protect``, ``jaxpriv eval`` and the demo.

A method is built from its options and returns a function
``protect(image, faces, key) -> image``: uint8 HWC RGB in and out, ``faces`` from
:func:`jaxpriv.faces.detect_faces`, ``key`` a ``jax.random`` key (the only source of randomness).
Pixels outside the method's face regions must come back unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Collection, Sequence
from typing import Any

import jax
import numpy as np

from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face

ProtectFn = Callable[[np.ndarray, Sequence[Face], jax.Array], np.ndarray]
Check = Callable[[Any], str | None]
"""An option's range check: ``None`` if the value is fine, else what it must be."""


def at_least(low: float) -> Check:
    """Values must be finite and ≥ ``low``."""
    return lambda v: None if math.isfinite(v) and v >= low else f"must be >= {low:g}"


def above(low: float) -> Check:
    """Values must be finite and > ``low``."""
    return lambda v: None if math.isfinite(v) and v > low else f"must be > {low:g}"


def within(low: float, high: float, open_low: bool = False) -> Check:
    """Values must lie in [``low``, ``high``] (or (``low``, ``high``] with ``open_low``)."""
    bracket = "(" if open_low else "["

    def check(v: Any) -> str | None:
        ok = (low < v if open_low else low <= v) and v <= high
        return None if ok else f"must be in {bracket}{low:g}, {high:g}]"

    return check


PhotoFn = Callable[[np.ndarray, Sequence[Face], jax.Array], tuple[np.ndarray, tuple[bytes, ...]]]
"""What the pipeline runs on one photo, faces or none: (pixels, faces, key) → (pixels, the bytes of
each of the method's extra files, in the order of :attr:`MethodRun.extra_suffixes`)."""


@dataclasses.dataclass(frozen=True)
class MethodRun:
    """A method as built by the registry, with what writing files needs beyond its
    :data:`~jaxpriv.methods.ProtectFn`. Callable like ``protect`` (evaluation sweeps and the demo
    use it as a plain ProtectFn: in memory, keyed by the pipeline's key, nothing written)."""

    protect: ProtectFn
    start: Callable[[], PhotoFn] | None = None
    """Called once per run by :func:`protect_files`, before any file is written (e.g. to read a
    password); its function replaces ``protect`` on every photo. None: ``protect`` on faces."""
    extra_suffixes: tuple[str, ...] = ()
    """Files written beside each output as ``<output><suffix>`` (mode 0600, atomic, never over an
    existing file without ``overwrite``; the output is removed again if one cannot be written)."""
    reversible: bool = False
    """Restored bit for bit later: PNG only, photos only (videos are re-encoded lossily), nothing
    may change its pixels afterwards (plates) and its randomness is its own (no seed)."""

    def __call__(self, image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        return self.protect(image, faces, key)

    def photo_fn(self) -> PhotoFn:
        """The per-photo function of a run (calls :attr:`start` if there is one)."""
        if self.start is not None:
            return self.start()

        def photo(image: np.ndarray, faces: Sequence[Face], key: jax.Array
                  ) -> tuple[np.ndarray, tuple[bytes, ...]]:
            return (self.protect(image, faces, key) if faces else image), ()

        return photo


@dataclasses.dataclass(frozen=True)
class Option:
    """A method option: CLI flag ``--<name with dashes>``, also a sweepable eval parameter.
    ``check`` (with ``choices``) is applied to every value in effect (:meth:`MethodSpec.in_effect`):
    CLI, sweeps and Python calls all refuse an out-of-range value."""

    name: str
    type: Callable[[str], Any]
    default: Any
    help: str
    choices: Sequence[Any] | None = None
    check: Check | None = None

    @property
    def flag(self) -> str:
        """``--name-with-dashes``."""
        return "--" + self.name.replace("_", "-")

    def validate(self, value: Any) -> None:
        """A one-line :class:`JaxprivError` if ``value`` is out of range (``None`` = unset)."""
        if value is None:
            return
        if self.choices is not None and value not in self.choices:
            raise JaxprivError(f"{self.flag} must be one of {list(self.choices)}, got {value!r}")
        problem = self.check(value) if self.check else None
        if problem:
            raise JaxprivError(f"{self.flag} {problem}, got {value!r}")


def _check_recognizers(spec: str) -> str | None:
    from jaxpriv.recognizers.ensemble import check_spec

    return check_spec(spec)


def recognizer_option(default: str) -> Option:
    """The ``--recognizer`` option of the methods built against recognizers (cloak, mask): one
    meaning and check (without loading weights), each method with its own ``default``."""
    return Option("recognizer", str, default, "recognizer(s) the protection is built against: "
                  "NAME[:TAU][,NAME...]; more than one = an ensemble (losses in units of each "
                  "threshold, weights TAU)", check=_check_recognizers)


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """A protection method: ``build(**options) -> ProtectFn``. ``fill`` (optional) resolves
    options whose default depends on others (e.g. deid's ε per mode)."""

    name: str
    help: str
    build: Callable[..., ProtectFn]
    options: tuple[Option, ...] = ()
    fill: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def defaults(self) -> dict[str, Any]:
        """The options in effect when none is given (as :meth:`in_effect` with no overrides)."""
        return self.in_effect()

    def in_effect(self, **options: Any) -> dict[str, Any]:
        """Every option's value after ``options`` override the defaults and ``fill`` ran, each
        checked (:meth:`Option.validate`); unknown names are an error."""
        unknown = set(options) - {o.name for o in self.options}
        if unknown:
            raise JaxprivError(f"method {self.name!r} has no option(s) {sorted(unknown)}; "
                               f"options: {[o.name for o in self.options]}")
        merged = {o.name: o.default for o in self.options} | options
        resolved = self.fill(merged) if self.fill else merged
        for o in self.options:
            o.validate(resolved.get(o.name))
        return resolved

    def make(self, **options: Any) -> ProtectFn:
        """Build with defaults overridden by ``options`` (checked by :meth:`in_effect`)."""
        return self.build(**self.in_effect(**options))


_METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add a method to the registry (modules call this at import); a taken name raises."""
    if _METHODS.setdefault(spec.name, spec) is not spec:
        raise ValueError(f"method {spec.name!r} is already registered")
    return spec


def method_names() -> list[str]:
    _import_builtin()
    return sorted(_METHODS)


def get_method(name: str) -> MethodSpec:
    """The registered method ``name`` or a clear error listing the available ones."""
    _import_builtin()
    if name not in _METHODS:
        raise JaxprivError(f"unknown method {name!r}; available: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def all_options() -> dict[str, Option]:
    """Every option of every method by name (for the CLI; names are shared where they mean the
    same thing, e.g. ``epsilon``)."""
    _import_builtin()
    out: dict[str, Option] = {}
    for spec in _METHODS.values():
        for o in spec.options:
            out.setdefault(o.name, o)
    return out


def add_option_flags(parser: argparse.ArgumentParser, skip: Collection[str] = ()) -> None:
    """One ``--<option>`` flag per method option (default ``None``: the method's own), for
    ``jaxpriv protect`` and ``jaxpriv eval``; names in ``skip`` are the command's own flags."""
    for opt in all_options().values():
        if opt.name not in skip:
            parser.add_argument(opt.flag, dest=opt.name, type=opt.type, default=None,
                                choices=opt.choices, help=f"{opt.help} (method option)")


def given_options(args: argparse.Namespace, spec: MethodSpec,
                  skip: Collection[str] = ()) -> dict[str, Any]:
    """The method options set on the command line (:func:`add_option_flags`); a one-line
    :class:`JaxprivError` names the flags that are not options of ``spec``."""
    options = all_options()
    given = {n: getattr(args, n) for n in options
             if n not in skip and getattr(args, n, None) is not None}
    foreign = sorted(set(given) - {o.name for o in spec.options})
    if foreign:
        raise JaxprivError(", ".join(options[f].flag for f in foreign)
                           + f" not an option of --method {spec.name}")
    return given


def _import_builtin() -> None:
    from jaxpriv import baselines  # noqa: F401
    from jaxpriv.deid import method as _deid  # noqa: F401
    from jaxpriv.masktpl import method as _mask  # noqa: F401
    from jaxpriv.smna import method  # noqa: F401


def none_method() -> ProtectFn:
    """The identity: for baselines of evaluation (clean numbers through the same pipeline)."""

    def protect(image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        return image.copy()

    return protect


register_method(MethodSpec("none", "no change (clean reference)", none_method))

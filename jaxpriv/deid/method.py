"""The ``deid`` protection method: DP de-identification of faces (paper 001, Alg. 1–3).

For each detected face: dlib-exact 150×150 chip → area-resized to the generator's resolution →
projection ``w*`` (eq. 18–19, :mod:`jaxpriv.deid.project`) → Laplace mechanism on ``w*``
(eq. 10–12, :mod:`jaxpriv.deid.laplace`) → ``G(w̃)`` → warped back and seamlessly cloned inside
the 68-landmark hull (:mod:`jaxpriv.deid.blend`). One independent noise draw per face, from
``fold_in(key, face index)``; the projection is deterministic. Pixels outside the face masks are
unchanged.

The privacy statement is about the latent code only: pose, position, size of the face and
everything outside the mask are released as they are.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face
from jaxpriv.methods import MethodSpec, Option, ProtectFn, register_method

DEFAULT_CHECKPOINT = "ckpt/face_gan_64"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_EPSILON = 50.0
DEFAULT_MODE = "paper"
DEFAULT_SENSITIVITY = 1.0  # paper mode Δf
DEFAULT_CLIP = 1.0  # bounded mode C, in units of the generator's per-coordinate std of w
TRAIN_HINT = ("train one with: python -m experiments.main --config experiments/configs/face_gan.py"
              " --config.export_dir={path}")


def checkpoint_path(checkpoint: str) -> Path:
    """The default checkpoint is taken relative to the repository, others as given."""
    path = Path(checkpoint)
    if checkpoint == DEFAULT_CHECKPOINT:
        path = REPO_ROOT / path
    return path


@functools.lru_cache(maxsize=2)
def _generator(path: str):  # noqa: ANN202
    from jaxpriv.deid.generator import load_generator

    if not Path(path).is_dir():
        raise JaxprivError(f"{path}: no face-generator checkpoint; "
                           + TRAIN_HINT.format(path=path))
    return load_generator(path)


@functools.lru_cache(maxsize=2)
def _projector(path: str, steps: int):  # noqa: ANN202
    from jaxpriv.deid.project import ProjectConfig, make_projector

    return make_projector(_generator(path), ProjectConfig(steps=steps))


def _bucket(n: int) -> int:
    """Pad the face count to a power of two (few compiled shapes)."""
    return 1 << max(n - 1, 0).bit_length()


def mechanism(generator, mode: str, epsilon: float, sensitivity: float,  # noqa: ANN001
              clip: float):  # noqa: ANN201
    """The :class:`~jaxpriv.deid.laplace.LatentMechanism` for a generator; in bounded mode the
    box half-width is ``clip`` × the largest per-coordinate std of ``w`` (a public constant of
    the generator), centred on its mean ``w``."""
    from jaxpriv.deid.laplace import LatentMechanism

    c = float(clip * jnp.max(generator.w_std))
    return LatentMechanism(mode, float(epsilon), generator.config.w_dim, float(sensitivity), c)


def deid(epsilon: float = DEFAULT_EPSILON, mode: str = DEFAULT_MODE,
         checkpoint: str = DEFAULT_CHECKPOINT, sensitivity: float = DEFAULT_SENSITIVITY,
         clip: float = DEFAULT_CLIP, steps: int = 100, region: str = "hull68") -> ProtectFn:
    """Build the ``deid`` method: ``G(w* + Lap(Δf/ε))`` swapped into every face (eq. 10)."""
    from jaxpriv.deid.blend import swap_face
    from jaxpriv.deid.project import render, resize_chips
    from jaxpriv.faces import extract_chips

    path = str(checkpoint_path(checkpoint))
    gen = _generator(path)
    mech = mechanism(gen, mode, epsilon, sensitivity, clip)
    print(f"deid: {mech.describe()}", file=sys.stderr)
    project = _projector(path, int(steps))
    size = gen.config.resolution

    def protect(image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        if not faces:
            return image.copy()
        chips, transforms = extract_chips(image, list(faces))
        n, m = len(chips), _bucket(len(chips))
        targets = resize_chips(chips, size)
        padded = np.concatenate([targets, np.repeat(targets[:1], m - n, 0)])
        w_star = project(padded)[0][:n]
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))
        w_noisy = jax.vmap(lambda k, w: mech(k, w, gen.w_avg))(keys, jnp.asarray(w_star))
        new_chips = render(gen, w_noisy)
        out = image
        for face, chip, transform in zip(faces, new_chips, transforms, strict=True):
            out, _ = swap_face(out, face, chip, transform, region)
        return out

    return protect


register_method(MethodSpec(
    "deid", "DP de-identification: GAN latent of each face + Laplace noise, swapped in "
    "(paper 001)", deid,
    (Option("epsilon", float, DEFAULT_EPSILON, "privacy budget ε of the Laplace mechanism"),
     Option("mode", str, DEFAULT_MODE, "paper: Δf = --sensitivity as given; bounded: latent "
            "clipped to ±C so Δf = 2·C·dim (true ε)", choices=("paper", "bounded")),
     Option("checkpoint", str, DEFAULT_CHECKPOINT,
            "model checkpoint directory (default: the shipped one)"),
     Option("sensitivity", float, DEFAULT_SENSITIVITY, "paper mode: Δf of the Laplace noise"),
     Option("clip", float, DEFAULT_CLIP, "bounded mode: C in units of the generator's largest "
            "per-coordinate std of w"),
     Option("steps", int, 100, "latent projection steps (eq. 18)"),
     Option("region", str, "hull68", "face region replaced: 68-landmark hull or chip-template "
            "ellipse",
            choices=("hull68", "ellipse")))))

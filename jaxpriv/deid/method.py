"""The ``deid`` protection method: DP de-identification of faces (paper 001, Alg. 1–3).

For each detected face: dlib-exact 150×150 chip → area-resized to the generator's resolution →
projection ``w*`` (eq. 18–19, :mod:`jaxpriv.deid.project`) → Laplace mechanism on ``w*``
(eq. 10–12, :mod:`jaxpriv.deid.laplace`) → ``G(w̃)`` → warped back and seamlessly cloned inside
the 68-landmark hull (:mod:`jaxpriv.deid.blend`). One independent noise draw per face, from
``fold_in(key, face index)``; the projection is deterministic. Pixels outside the face masks are
unchanged.

One noised identity per key: the first face protected under a face key fixes its noised latent
``w̃``; a later face under the same key (the next frame of a video track: the pipeline gives every
frame of a track the same key) is not projected again but gets ``G(w̃)`` warped to its own
geometry. So a track spends ε once — releasing a noised latent per frame with the same noise
would give away the exact differences between the frames' latents — and the faces of later
frames do not reach the output at all (inside the mask).

The privacy statement is about the latent code only: pose, position, size of the face and
everything outside the mask are released as they are.

Two generators (``--generator``): ``mobilestylegan`` (the default), MobileStyleGAN FFHQ 1024²
(512-d ``w``; weights distilled from NVIDIA's StyleGAN2-FFHQ, non-commercial licence; the
pipeline of :mod:`jaxpriv.deid.msg_deid`), and ``face_gan_64``, the 64×64 generator trained here
(128-d ``w``; this module's pipeline): a fallback that needs neither the non-commercial weights
nor the extra packages, with smeared faces.

The face region replaced (``--region``, :data:`jaxpriv.deid.ffhq.REGIONS`): with MobileStyleGAN
``forehead`` by default — the 68-landmark hull with the brows lifted over the forehead, which the
recognizers' crops still see when only the hull (jaw to brows) is replaced; with face_gan_64
``hull68`` (or ``ellipse``).
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv.checkpoints import shipped_checkpoint
from jaxpriv.deid.ffhq import REGION_HELP, REGIONS
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face
from jaxpriv.methods import MethodSpec, Option, ProtectFn, above, at_least, register_method, within
from jaxpriv.parallel import bucket

if TYPE_CHECKING:  # heavy modules are imported when the method is built
    from jaxpriv.deid.generator import LoadedGenerator
    from jaxpriv.deid.laplace import LatentMechanism
    from jaxpriv.deid.project import Projector

DEFAULT_CHECKPOINT = "ckpt/face_gan_64"
GENERATORS = ("face_gan_64", "mobilestylegan")
DEFAULT_GENERATOR = "mobilestylegan"
DEFAULT_MODE = "bounded"
# face_gan_64: default ε and truncation ψ per mode, chosen from experiments/results/
# deid_face_gan_64.md: bounded ε = 256 (C = 2 std, Δf = 512, b = 2 std) with ψ = 0.7 — the
# sweep's point with ≥ 93 % different and ≥ 93 % still a face on both held-out sets — and paper
# ε = 3 (Δf = 1)
DEFAULT_EPSILON = {"bounded": 256.0, "paper": 3.0}
DEFAULT_TRUNCATION = {"bounded": 0.7, "paper": 1.0}
DEFAULT_SENSITIVITY = 1.0  # paper mode Δf
DEFAULT_CLIP = 2.0  # bounded mode C, in units of the generator's per-coordinate std of w
# MobileStyleGAN (w of 512: Δf = 2·C·512 = 2048 at C = 2): bounded ε = 2048 (b = 1 std) with
# ψ = 0.7 after 1 projection step (first chosen on 8 validation faces). On 24 validation faces
# (experiments/results/deid_mobilestylegan_validation.md) no (ε, ψ) of the sweep reached ≥ 95 %
# another person for SFace (79–83 %, one face apart; dlib 96–100 %, detected 100 %), so it was
# kept; 1 step instead of 3: a third of the time (the budget is 20 s per face) for a projection
# whose LPIPS and identity distances barely move in 3 steps (the 8-face run); paper mode as above
MSG_EPSILON = {"bounded": 2048.0, "paper": 3.0}
DEFAULT_STEPS = {"face_gan_64": 60, "mobilestylegan": 1}
# the face region replaced (jaxpriv.deid.ffhq.REGIONS), per generator. MobileStyleGAN: forehead
# (hull68 with the brows lifted over the forehead), chosen on 24 validation faces
# (experiments/results/deid_mobilestylegan_region_validation.md): what SFace still matched with
# hull68 lay above the brows; the ellipse's border crosses the brows and shows
DEFAULT_REGION = {"face_gan_64": "hull68", "mobilestylegan": "forehead"}
FACE_GAN_REGIONS = ("hull68", "ellipse")  # the regions of face_gan_64's blend (deid.blend)
TRAIN_HINT = ("train one with: python -m experiments.main --config experiments/configs/face_gan.py"
              " --workdir DIR --config.export_dir={path}")


def checkpoint_path(checkpoint: str) -> Path:
    """The default checkpoint is taken relative to the repository, others as given."""
    path = Path(checkpoint)
    if checkpoint == DEFAULT_CHECKPOINT:
        path = shipped_checkpoint(path.name)
    return path


@functools.lru_cache(maxsize=2)
def _generator(path: str) -> LoadedGenerator:
    from jaxpriv.deid.generator import load_generator

    if not Path(path).is_dir():
        raise JaxprivError(f"{path}: no face-generator checkpoint; "
                           + TRAIN_HINT.format(path=path))
    return load_generator(path)


@functools.lru_cache(maxsize=2)
def _projector(path: str, steps: int) -> Projector:
    from jaxpriv.deid.project import ProjectConfig, make_projector

    return make_projector(_generator(path), ProjectConfig(steps=steps))


def mechanism(generator: LoadedGenerator, mode: str, epsilon: float, sensitivity: float,
              clip: float, truncation: float = 1.0) -> LatentMechanism:
    """The :class:`~jaxpriv.deid.laplace.LatentMechanism` for a generator. In bounded mode it is
    applied to ``(w − w_avg)/w_std`` (the generator's public mean and per-coordinate std of
    ``w``) clipped to ``±clip``; call it as ``mech(key, w, generator.w_avg, generator.w_std)``."""
    from jaxpriv.deid.laplace import LatentMechanism

    return LatentMechanism(mode, float(epsilon), generator.config.w_dim, float(sensitivity),
                           float(clip), float(truncation))


MODE_ONLY = {"sensitivity": "paper", "clip": "bounded"}
"""Options that apply to one mode only (giving one in the other mode is an error)."""


def fill_mode_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with ``epsilon``/``truncation``/``steps``/``region`` = None replaced by their
    mode's and generator's defaults (:data:`DEFAULT_EPSILON` or :data:`MSG_EPSILON`,
    :data:`DEFAULT_TRUNCATION`, :data:`DEFAULT_STEPS`, :data:`DEFAULT_REGION`), the mode's own
    Δf option (``sensitivity`` in paper mode, ``clip`` in bounded mode) filled in and the other
    one dropped; giving the other mode's option, or ``checkpoint`` with MobileStyleGAN, is an error
    (it would be ignored)."""
    mode = options.get("mode", DEFAULT_MODE)
    if mode not in DEFAULT_EPSILON:
        raise JaxprivError(f"mode must be one of {sorted(DEFAULT_EPSILON)}, got {mode!r}")
    generator = options.get("generator", DEFAULT_GENERATOR)
    if generator not in GENERATORS:
        raise JaxprivError(f"--generator must be one of {list(GENERATORS)}, got {generator!r}")
    out = dict(options)
    if generator == "mobilestylegan":
        if out.pop("checkpoint", None) is not None:
            raise JaxprivError("--checkpoint applies to --generator face_gan_64 only "
                               "(MobileStyleGAN's weights come from the random-face package)")
    elif out.get("checkpoint") is None:
        out["checkpoint"] = DEFAULT_CHECKPOINT
    if out.get("region") is None:
        out["region"] = DEFAULT_REGION[generator]
    region = out["region"]
    if generator == "face_gan_64" and region in REGIONS and region not in FACE_GAN_REGIONS:
        raise JaxprivError(f"--region {region} needs --generator mobilestylegan "
                           f"(face_gan_64: {' or '.join(FACE_GAN_REGIONS)})")
    if out.get("steps") is None:
        out["steps"] = DEFAULT_STEPS[generator]
    if out.get("epsilon") is None:
        eps = MSG_EPSILON if generator == "mobilestylegan" else DEFAULT_EPSILON
        out["epsilon"] = eps[mode]
    if out.get("truncation") is None:
        out["truncation"] = DEFAULT_TRUNCATION[mode]
    defaults = {"sensitivity": DEFAULT_SENSITIVITY, "clip": DEFAULT_CLIP}
    for name, only in MODE_ONLY.items():
        if only == mode:
            out[name] = defaults[name] if out.get(name) is None else out[name]
        elif out.pop(name, None) is not None:
            raise JaxprivError(f"--{name} applies to --mode {only} only (this is --mode {mode})")
    return out


def deid(epsilon: float | None = None, mode: str = DEFAULT_MODE,
         checkpoint: str | None = None, sensitivity: float = DEFAULT_SENSITIVITY,
         clip: float = DEFAULT_CLIP, truncation: float | None = None, steps: int | None = None,
         region: str | None = None, generator: str = DEFAULT_GENERATOR) -> ProtectFn:
    """Build the ``deid`` method: ``G(w* + Lap(Δf/ε))`` swapped into every face (eq. 10).
    ``None`` options take the mode's and generator's defaults (:func:`fill_mode_defaults`)."""
    from jaxpriv.deid.blend import swap_face
    from jaxpriv.deid.project import render, resize_chips
    from jaxpriv.faces import extract_chips

    filled = fill_mode_defaults({"mode": mode, "epsilon": epsilon, "truncation": truncation,
                                 "generator": generator, "checkpoint": checkpoint,
                                 "steps": steps, "region": region})
    eps, psi, steps = float(filled["epsilon"]), float(filled["truncation"]), filled["steps"]
    region = filled["region"]
    for name, value in (("epsilon", eps), ("sensitivity", sensitivity), ("clip", clip)):
        if not (math.isfinite(value) and value > 0):
            raise JaxprivError(f"--{name} must be > 0, got {value!r}")
    if not 0 < psi <= 1:
        raise JaxprivError(f"--truncation must be in (0, 1], got {psi}")
    if region not in REGIONS:
        raise JaxprivError(f"--region must be one of {list(REGIONS)}, got {region!r}")
    if generator == "mobilestylegan":
        from jaxpriv.deid import msg_deid

        msg_deid.check_packages()
        mech_msg = msg_deid.mechanism(mode, eps, sensitivity, clip, psi)
        print(f"deid (MobileStyleGAN): {mech_msg.describe()}; spent once per face (per track "
              "in a video)", file=sys.stderr)
        return msg_deid.make_protect(mech_msg, int(steps), region)
    path = str(checkpoint_path(filled["checkpoint"]))
    gen = _generator(path)
    mech = mechanism(gen, mode, eps, sensitivity, clip, psi)
    print(f"deid: {mech.describe()}; spent once per face (per track in a video)",
          file=sys.stderr)
    project = _projector(path, int(steps))
    size = gen.config.resolution

    released: dict[bytes, np.ndarray] = {}  # face key → its noised latent w̃ (module doc)

    def protect(image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        if not faces:
            return image.copy()
        chips, transforms = extract_chips(image, list(faces))
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(len(chips)))
        names = [np.asarray(jax.random.key_data(k)).tobytes() for k in keys]
        new = [i for i, name in enumerate(names) if name not in released]
        if new:
            n, m = len(new), bucket(len(new))
            targets = resize_chips(chips[new], size)
            padded = np.concatenate([targets, np.repeat(targets[:1], m - n, 0)])
            w_star = project(padded)[0][:n]
            w_noisy = jax.vmap(lambda k, w: mech(k, w, gen.w_avg, gen.w_std))(
                keys[np.asarray(new)], jnp.asarray(w_star))
            for i, w in zip(new, np.asarray(w_noisy), strict=True):
                released[names[i]] = w
        new_chips = render(gen, jnp.asarray(np.stack([released[name] for name in names])))
        out = image
        for face, chip, transform in zip(faces, new_chips, transforms, strict=True):
            out, _ = swap_face(out, face, chip, transform, region)
        return out

    return protect


register_method(MethodSpec(
    "deid", "DP de-identification: GAN latent of each face + Laplace noise, swapped in "
    "(paper 001)", deid,
    (Option("epsilon", float, None, "privacy budget ε of the Laplace mechanism (default: 256 in "
            "bounded mode (2048 with mobilestylegan), 3 in paper mode)", check=above(0)),
     Option("truncation", float, None, "ψ in (0, 1]: pull the noisy latent toward the mean face "
            "(post-processing, ε unchanged; default 0.7 in bounded mode, 1 in paper mode)",
            check=within(0, 1, open_low=True)),
     Option("mode", str, DEFAULT_MODE, "paper: Δf = --sensitivity as given; bounded: latent "
            "clipped to ±C so Δf = 2·C·dim (true ε)", choices=("paper", "bounded")),
     Option("generator", str, DEFAULT_GENERATOR, "face generator: mobilestylegan (default; "
            "FFHQ 1024², weights from PyPI random-face, distilled from NVIDIA's StyleGAN2-FFHQ: "
            "non-commercial licence) or face_gan_64 (64×64, trained here: a fallback without "
            "those weights)", choices=GENERATORS),
     Option("checkpoint", str, None,
            "model checkpoint directory (default: the shipped one)"),
     Option("sensitivity", float, None, "paper mode: Δf of the Laplace noise (default 1)",
            check=above(0)),
     Option("clip", float, None, "bounded mode: C, the clip box half-width in units of "
            "the generator's per-coordinate std of w (default 2)", check=above(0)),
     Option("steps", int, None, "latent projection steps (eq. 9/18; default 1 with "
            "mobilestylegan, 60 with face_gan_64)", check=at_least(1)),
     Option("region", str, None, "face region replaced (default forehead with mobilestylegan, "
            "hull68 with face_gan_64, which has hull68 and ellipse only): "
            + "; ".join(f"{k}: {v}" for k, v in REGION_HELP.items()), choices=REGIONS)),
    fill=fill_mode_defaults))

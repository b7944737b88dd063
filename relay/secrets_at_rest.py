"""Endpoint secrets at rest: sealed with AES-GCM under a key the database never holds.

Secrets of endpoints created through the API live in the database, so that
every replica can sign with them; sealed, a copy of the database alone (a
backup, a stolen disk, a dump) reveals none of them. The key comes from
`secrets_key` in relay.yaml (`${RELAY_SECRETS_KEY}`: 32 bytes, base64). On
SQLite without one, the relay creates a key file beside the database (mode
0600) and says so in its log; PostgreSQL, shared by replicas on other hosts,
requires the key in the config.

Each sealed value is `v1.` + base64(nonce 12 bytes + ciphertext + tag), and
the endpoint's name is the associated data: a sealed secret copied onto
another endpoint's row does not open.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from relay.exceptions import ConfigError, StorageError

__all__ = ["SecretBox", "SecretsUnreadable", "generate_key", "key_from_text", "load_or_create_key"]

log = structlog.get_logger("relay")

_PREFIX = "v1."
KEY_BYTES = 32


class SecretsUnreadable(StorageError):
    """A sealed secret does not open under this key (another key, or tampered)."""


def generate_key() -> str:
    """A new `secrets_key`: 32 random bytes, base64 (`relay keygen --secrets-key`)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def key_from_text(text: str) -> bytes:
    """The key bytes of a `secrets_key` value; ValueError naming what is wrong, never it."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("expected 32 bytes in base64 (generate one with "
                         "`relay keygen --secrets-key`)") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"expected 32 bytes in base64, got {len(key)} bytes "
                         "(generate one with `relay keygen --secrets-key`)")
    return key


def load_or_create_key(path: Path) -> bytes:
    """The key in `path`, created (0600) when missing: SQLite's default when none is configured."""
    try:
        return key_from_text(path.read_text(encoding="ascii"))
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError([f"secrets_key: the key file {path} cannot be used: {exc}"]) from None
    text = generate_key()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:  # another process made it meanwhile: use theirs
        return load_or_create_key(path)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    log.warning("secrets_key_created", path=str(path),
                hint="back this file up with the database, or set secrets_key in relay.yaml; "
                     "without it the API endpoints' secrets cannot be read")
    return key_from_text(text)


class SecretBox:
    """Seals and opens endpoint secrets under one key.

    The key may come from a loader called at first use (`from_file`): a relay
    whose API never makes an endpoint never creates a key file.
    """

    __slots__ = ("_aead", "_load")

    def __init__(self, key: bytes | None = None, *,
                 load: Callable[[], bytes] | None = None) -> None:
        self._aead = AESGCM(key) if key is not None else None
        self._load = load

    @classmethod
    def from_file(cls, path: Path) -> SecretBox:
        return cls(load=lambda: load_or_create_key(path))

    def __repr__(self) -> str:
        return "SecretBox(<key>)"

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            assert self._load is not None
            self._aead = AESGCM(self._load())
        return self._aead

    def seal(self, plaintext: bytes, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._cipher().encrypt(nonce, plaintext, context.encode())
        return _PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> bytes:
        if not sealed.startswith(_PREFIX):
            raise SecretsUnreadable(f"the secret of {context!r} is not sealed in a known format")
        try:
            raw = base64.b64decode(sealed[len(_PREFIX):], validate=True)
            return self._cipher().decrypt(raw[:12], raw[12:], context.encode())
        except (binascii.Error, ValueError, InvalidTag):
            raise SecretsUnreadable(
                f"the secret of {context!r} does not open with this relay's secrets_key "
                "(another key, or the row was altered)") from None

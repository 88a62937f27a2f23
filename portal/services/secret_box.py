"""Credentials Foyer must replay to other systems (a CalDAV password, an API key, a webhook's shared
secret) cannot be hashed like our own tokens, so they are encrypted at rest with a key derived from
the app's SECRET_KEY: a database dump alone does not reveal them."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretUnreadable(Exception):
    """The stored secret was sealed with another SECRET_KEY (or altered): enter it again."""


def _fernet(app_secret: bytes) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"foyer secret box v1").derive(
        app_secret
    )
    return Fernet(base64.urlsafe_b64encode(key))


def seal(app_secret: bytes, plaintext: str) -> str:
    """Encrypt (authenticated, with a random IV): the same secret seals differently each time."""
    return _fernet(app_secret).encrypt(plaintext.encode()).decode("ascii")


def unseal(app_secret: bytes, sealed: str) -> str:
    try:
        return _fernet(app_secret).decrypt(sealed.encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise SecretUnreadable("the stored secret cannot be read with this SECRET_KEY") from exc

"""Signed door-event webhooks, on Verkada's model: the header is `<timestamp>|<signature>`, where
the signature is the hex HMAC-SHA256 of `body + "|" + timestamp` under the shared secret. A check
in constant time, within a window around our clock, proves the body came from the holder of the
secret and is not an old recording played back (de-duplication by event id does the rest)."""

from __future__ import annotations

import hashlib
import hmac
import re

HEADER = "X-Foyer-Signature"
WINDOW_SECONDS = 300  # five minutes either side of our clock
_HEADER_SHAPE = re.compile(r"(\d{1,12})\|([0-9a-fA-F]{64})")


class SignatureRejected(Exception):
    """Why a webhook is refused: missing or malformed header, a wrong signature, or a timestamp
    outside the window. Logged; the sender only learns "401"."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value a sender puts on `body`."""
    mac = hmac.new(secret.encode(), body + b"|" + str(timestamp).encode(), hashlib.sha256)
    return f"{timestamp}|{mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str | None, *, now: float) -> int:
    """The header's timestamp when the signature is right and fresh; SignatureRejected otherwise."""
    match = _HEADER_SHAPE.fullmatch((header or "").strip())
    if not match:
        raise SignatureRejected("missing or malformed signature header")
    timestamp = int(match[1])
    expected = sign(secret, body, timestamp).partition("|")[2]
    # Compare before looking at the clock, so timing says nothing about which part was wrong.
    valid = hmac.compare_digest(expected, match[2].lower())
    if not valid:
        raise SignatureRejected("signature does not match")
    if abs(now - timestamp) > WINDOW_SECONDS:
        raise SignatureRejected(f"timestamp {timestamp} is outside the {WINDOW_SECONDS} s window")
    return timestamp

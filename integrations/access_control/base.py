"""The contract every access-control adapter implements: create a time-boxed credential for one
person, a window and a door group, and revoke it again.

An adapter speaks one system's protocol and nothing else: it does not touch the database, decide
when to grant or retry. Cloud systems (Kisi, Brivo, Verkada, Genetec, HID Origo ...) all follow
this pattern for visitors; a vendor bridge speaking the REST contract in `rest.py` connects any of
them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class AccessError(Exception):
    """The system could not be used. `transient` errors (timeouts, refused connections, 429, 5xx)
    are retried with backoff; the others (a wrong API key, an unknown door group) wait for an
    admin. `retry_after` is the server's own hint in seconds (HTTP Retry-After), when it gave one."""

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


@dataclass(frozen=True)
class CredentialRequest:
    reference: (
        str  # Foyer's own id for the grant (e.g. "foyer-grant-42"): repeats are one credential
    )
    person_name: str
    person_email: str
    person_kind: str  # "visitor" | "employee"
    door_group: str
    valid_from: datetime  # aware
    valid_until: datetime  # aware


class AccessProvider(Protocol):
    def create_credential(self, request: CredentialRequest) -> str:
        """Create (or, for a reference already used, find) the credential; return its id."""
        ...

    def revoke_credential(self, credential_id: str) -> None:
        """Revoke it; a credential that is already gone is not an error."""
        ...

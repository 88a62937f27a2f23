"""Domain errors raised by services and mapped to responses in one place (portal/web_errors.py)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """Also used when the object exists but the user may not see it: ids are not confirmed."""

    status = 404


class Forbidden(DomainError):
    status = 403


class Conflict(DomainError):
    status = 409


class RuleViolation(DomainError):
    """A broken rule, carrying field -> message pairs that the view maps back onto its form,
    the name of the rule that refused, and (for bookings) the nearest alternatives."""

    status = 422

    def __init__(
        self, errors: dict[str, str] | str, rule: str = "", alternatives: list[Any] | None = None
    ) -> None:
        self.errors = {"": errors} if isinstance(errors, str) else dict(errors)
        self.rule = rule
        self.alternatives = alternatives or []
        super().__init__("; ".join(self.errors.values()))


class SlotTaken(RuleViolation):
    """Someone else holds that time: the answer to losing a booking race."""

    status = 409

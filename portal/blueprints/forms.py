"""What many views' forms share: putting a service's refusal beside the fields it names, and a
whole-number field whose error reads as plain language."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import IntegerField

from portal.errors import RuleViolation


def apply_violation(form: FlaskForm, violation: RuleViolation) -> str:
    """Put the service's messages beside their fields; returns what belongs to no field."""
    rest = []
    for name, message in violation.errors.items():
        field = getattr(form, name, None) if name else None
        if field is not None and hasattr(field, "errors"):
            field.errors = [*list(field.errors), message]
        else:
            rest.append(message)
    return " ".join(rest)


class WholeNumberField(IntegerField):
    """An integer field whose parse error reads as plain language."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist or valuelist[0] in ("", None):
            self.data = None
            return
        try:
            self.data = int(str(valuelist[0]).strip())
        except ValueError as exc:
            self.data = None
            raise ValueError("Enter a whole number.") from exc

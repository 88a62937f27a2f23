"""What the kiosk says when something cannot go ahead, in the visitor's language.

Services name the rule that refused (`RuleViolation.rule`) and the fields concerned; the kiosk
never shows their English, only these sentences, written for a stranger in a hurry: what happened
and what to do next, without a hint of anything they need not know."""

from __future__ import annotations

from flask_babel import gettext, lazy_gettext

from portal.errors import RuleViolation
from portal.services import visitors

# One sentence per rule, shown beside the field the rule is about.
RULES = {
    "code_format": lazy_gettext(
        "That does not look like an invitation code. It has 8 letters and numbers, like K7QF-2M9X."
    ),
    "invitation_unknown": lazy_gettext(
        "We could not find that code. Please check it, or find your name instead."
    ),
    "invitation_expired": lazy_gettext(
        "This invitation was for an earlier day. Please see reception."
    ),
    "invitation_later": lazy_gettext(
        "This invitation is for a later day. Please check the date in your invitation, "
        "or see reception."
    ),
    "invitation_used": lazy_gettext(
        "This invitation has already been used to check in. Please see reception."
    ),
    "invitation_site": lazy_gettext(
        "This invitation is for another office. Please check the address in your invitation."
    ),
    "invitation_cancelled": lazy_gettext("This invitation was cancelled. Please see reception."),
    "host_unknown": lazy_gettext("Please choose the person you are visiting from the list."),
    "host_inactive": lazy_gettext("This person is not available. Please see reception."),
    "badge_unknown": lazy_gettext(
        "We could not read that badge. Please try again, or find your name instead."
    ),
    "badge_site": lazy_gettext("This badge is from another office. Please see reception."),
    "already_checked_out": lazy_gettext("You are already checked out. Thank you for visiting!"),
    "submission_other_site": lazy_gettext("Something went wrong. Please start again."),
    "pairing_code_format": lazy_gettext(
        "A pairing code has 8 letters and numbers, like K7QF-2M9X."
    ),
    "pairing_code_unknown": lazy_gettext(
        "That code is not valid. Check it in Foyer's kiosk settings and try again."
    ),
    "pairing_code_expired": lazy_gettext(
        "That code has expired. Create a new one in Foyer's kiosk settings."
    ),
}

# Which form field each rule's sentence belongs beside.
RULE_FIELDS = {
    "code_format": "code",
    "invitation_unknown": "code",
    "invitation_expired": "code",
    "invitation_later": "code",
    "invitation_used": "code",
    "invitation_site": "code",
    "invitation_cancelled": "code",
    "host_unknown": "host",
    "host_inactive": "host",
    "badge_unknown": "code",
    "badge_site": "code",
    "already_checked_out": "code",
    "pairing_code_format": "code",
    "pairing_code_unknown": "code",
    "pairing_code_expired": "code",
}

SOMETHING_WRONG = lazy_gettext("Something went wrong. Please start again.")


def too_long(limit: int) -> str:
    return gettext("Please use at most %(limit)d characters.", limit=limit)


def for_rule(error: RuleViolation) -> dict[str, str]:
    """The visitor's sentence for a refusal, keyed by the field it belongs beside."""
    message = RULES.get(error.rule)
    if message is None:
        return {"": str(SOMETHING_WRONG)}
    return {RULE_FIELDS.get(error.rule, ""): str(message)}


def detail_problems(values: dict[str, str]) -> dict[str, str]:
    """Shape checks of a visitor's details (name, e-mail, company, purpose), in their language.
    The same limits as `VisitorDetails.problems`, which the service checks again."""
    details = visitors.VisitorDetails.from_form(
        values.get("name"), values.get("email"), values.get("company"), values.get("purpose")
    )
    errors: dict[str, str] = {}
    service = details.problems()
    if not details.name:
        errors["name"] = gettext("Please enter your full name.")
    elif "name" in service:
        errors["name"] = too_long(visitors.NAME_MAX)
    if "email" in service:
        if len(details.email) > 254:
            errors["email"] = too_long(254)
        else:
            errors["email"] = gettext(
                "Please enter an e-mail address like name@example.com, or leave it empty."
            )
    if "company" in service:
        errors["company"] = too_long(visitors.COMPANY_MAX)
    if "purpose" in service:
        errors["purpose"] = too_long(visitors.PURPOSE_MAX)
    return errors


def signing_problems(errors: dict[str, str], signed_name: str) -> dict[str, str]:
    """The service's signing refusals (typed name, drawn signature) in the visitor's language."""
    mine: dict[str, str] = {}
    if "signed_name" in errors:
        mine["signed_name"] = (
            too_long(visitors.NAME_MAX)
            if signed_name.strip()
            else gettext("Please type your full name to sign.")
        )
    if "signature" in errors:
        mine["signature"] = gettext("Please sign with your finger in the box.")
    return mine

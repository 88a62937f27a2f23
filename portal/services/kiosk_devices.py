"""Lobby kiosk devices: created by an admin, paired once with a short code, then known by a
long-lived token of their own, revocable one device at a time.

Only SHA-256 digests of codes and tokens are stored. A pairing code is short enough to type on a
tablet and lives for minutes; the device token never expires (a kiosk page stays open for days) but
dies the moment the device is revoked or paired again."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import NotFound, RuleViolation
from portal.models import KioskDevice, Site
from portal.services import audit
from portal.services.audit import Actor
from portal.services.login_sessions import token_hash as digest  # one SHA-256 for every token

PAIRING_LIFETIME = timedelta(minutes=10)
# No 0/O, 1/I/L, 5/S, 8/B: a code read off one screen and typed on another must survive it.
CODE_ALPHABET = "2346779ACDEFGHJKMNPQRTUVWXYZ"
CODE_LENGTH = 8
SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often


def normalise_code(typed: str) -> str:
    """What people type: lower case, spaces and dashes ("k7qf-2m9x") all mean the same code."""
    return re.sub(r"[^0-9A-Z]", "", typed.upper())


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def create(
    session: Session, actor: Actor, site: Site, name: str, *, now: datetime
) -> tuple[KioskDevice, str]:
    """A new kiosk for a site's lobby, with its first pairing code (shown once, as "K7QF-2M9X")."""
    name = name.strip()
    if not name:
        raise RuleViolation({"name": "Give the kiosk a name, e.g. “Main lobby”."}, "kiosk_name")
    if len(name) > 120:
        raise RuleViolation({"name": "Use at most 120 characters."}, "kiosk_name")
    device = KioskDevice(site_id=site.id, name=name, created_by_id=actor.user_id)
    session.add(device)
    session.flush()
    code = _start_pairing(device, now)
    audit.record(session, actor, "kiosk.created", device, after={"name": name, "site": site.slug})
    return device, format_code(code)


def new_pairing_code(session: Session, actor: Actor, device: KioskDevice, *, now: datetime) -> str:
    """Pair (again): the code replaces any earlier one. The tablet paired so far keeps working
    until the new code is used, so re-pairing a spare tablet does not blank the lobby."""
    code = _start_pairing(device, now)
    audit.record(session, actor, "kiosk.pairing_code_issued", device)
    return format_code(code)


def _start_pairing(device: KioskDevice, now: datetime) -> str:
    code = new_code()
    device.pairing_code_hash = digest(code)
    device.pairing_expires_at = now + PAIRING_LIFETIME
    return code


class PairingRefused(RuleViolation):
    pass


def pair(
    session: Session, typed_code: str, *, now: datetime, ip_address: str = ""
) -> tuple[KioskDevice, str]:
    """Trade a pairing code for the device's own token. The code works once."""
    code = normalise_code(typed_code)
    if len(code) != CODE_LENGTH:
        raise PairingRefused(
            {"code": f"A pairing code has {CODE_LENGTH} letters and digits, like K7QF-2M9X."},
            "pairing_code_format",
        )
    device = session.scalar(
        select(KioskDevice)
        .where(KioskDevice.pairing_code_hash == digest(code))
        .with_for_update(of=KioskDevice)
    )
    if device is None or device.revoked_at is not None:
        raise PairingRefused(
            {"code": "That code is not valid. Check it in the admin view and try again."},
            "pairing_code_unknown",
        )
    if device.pairing_expires_at is None or device.pairing_expires_at <= now:
        raise PairingRefused(
            {"code": "That code has expired. Ask an admin for a new one."},
            "pairing_code_expired",
        )
    token = secrets.token_urlsafe(32)
    device.token_hash = digest(token)
    device.pairing_code_hash = None
    device.pairing_expires_at = None
    device.paired_at = now
    device.last_seen_at = now
    audit.record(
        session,
        Actor(None, f"kiosk:{device.id}", ip_address=ip_address),
        "kiosk.paired",
        device,
    )
    return device, token


def authenticate(session: Session, token: str | None, *, now: datetime) -> KioskDevice | None:
    """The paired, unrevoked device holding this token, or None. Notes when it was last seen."""
    if not token or len(token) > 200:
        return None
    device = session.scalar(select(KioskDevice).where(KioskDevice.token_hash == digest(token)))
    if device is None or device.revoked_at is not None:
        return None
    if device.last_seen_at is None or now - device.last_seen_at >= SEEN_EVERY:
        device.last_seen_at = now
    return device


def revoke(session: Session, actor: Actor, device: KioskDevice, *, now: datetime) -> None:
    if device.revoked_at is not None:
        return
    device.revoked_at = now
    device.token_hash = None
    device.pairing_code_hash = None
    device.pairing_expires_at = None
    audit.record(session, actor, "kiosk.revoked", device)


def update_printer(
    session: Session, actor: Actor, device: KioskDevice, *, printer_uri: str, label_stock: str
) -> None:
    # Label rendering needs Pango: imported only when printing is configured or used.
    from integrations.printing import parse_printer_uri
    from portal.services.badges import LABEL_STOCKS

    errors: dict[str, str] = {}
    printer_uri = printer_uri.strip()
    if printer_uri:
        try:
            parse_printer_uri(printer_uri)
        except ValueError as exc:
            errors["printer_uri"] = str(exc)
    if label_stock not in LABEL_STOCKS:
        errors["label_stock"] = "Choose one of the label sizes offered."
    if errors:
        raise RuleViolation(errors, "kiosk_printer")
    before = {"printer_uri": device.printer_uri, "label_stock": device.label_stock}
    device.printer_uri = printer_uri
    device.label_stock = label_stock
    audit.record(
        session,
        actor,
        "kiosk.printer_changed",
        device,
        before=before,
        after={"printer_uri": printer_uri, "label_stock": label_stock},
    )


def get(session: Session, device_id: int) -> KioskDevice:
    device = session.get(KioskDevice, device_id)
    if device is None:
        raise NotFound("No such kiosk.")
    return device


def for_sites(session: Session, site_ids: set[int] | None) -> list[KioskDevice]:
    """Kiosks an admin (None: every site) or a site's coordinator may manage, newest first."""
    query = select(KioskDevice).order_by(KioskDevice.site_id, KioskDevice.name, KioskDevice.id)
    if site_ids is not None:
        query = query.where(KioskDevice.site_id.in_(site_ids))
    return list(session.scalars(query))

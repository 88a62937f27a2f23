"""Which adapter speaks to a linked calendar: `adapter_for(link, app_secret)` builds it from the
link's provider, its plain settings and its sealed secret. Each provider's settings, and which of
them are required, are listed here once (the admin form is built from the same table)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from integrations.calendar_sync.base import RemoteCalendar, SyncError
from portal.services import secret_box

TIMEOUT = 10.0  # seconds per request to the other system


@dataclass(frozen=True)
class SettingField:
    name: str
    label: str
    required: bool = True
    hint: str = ""
    url: bool = False  # must be an http(s) address


@dataclass(frozen=True)
class ProviderSpec:
    label: str
    fields: tuple[SettingField, ...]
    secret_label: str
    secret_hint: str


PROVIDERS: dict[str, ProviderSpec] = {
    "caldav": ProviderSpec(
        "CalDAV (Radicale, Nextcloud, Baikal, iCloud ...)",
        (
            SettingField(
                "url",
                "Calendar address",
                hint="The calendar collection, e.g. https://dav.example.com/rooms/aurora/",
                url=True,
            ),
            SettingField("username", "User name"),
        ),
        "Password",
        "An app password for the calendar account.",
    ),
    "m365": ProviderSpec(
        "Microsoft 365 room mailbox",
        (
            SettingField("tenant_id", "Tenant (directory) ID"),
            SettingField("client_id", "Application (client) ID"),
            SettingField("mailbox", "Room mailbox", hint="e.g. aurora@contoso.com"),
            SettingField("login_base", "Sign-in address", required=False, url=True),
            SettingField("graph_base", "Graph address", required=False, url=True),
        ),
        "Client secret",
        "The app registration's client secret (application permission Calendars.ReadWrite).",
    ),
    "google": ProviderSpec(
        "Google Workspace resource calendar",
        (
            SettingField(
                "calendar_id",
                "Calendar ID",
                hint="The resource's calendar, e.g. c_188...@resource.calendar.google.com",
            ),
            SettingField("api_base", "Calendar API address", required=False, url=True),
        ),
        "Service-account key (JSON)",
        "The JSON key of a service account with access to the resource calendar.",
    ),
}


def adapter_for(link: Any, app_secret: bytes) -> RemoteCalendar:
    """The adapter for a CalendarLink (anything with provider, settings and secret_sealed).
    A secret sealed with another SECRET_KEY, or settings that do not fit, raise SyncError."""
    settings: dict[str, str] = dict(link.settings or {})
    try:
        secret = secret_box.unseal(app_secret, link.secret_sealed) if link.secret_sealed else ""
    except secret_box.SecretUnreadable as exc:
        raise SyncError(
            "the stored password or key cannot be read with this SECRET_KEY: enter it again",
            transient=False,
        ) from exc
    return build(link.provider, settings, secret)


def build(provider: str, settings: dict[str, str], secret: str) -> RemoteCalendar:
    optional = {k: v for k, v in settings.items() if v}
    if provider == "caldav":
        from integrations.calendar_sync.caldav_adapter import CalDavCalendar

        return CalDavCalendar(
            settings.get("url", ""), settings.get("username", ""), secret, timeout=TIMEOUT
        )
    if provider == "m365":
        from integrations.calendar_sync.graph import GraphRoomCalendar  # written by "vendors"

        extra = {k: optional[k] for k in ("login_base", "graph_base") if k in optional}
        return GraphRoomCalendar(
            settings.get("tenant_id", ""),
            settings.get("client_id", ""),
            secret,
            settings.get("mailbox", ""),
            timeout=TIMEOUT,
            **extra,
        )
    if provider == "google":
        from integrations.calendar_sync.google import GoogleResourceCalendar

        try:
            info = json.loads(secret) if secret else {}
        except ValueError as exc:
            raise SyncError("the service-account key is not valid JSON", transient=False) from exc
        extra = {k: optional[k] for k in ("api_base",) if k in optional}
        return GoogleResourceCalendar(
            info, settings.get("calendar_id", ""), timeout=TIMEOUT, **extra
        )
    raise SyncError(f"unknown calendar provider {provider!r}", transient=False)

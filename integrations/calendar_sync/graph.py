"""A Microsoft 365 room mailbox's calendar as a `base.RemoteCalendar`, over Microsoft Graph v1.0.

Plain `requests`: msal refuses plain-http authorities (so it cannot be tested on loopback) and the
client-credentials grant is one form POST. The app registration needs the *application* permission
Calendars.ReadWrite, best scoped to the room mailboxes with an Exchange application access policy.

- Listing: the calendarView delta query (`/users/{room}/calendarView/delta`) over a window from a day
  ago to `window_days` ahead. Graph expands series into occurrences there, so every occurrence is
  its own event (own id and iCalUId) and `RemoteEvent.recurrence` is always "". The window is fixed
  by the round's first request, so the token remembers when it ends and a token whose window runs
  short raises `Gone`: the engine's full listing then starts a fresh window.
- UIDs: Exchange assigns `iCalUId` itself and ignores one sent by a client, so an event Foyer puts
  carries the booking's UID in `transactionId` (Graph's documented idempotency key for creates: a
  retried POST after a lost answer returns the first event instead of a duplicate). When reading,
  an event whose transactionId is a Foyer UID reports it as `uid`; every other event reports its
  `iCalUId`. The engine therefore matches pushed events by remote id or by UID, as for CalDAV.
- Declining: an event someone invited the room to is declined with `/decline` (the organiser gets
  the room's answer, and Exchange removes it from the room's calendar); an event the room itself
  organises (someone wrote straight into the room's calendar) cannot be declined, so it is deleted.

No Flask here; no database."""

from __future__ import annotations

import re
import threading
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from integrations.calendar_sync.base import Changes, Gone, RemoteEvent, SyncError, throttled
from integrations.ical import CalendarEvent, EventStatus
from integrations.retry_after import retry_after_seconds

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
TOKEN_VERSION = "graph1"  # noqa: S105 - prefix of our sync tokens, so a token of another shape is refused  # nosec B105
PAGE_SIZE = 100  # Prefer: odata.maxpagesize
MAX_PAGES = 500  # a server that never ends a round is broken, not busy
TOKEN_EARLY_EXPIRY = 60  # seconds: renew a little before Azure's token really expires


def _uid_from_foyer(value: str) -> bool:
    """Foyer's booking UIDs look like `booking-<id>@<host>` (integrations/ical.py booking_uid)."""
    return bool(re.fullmatch(r"booking-\d+@[^\s@]+", value or ""))


class GraphRoomCalendar:
    """The calendar of one room mailbox (`mailbox` is its address or user id)."""

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        mailbox: str,
        *,
        login_base: str = "https://login.microsoftonline.com",
        graph_base: str = "https://graph.microsoft.com/v1.0",
        timeout: float = 10.0,
        window_days: int = 400,
        page_size: int = PAGE_SIZE,
        session: requests.Session | None = None,
    ) -> None:
        if not (tenant_id and client_id and client_secret and mailbox):
            raise ValueError("tenant id, client id, client secret and mailbox are all required")
        self.tenant_id = tenant_id.strip()
        self.client_id = client_id.strip()
        self._client_secret = client_secret
        self.mailbox = mailbox.strip()
        self.login_base = login_base.rstrip("/")
        self.graph_base = graph_base.rstrip("/")
        self.timeout = timeout
        self.page_size = page_size
        self.window_days = window_days
        self._http = session or requests.Session()
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = threading.Lock()

    def __repr__(self) -> str:  # never the secret
        return f"GraphRoomCalendar(tenant={self.tenant_id!r}, mailbox={self.mailbox!r})"

    # --- the contract -------------------------------------------------------------------------

    def changes_since(self, token: str | None) -> Changes:
        if token is None:
            now = datetime.now(UTC)
            window_end = (now + timedelta(days=self.window_days)).replace(microsecond=0)
            query = urlencode(
                {
                    "startDateTime": _graph_time(now - timedelta(days=1)),
                    "endDateTime": _graph_time(window_end),
                }
            )
            url = f"{self._events_root()}/calendarView/delta?{query}"
            full = True
        else:
            window_end, url = self._parse_token(token)
            # Renew the window once a fifth of it is used up, so new bookings never fall outside.
            if window_end - datetime.now(UTC) < timedelta(days=self.window_days * 0.8):
                raise Gone("the calendar window of this sync token is ending")
            full = False

        changed: dict[str, RemoteEvent] = {}
        deleted: dict[str, None] = {}
        for _page in range(MAX_PAGES):
            try:
                body = self._request(
                    "GET", url, prefer_page_size=True, what="list the room's events"
                )
            except _NotFound as exc:
                raise SyncError(
                    f"Microsoft 365 has no mailbox {self.mailbox} this app may read ({exc})",
                    transient=False,
                ) from None
            for item in _list_of_dicts(body.get("value"), "value"):
                event_id = str(item.get("id") or "")
                if not event_id:
                    raise SyncError("Graph listed an event without an id", transient=False)
                if "@removed" in item:
                    changed.pop(event_id, None)
                    deleted[event_id] = None
                else:
                    deleted.pop(event_id, None)
                    changed[event_id] = parse_event(item)
            if next_link := body.get("@odata.nextLink"):
                url = self._checked_link(next_link)
                continue
            if delta_link := body.get("@odata.deltaLink"):
                self._checked_link(delta_link)
                next_token = f"{TOKEN_VERSION}|{window_end.isoformat()}|{delta_link}"
                return Changes(list(changed.values()), list(deleted), next_token, full)
            raise SyncError(
                "Graph ended a delta page without a nextLink or deltaLink", transient=False
            )
        raise SyncError(f"Graph's delta round did not end within {MAX_PAGES} pages", transient=True)

    def put(self, event: CalendarEvent, remote_id: str | None, etag: str | None) -> tuple[str, str]:
        payload = event_payload(event)
        if remote_id is not None:
            try:
                body = self._request(
                    "PATCH",
                    f"{self._events_root()}/events/{quote(remote_id, safe='')}",
                    json=payload,
                    if_match=etag,
                    what="update the event",
                )
                return _id_and_etag(body)
            except _NotFound:
                pass  # removed on the server in the meantime: create it again
        payload["transactionId"] = event.uid  # makes a retried create return the first event
        body = self._request(
            "POST", f"{self._events_root()}/events", json=payload, what="create the event"
        )
        return _id_and_etag(body)

    def delete(self, remote_id: str, etag: str | None) -> None:
        # No If-Match: a booking cancelled in Foyer must leave the room's calendar even if someone
        # changed the event there since the last sync.
        with suppress(_NotFound):  # already gone
            self._request(
                "DELETE",
                f"{self._events_root()}/events/{quote(remote_id, safe='')}",
                what="delete the event",
            )

    def decline(self, event: RemoteEvent, reason: str) -> None:
        path = f"{self._events_root()}/events/{quote(event.remote_id, safe='')}"
        try:
            if event.organizer_email.lower() == self.mailbox.lower():
                self._request("DELETE", path, what="remove the event")
            else:
                self._request(
                    "POST",
                    f"{path}/decline",
                    json={"comment": reason, "sendResponse": True},
                    what="decline the event",
                )
        except _NotFound:
            pass  # already gone: nothing left to refuse

    def check(self) -> str:
        """Test the connection (the admin's button): sign in and read the room's calendar.
        Returns the name Exchange shows for it."""
        try:
            body = self._request(
                "GET", f"{self._events_root()}/calendar", what="read the room's calendar"
            )
        except _NotFound as exc:
            raise SyncError(
                f"Microsoft 365 has no mailbox {self.mailbox} this app may read ({exc})",
                transient=False,
            ) from None
        owner = body.get("owner") if isinstance(body.get("owner"), dict) else {}
        return str(owner.get("name") or body.get("name") or self.mailbox)

    # --- HTTP ---------------------------------------------------------------------------------

    def _events_root(self) -> str:
        return f"{self.graph_base}/users/{quote(self.mailbox, safe='@')}"

    def _parse_token(self, token: str) -> tuple[datetime, str]:
        try:
            version, window_end_text, link = token.split("|", 2)
            window_end = datetime.fromisoformat(window_end_text)
        except ValueError:
            raise Gone("the sync token is not one this adapter wrote") from None
        if version != TOKEN_VERSION or window_end.tzinfo is None:
            raise Gone("the sync token is not one this adapter wrote")
        return window_end, self._checked_link(link)

    def _checked_link(self, link: Any) -> str:
        """Paging links come from the server; follow only those on the Graph base URL, so a
        tampered token or answer cannot send the bearer token elsewhere."""
        if not isinstance(link, str) or not link.startswith(self.graph_base + "/"):
            raise SyncError(
                "Graph answered with a paging link outside its own API", transient=False
            )
        return link

    def _access_token(self, *, renew: bool = False) -> str:
        with self._token_lock:
            if not renew and self._token and time.monotonic() < self._token_expires:
                return self._token
            url = f"{self.login_base}/{quote(self.tenant_id, safe='')}/oauth2/v2.0/token"
            form = {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self._client_secret,
                "scope": GRAPH_SCOPE,
            }
            try:
                response = self._http.post(url, data=form, timeout=self.timeout)
            except requests.Timeout:
                raise SyncError(
                    f"Microsoft sign-in did not answer within {self.timeout:g} s", transient=True
                ) from None
            except requests.RequestException as exc:
                raise SyncError(
                    f"Microsoft sign-in could not be reached: {_short(exc)}", transient=True
                ) from None
            body = _json_or_none(response)
            if response.status_code != 200:
                error = _token_error(body) or f"HTTP {response.status_code}"
                raise _http_error(
                    f"Microsoft sign-in refused the app registration: {error}",
                    transient=response.status_code == 429 or response.status_code >= 500,
                    response=response,
                )
            token = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise SyncError(
                    "Microsoft sign-in answered without an access token", transient=False
                )
            try:
                lifetime = float(body.get("expires_in", 3599))
            except (TypeError, ValueError):
                lifetime = 300.0
            self._token = token
            self._token_expires = time.monotonic() + max(lifetime - TOKEN_EARLY_EXPIRY, 0.0)
            return token

    def _request(
        self,
        method: str,
        url: str,
        *,
        json: dict[str, Any] | None = None,
        if_match: str | None = None,
        prefer_page_size: bool = False,
        what: str,
    ) -> dict[str, Any]:
        prefer = 'outlook.timezone="UTC"'
        if prefer_page_size:
            prefer += f", odata.maxpagesize={self.page_size}"
        headers = {"Prefer": prefer, "Accept": "application/json"}
        if if_match:
            headers["If-Match"] = if_match
        for attempt in (1, 2):
            headers["Authorization"] = f"Bearer {self._access_token(renew=attempt == 2)}"
            try:
                response = self._http.request(
                    method, url, json=json, headers=headers, timeout=self.timeout
                )
            except requests.Timeout:
                raise SyncError(
                    f"Microsoft Graph did not answer within {self.timeout:g} s ({what})",
                    transient=True,
                ) from None
            except requests.RequestException as exc:
                raise SyncError(
                    f"Microsoft Graph could not be reached ({what}): {_short(exc)}", transient=True
                ) from None
            if response.status_code == 401 and attempt == 1:
                continue  # the cached token may have been revoked: one fresh token, one retry
            break
        return self._answer(response, what)

    def _answer(self, response: requests.Response, what: str) -> dict[str, Any]:
        status = response.status_code
        if 200 <= status < 300 and not response.content.strip():
            return {}  # 204 No Content, or Graph's 202 Accepted for /decline
        body = _json_or_none(response)
        if 200 <= status < 300:
            if not isinstance(body, dict):
                raise SyncError(
                    f"Microsoft Graph answered with malformed JSON ({what})", transient=False
                )
            return body
        code, message = _graph_error(body)
        detail = f"{code}: {message}" if code else (message or f"HTTP {status}")
        if status == 404:
            raise _NotFound(detail)
        if status == 410 or code.lower() in ("syncstatenotfound", "resyncrequired"):
            raise Gone(f"Graph's delta token expired ({detail})")
        if status in (401, 403):
            raise SyncError(
                f"Microsoft Graph refused access to {self.mailbox} ({what}, HTTP {status}): "
                f"{detail}. Check the app's Calendars.ReadWrite permission and admin consent.",
                transient=False,
            )
        if status == 412:
            raise SyncError(
                f"the event changed in Microsoft 365 since the last sync ({what}); the next sync "
                "reads the new version",
                transient=True,
            )
        raise _http_error(
            f"Microsoft Graph could not {what} (HTTP {status}): {detail}",
            transient=status in (408, 429) or status >= 500,
            response=response,
        )


class _NotFound(SyncError):
    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


# --- JSON <-> values ----------------------------------------------------------------------------


def parse_event(item: dict[str, Any]) -> RemoteEvent:
    """One Graph `event` resource as a RemoteEvent. Raises SyncError on a shape Graph never sends."""
    try:
        event_id = str(item["id"])
        start = parse_date_time_time_zone(item["start"])
        end = parse_date_time_time_zone(item["end"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SyncError(
            f"Graph sent an event Foyer cannot read: {_short(exc)}", transient=False
        ) from None
    transaction_id = str(item.get("transactionId") or "")
    uid = (
        transaction_id
        if _uid_from_foyer(transaction_id)
        else str(item.get("iCalUId") or "") or f"{event_id}@graph.microsoft.com"
    )
    organizer = (item.get("organizer") or {}).get("emailAddress") or {}
    return RemoteEvent(
        remote_id=event_id,
        uid=uid,
        etag=str(item.get("@odata.etag") or item.get("changeKey") or ""),
        start=start,
        end=end,
        summary=str(item.get("subject") or ""),
        organizer_email=str(organizer.get("address") or ""),
        organizer_name=str(organizer.get("name") or ""),
        cancelled=bool(item.get("isCancelled")),
    )


def parse_date_time_time_zone(value: dict[str, Any]) -> datetime:
    """Graph's dateTimeTimeZone (`{"dateTime": "2016-12-09T20:30:00.0000000", "timeZone": "UTC"}`)
    as an aware datetime. The zone is UTC when we asked for it, but may be a Windows zone name
    ("Pacific Standard Time") or an IANA one in other answers."""
    text = str(value["dateTime"])
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # Graph writes 7 fractional digits
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=_zone(str(value.get("timeZone") or "UTC")))


def _zone(name: str) -> Any:
    if name.upper() in ("UTC", "Z", "GMT", "COORDINATED UNIVERSAL TIME"):
        return UTC
    try:
        return ZoneInfo(WINDOWS_TO_OLSON.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def event_payload(event: CalendarEvent) -> dict[str, Any]:
    """The Graph `event` JSON for a Foyer booking: local times in the site's zone (Graph takes IANA
    names), and who booked it in the body. Bookers are not added as attendees: Exchange would
    send them a second invitation besides Foyer's own."""
    zone = ZoneInfo(event.time_zone)
    lines = [event.description] if event.description else []
    if event.attendees:
        booker = event.attendees[0]
        lines.append(f"Booked in Foyer by {booker.name or booker.email} <{booker.email}>.")
    cancelled = event.status is EventStatus.CANCELLED
    return {
        "subject": f"Cancelled: {event.summary}" if cancelled else event.summary,
        "body": {"contentType": "text", "content": "\n\n".join(lines)},
        "start": {"dateTime": _local(event.start, zone), "timeZone": event.time_zone},
        "end": {"dateTime": _local(event.end, zone), "timeZone": event.time_zone},
        "location": {"displayName": event.location},
        "showAs": {EventStatus.TENTATIVE: "tentative", EventStatus.CANCELLED: "free"}.get(
            event.status, "busy"
        ),
        "isReminderOn": False,
        "responseRequested": False,
    }


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")


def _graph_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id_and_etag(body: dict[str, Any]) -> tuple[str, str]:
    event_id = body.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise SyncError("Microsoft Graph answered without the event's id", transient=False)
    return event_id, str(body.get("@odata.etag") or body.get("changeKey") or "")


def _list_of_dicts(value: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise SyncError(f"Microsoft Graph answered without a list in {name!r}", transient=False)
    return value


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _graph_error(body: Any) -> tuple[str, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or "")
    return "", ""


def _token_error(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    description = str(body.get("error_description") or "").split("\r\n")[0].split("\n")[0]
    return ": ".join(part for part in (str(body.get("error") or ""), description) if part)


def _http_error(message: str, *, transient: bool, response: requests.Response) -> SyncError:
    """The engine waits at least as long as the server's Retry-After asks."""
    delay = retry_after_seconds(response.headers.get("Retry-After"))
    return throttled(message, transient=transient, retry_after=delay)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."

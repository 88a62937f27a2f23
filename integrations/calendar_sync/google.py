"""A Google Workspace resource (room) calendar as a `base.RemoteCalendar`, over Calendar API v3.

Signs in with a service account, the documented OAuth 2.0 flow for server apps: an RS256 JWT
assertion signed with the account's private key (joserfc, which Authlib itself is built on; Authlib's
own `authlib.jose` is deprecated and warns) is exchanged at the key file's `token_uri` for an access
token. The service account either has the room calendar shared with it ("Make changes to events")
or acts for a Workspace user through domain-wide delegation (`subject`, or a `"subject"` entry added
to the key file's JSON).

- Listing: events.list with `showDeleted` and sync tokens (`nextSyncToken`, `pageToken`); an
  event with status "cancelled" is a deletion; HTTP 410 (`fullSyncRequired`) raises `Gone`. Series
  come as one event with its `recurrence` array, reported as the RRULE text; a changed occurrence
  of a series comes as its own event and reports `<iCalUID>#<original start>` as its UID. Events
  that ended more than a day ago are left out: Foyer books only what is still ahead.
- UIDs: an event Foyer puts is inserted with the booking's UID as `iCalUID`, so it reads back with
  the same UID (and a retried insert finds the first one by that UID instead of duplicating it).
- Declining: a room calendar answers as an attendee, so the room's attendee entry gets
  responseStatus "declined" with the reason as its comment (the organiser sees it on their copy);
  an event written straight into the room's calendar, without the room as an attendee, is deleted.

No Flask here; no database."""

from __future__ import annotations

import threading
import time
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from integrations.calendar_sync.base import Changes, Gone, RemoteEvent, SyncError, throttled
from integrations.ical import CalendarEvent, EventStatus
from integrations.retry_after import retry_after_seconds

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL  # nosec B105
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600  # the most Google accepts
TOKEN_EARLY_EXPIRY = 60
PAGE_SIZE = 250
MAX_PAGES = 500
PAST_CUTOFF = timedelta(days=1)
# 403 reasons that mean "slow down", not "you may not" (Google's "Handle API errors" guide).
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


class GoogleResourceCalendar:
    """One Google calendar (a room's resource calendar id, e.g. `c_188...@resource.calendar.google.com`)."""

    def __init__(
        self,
        service_account_info: dict[str, Any],
        calendar_id: str,
        *,
        api_base: str = "https://www.googleapis.com/calendar/v3",
        timeout: float = 10.0,
        subject: str | None = None,
        page_size: int = PAGE_SIZE,
        session: requests.Session | None = None,
    ) -> None:
        if not isinstance(service_account_info, dict):
            raise ValueError("the service account key must be the parsed JSON key file")
        missing = [k for k in ("client_email", "private_key") if not service_account_info.get(k)]
        if missing:
            raise ValueError(f"the service account key file lacks {', '.join(missing)}")
        if not calendar_id:
            raise ValueError("the calendar id is required")
        try:
            self._key = RSAKey.import_key(service_account_info["private_key"])
        except (JoseError, ValueError, TypeError) as exc:
            raise ValueError(
                f"the service account's private_key is not an RSA key: {exc}"
            ) from None
        self.client_email = str(service_account_info["client_email"])
        self._key_id = str(service_account_info.get("private_key_id") or "")
        self.token_uri = str(service_account_info.get("token_uri") or DEFAULT_TOKEN_URI)
        self.subject = subject or service_account_info.get("subject") or None
        self.calendar_id = calendar_id.strip()
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self.page_size = page_size
        self._http = session or requests.Session()
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = threading.Lock()

    def __repr__(self) -> str:  # never the key
        return (
            f"GoogleResourceCalendar(account={self.client_email!r}, calendar={self.calendar_id!r})"
        )

    # --- the contract -------------------------------------------------------------------------

    def changes_since(self, token: str | None) -> Changes:
        params: dict[str, str] = {"showDeleted": "true", "maxResults": str(self.page_size)}
        if token is not None:
            params["syncToken"] = token
        changed: dict[str, RemoteEvent] = {}
        deleted: dict[str, None] = {}
        cutoff = datetime.now(UTC) - PAST_CUTOFF
        for _page in range(MAX_PAGES):
            try:
                body = self._request(
                    "GET", self._events_url(), params=params, what="list the room's events"
                )
            except _NotFound:
                raise SyncError(
                    f"Google has no calendar {self.calendar_id} that {self.client_email} may "
                    "see: check the calendar id and that the calendar is shared with it",
                    transient=False,
                ) from None
            items = body.get("items", [])
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise SyncError("Google answered without a list of events", transient=False)
            zone = str(body.get("timeZone") or "UTC")
            for item in items:
                event_id = str(item.get("id") or "")
                if not event_id:
                    raise SyncError("Google listed an event without an id", transient=False)
                if item.get("status") == "cancelled":
                    changed.pop(event_id, None)
                    deleted[event_id] = None
                    continue
                event = parse_event(item, calendar_zone=zone)
                deleted.pop(event_id, None)
                if event.end < cutoff and not event.recurrence:
                    changed.pop(event_id, None)
                    continue
                changed[event_id] = event
            if page_token := body.get("nextPageToken"):
                params["pageToken"] = str(page_token)
                continue
            if sync_token := body.get("nextSyncToken"):
                return Changes(
                    list(changed.values()), list(deleted), str(sync_token), token is None
                )
            raise SyncError(
                "Google ended a page without a nextPageToken or nextSyncToken", transient=False
            )
        raise SyncError(f"Google's listing did not end within {MAX_PAGES} pages", transient=True)

    def put(self, event: CalendarEvent, remote_id: str | None, etag: str | None) -> tuple[str, str]:
        payload = event_payload(event)
        if remote_id is not None:
            try:
                return self._patch(remote_id, payload, etag, what="update the event")
            except _NotFound:
                pass  # deleted on the server in the meantime: insert it again
        try:
            body = self._request(
                "POST",
                self._events_url(),
                params={"sendUpdates": "none"},
                json={**payload, "iCalUID": event.uid},
                what="create the event",
            )
        except _Duplicate:
            # Our earlier insert got through but its answer was lost (or the event was cancelled
            # and still exists as such): update the event that already carries this UID.
            existing = self._find_by_uid(event.uid)
            if existing is None:
                raise SyncError(
                    f"Google says an event with UID {event.uid} exists but does not list it",
                    transient=True,
                ) from None
            return self._patch(existing, payload, None, what="update the event")
        return _id_and_etag(body)

    def delete(self, remote_id: str, etag: str | None) -> None:
        # No If-Match: a booking cancelled in Foyer must leave the room's calendar even if someone
        # changed the event there since the last sync.
        with suppress(_NotFound):  # already gone
            self._request(
                "DELETE",
                self._event_url(remote_id),
                params={"sendUpdates": "none"},
                what="delete the event",
            )

    def decline(self, event: RemoteEvent, reason: str) -> None:
        try:
            body = self._request("GET", self._event_url(event.remote_id), what="read the event")
        except _NotFound:
            return  # already gone: nothing left to refuse
        attendees = body.get("attendees") or []
        room = next(
            (
                a
                for a in attendees
                if isinstance(a, dict)
                and (str(a.get("email", "")).lower() == self.calendar_id.lower() or a.get("self"))
            ),
            None,
        )
        if room is None:
            with suppress(_NotFound):
                self._request(
                    "DELETE",
                    self._event_url(event.remote_id),
                    params={"sendUpdates": "none"},
                    what="remove the event",
                )
            return
        room["responseStatus"] = "declined"
        room["comment"] = reason
        with suppress(_NotFound):
            self._patch(
                event.remote_id,
                {"attendees": attendees},
                str(body.get("etag") or "") or None,
                what="decline the event",
            )

    def check(self) -> str:
        """Test the connection (the admin's button): sign in and read the calendar's metadata.
        Returns its name (a resource calendar's name is the room's, e.g. "Berlin-2-Aurora (8)")."""
        url = f"{self.api_base}/calendars/{quote(self.calendar_id, safe='@')}"
        try:
            body = self._request("GET", url, what="read the calendar")
        except _NotFound:
            raise SyncError(
                f"Google has no calendar {self.calendar_id} that {self.client_email} may "
                "see: check the calendar id and that the calendar is shared with it",
                transient=False,
            ) from None
        return str(body.get("summary") or self.calendar_id)

    # --- HTTP ---------------------------------------------------------------------------------

    def _events_url(self) -> str:
        return f"{self.api_base}/calendars/{quote(self.calendar_id, safe='@')}/events"

    def _event_url(self, event_id: str) -> str:
        return f"{self._events_url()}/{quote(event_id, safe='')}"

    def _patch(
        self, event_id: str, payload: dict[str, Any], etag: str | None, *, what: str
    ) -> tuple[str, str]:
        body = self._request(
            "PATCH",
            self._event_url(event_id),
            params={"sendUpdates": "none"},
            json=payload,
            if_match=etag,
            what=what,
        )
        return _id_and_etag(body)

    def _find_by_uid(self, uid: str) -> str | None:
        body = self._request(
            "GET",
            self._events_url(),
            params={"iCalUID": uid, "showDeleted": "true"},
            what="find the event by its UID",
        )
        for item in body.get("items") or []:
            if isinstance(item, dict) and item.get("id"):
                return str(item["id"])
        return None

    def _assertion(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.client_email,
            "scope": CALENDAR_SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }
        if self.subject:
            claims["sub"] = self.subject
        header = {"alg": "RS256", "typ": "JWT"}
        if self._key_id:
            header["kid"] = self._key_id
        return jwt.encode(header, claims, self._key)

    def _access_token(self, *, renew: bool = False) -> str:
        with self._token_lock:
            if not renew and self._token and time.monotonic() < self._token_expires:
                return self._token
            form = {"grant_type": JWT_BEARER, "assertion": self._assertion()}
            try:
                response = self._http.post(self.token_uri, data=form, timeout=self.timeout)
            except requests.Timeout:
                raise SyncError(
                    f"Google sign-in did not answer within {self.timeout:g} s", transient=True
                ) from None
            except requests.RequestException as exc:
                raise SyncError(
                    f"Google sign-in could not be reached: {_short(exc)}", transient=True
                ) from None
            body = _json_or_none(response)
            if response.status_code != 200:
                detail = ""
                if isinstance(body, dict):
                    detail = ": ".join(
                        str(body.get(k)) for k in ("error", "error_description") if body.get(k)
                    )
                raise _http_error(
                    f"Google refused the service account {self.client_email}: "
                    f"{detail or f'HTTP {response.status_code}'}",
                    transient=response.status_code == 429 or response.status_code >= 500,
                    response=response,
                )
            token = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise SyncError("Google sign-in answered without an access token", transient=False)
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
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        if_match: str | None = None,
        what: str,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if if_match:
            headers["If-Match"] = if_match
        for attempt in (1, 2):
            headers["Authorization"] = f"Bearer {self._access_token(renew=attempt == 2)}"
            try:
                response = self._http.request(
                    method, url, params=params, json=json, headers=headers, timeout=self.timeout
                )
            except requests.Timeout:
                raise SyncError(
                    f"Google Calendar did not answer within {self.timeout:g} s ({what})",
                    transient=True,
                ) from None
            except requests.RequestException as exc:
                raise SyncError(
                    f"Google Calendar could not be reached ({what}): {_short(exc)}", transient=True
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
                    f"Google Calendar answered with malformed JSON ({what})", transient=False
                )
            return body
        reason, message = _google_error(body)
        detail = f"{reason}: {message}" if reason else (message or f"HTTP {status}")
        if status == 410 and reason != "deleted":
            raise Gone(f"Google's sync token expired ({detail})")
        if status in (404, 410):
            raise _NotFound(detail)
        if status == 409:
            raise _Duplicate(detail)
        if status == 401 or (status == 403 and reason not in RATE_LIMIT_REASONS):
            raise SyncError(
                f"Google Calendar refused access to {self.calendar_id} ({what}, HTTP {status}): "
                f"{detail}. Share the calendar with {self.client_email} or check the delegation.",
                transient=False,
            )
        if status == 412:
            raise SyncError(
                f"the event changed in Google Calendar since the last sync ({what}); the next "
                "sync reads the new version",
                transient=True,
            )
        raise _http_error(
            f"Google Calendar could not {what} (HTTP {status}): {detail}",
            transient=status in (403, 408, 429) or status >= 500,
            response=response,
        )


class _NotFound(SyncError):
    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


class _Duplicate(SyncError):
    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


# --- JSON <-> values ----------------------------------------------------------------------------


def parse_event(item: dict[str, Any], *, calendar_zone: str = "UTC") -> RemoteEvent:
    """One Calendar API `Event` resource as a RemoteEvent. All-day events (`start.date`) run from
    midnight to midnight in the event's or else the calendar's zone."""
    try:
        event_id = str(item["id"])
        start = parse_event_time(item["start"], calendar_zone)
        end = parse_event_time(item["end"], calendar_zone)
    except (KeyError, TypeError, ValueError) as exc:
        raise SyncError(
            f"Google sent an event Foyer cannot read: {_short(exc)}", transient=False
        ) from None
    uid = str(item.get("iCalUID") or "") or f"{event_id}@google.com"
    if item.get("recurringEventId"):
        original = item.get("originalStartTime") or {}
        uid = f"{uid}#{original.get('dateTime') or original.get('date') or event_id}"
    rules = [
        line.split(":", 1)[1]
        for line in item.get("recurrence") or []
        if isinstance(line, str) and line.upper().startswith("RRULE:")
    ]
    organizer = item.get("organizer") or {}
    return RemoteEvent(
        remote_id=event_id,
        uid=uid,
        etag=str(item.get("etag") or ""),
        start=start,
        end=end,
        summary=str(item.get("summary") or ""),
        organizer_email=str(organizer.get("email") or ""),
        organizer_name=str(organizer.get("displayName") or ""),
        recurrence=rules[0] if rules else "",
        cancelled=item.get("status") == "cancelled",
    )


def parse_event_time(value: dict[str, Any], calendar_zone: str) -> datetime:
    if value.get("dateTime"):
        moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
        if moment.tzinfo is None:  # RFC 3339 requires an offset unless timeZone is given
            moment = moment.replace(tzinfo=_zone(str(value.get("timeZone") or calendar_zone)))
        return moment
    day = date.fromisoformat(str(value["date"]))
    return datetime(
        day.year, day.month, day.day, tzinfo=_zone(value.get("timeZone") or calendar_zone)
    )


def _zone(name: str) -> Any:
    if name.upper() in ("UTC", "Z", "GMT"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def event_payload(event: CalendarEvent) -> dict[str, Any]:
    """The Calendar API `Event` JSON for a Foyer booking (times with their offset and the site's
    IANA zone). Bookers are not added as attendees: that would invite them a second time."""
    lines = [event.description] if event.description else []
    if event.attendees:
        booker = event.attendees[0]
        lines.append(f"Booked in Foyer by {booker.name or booker.email} <{booker.email}>.")
    zone = ZoneInfo(event.time_zone)
    return {
        "summary": event.summary,
        "description": "\n\n".join(lines),
        "location": event.location,
        "start": {
            "dateTime": event.start.astimezone(zone).isoformat(timespec="seconds"),
            "timeZone": event.time_zone,
        },
        "end": {
            "dateTime": event.end.astimezone(zone).isoformat(timespec="seconds"),
            "timeZone": event.time_zone,
        },
        "status": {
            EventStatus.TENTATIVE: "tentative",
            EventStatus.CANCELLED: "cancelled",
        }.get(event.status, "confirmed"),
        "transparency": "opaque",
        "extendedProperties": {"private": {"foyerUid": event.uid}},
    }


def _id_and_etag(body: dict[str, Any]) -> tuple[str, str]:
    event_id = body.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise SyncError("Google Calendar answered without the event's id", transient=False)
    return event_id, str(body.get("etag") or "")


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _google_error(body: Any) -> tuple[str, str]:
    """Google's error JSON: {"error": {"errors": [{"reason": ...}], "code": ..., "message": ...}}."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    reasons = [e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)]
    return str(next((r for r in reasons if r), "") or ""), str(error.get("message") or "")


def _http_error(message: str, *, transient: bool, response: requests.Response) -> SyncError:
    """The engine waits at least as long as the server's Retry-After asks."""
    delay = retry_after_seconds(response.headers.get("Retry-After"))
    return throttled(message, transient=transient, retry_after=delay)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."

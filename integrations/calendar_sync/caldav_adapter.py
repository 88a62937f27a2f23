"""A calendar collection on a CalDAV server (Radicale, Nextcloud, Baikal, iCloud ...) as a
`base.RemoteCalendar`, over the `caldav` library's HTTP client.

- Listing is one sync-collection REPORT (RFC 6578) asking for each changed object's ETag *and*
  calendar data, so an incremental sync of 1,000 unchanged events is one request with an empty
  answer, and a change costs no extra GET per object. (The library's `objects_by_sync_token`
  would fetch each object separately and silently falls back to a full listing on errors, which
  would hide a broken server.) A token the server no longer knows (403/412 with
  DAV:valid-sync-token) raises `Gone`.
- Writes are conditional: a new event is PUT with `If-None-Match: *`, a change or a deletion with
  `If-Match` and the ETag we hold, so an edit made on the server meanwhile is never overwritten
  blindly (412 answers "changed meanwhile", a transient error: the next pull fetches the change).
- Repeating events are reported as they are, with their RRULE text and first occurrence: nothing
  here expands a rule, so an RRULE without an end costs nothing (the engine decides what to do).
- Declining: a plain CalDAV calendar has no scheduling outbox to answer an invitation, so the
  event is deleted from the room's calendar; the engine tells the organiser why by e-mail.
- Every failure becomes `SyncError`: timeouts, refused connections, 429 and 5xx are transient;
  401/403, 404 (no such calendar) and data that is not iCalendar are not.

No Flask here; no database."""

from __future__ import annotations

import posixpath
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import caldav
from caldav.lib import error as caldav_error
from icalendar import Calendar
from lxml import etree

from integrations import ical
from integrations.calendar_sync.base import Changes, Gone, RemoteEvent, SyncError
from integrations.ical import CalendarEvent

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
NS = {"d": DAV, "c": CALDAV}
ICS_TYPE = "text/calendar; charset=utf-8"
SYNC_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:sync-collection xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
    "<d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level>"
    "<d:prop><d:getetag/><c:calendar-data/></d:prop></d:sync-collection>"
)
CHECK_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:displayname/></d:prop></d:propfind>'
)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._@-]")


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def file_name_for(uid: str) -> str:
    """The object's name in the collection: the UID with anything unusual replaced, so a UID from
    another system can never climb out of the calendar ("../") or need quoting."""
    return _UNSAFE_NAME.sub("_", uid)[:200] + ".ics"


class CalDavCalendar:
    def __init__(self, url: str, username: str, password: str, timeout: float = 10.0) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.timeout = timeout
        self._client = caldav.DAVClient(
            url=self.url,
            username=username or None,
            password=password or None,
            auth_type="basic" if username else None,  # no extra 401 round trip per request
            timeout=timeout,
            rate_limit_handle=False,  # a 429 is our retry schedule's business, not a sleep here
        )
        self._origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.url))

    # -- requests ------------------------------------------------------------------------------
    def _request(
        self, method: str, url: str, body: str = "", headers: dict[str, str] | None = None
    ) -> Any:
        try:
            return self._client.request(url, method, body, headers or {})
        except caldav_error.AuthorizationError as exc:
            body = exc.body if isinstance(exc.body, bytes) else str(exc.body or "").encode()
            if "{DAV:}valid-sync-token" in exc.preconditions or b"valid-sync-token" in body:
                raise Gone() from exc  # RFC 6578 3.2: the token expired
            status = exc.status or 401
            what = "user name or password" if status == 401 else "access to this calendar"
            raise SyncError(
                f"the server refused the {what} (HTTP {status})", transient=False
            ) from exc
        except caldav_error.RateLimitError as exc:
            raise SyncError("the server asks us to slow down (HTTP 429)", transient=True) from exc
        except caldav_error.DAVError as exc:
            raise SyncError(f"CalDAV error: {exc}", transient=True) from exc
        except etree.XMLSyntaxError as exc:
            raise SyncError(
                f"the server's answer to {method} is not valid XML", transient=False
            ) from exc
        except OSError as exc:  # niquests' errors: refused, timed out, reset, DNS
            raise SyncError(_network_problem(exc, self.url), transient=True) from exc

    def _check_status(self, response: Any, method: str, *ok: int) -> None:
        status = int(response.status)
        if status in ok:
            return
        if status in (401, 403):
            raise SyncError(
                f"the server refused access to the calendar (HTTP {status})", transient=False
            )
        if status == 404:
            raise SyncError("there is no calendar at this address (HTTP 404)", transient=False)
        if status == 412:
            raise SyncError(
                f"the event changed on the server meanwhile ({method} answered 412)", transient=True
            )
        if status == 429 or status >= 500:
            raise SyncError(f"the server failed ({method} answered HTTP {status})", transient=True)
        raise SyncError(f"the server refused {method} (HTTP {status})", transient=False)

    def _href_url(self, href: str) -> str:
        return urljoin(self._origin + "/", href)

    # -- the contract ---------------------------------------------------------------------------
    def changes_since(self, token: str | None) -> Changes:
        body = SYNC_BODY.format(token=_xml_escape(token or ""))
        response = self._request("REPORT", self.url, body, {"Depth": "1"})
        status = int(response.status)
        raw = _raw_body(response)
        if token and status in (403, 409, 412) and b"valid-sync-token" in raw:
            raise Gone()
        self._check_status(response, "REPORT", 207)
        tree = response.tree
        if tree is None or etree.QName(tree).localname != "multistatus":
            raise SyncError(
                "the server's answer to REPORT is not a WebDAV multistatus", transient=False
            )
        changed: list[RemoteEvent] = []
        deleted: list[str] = []
        own_path = posixpath.normpath(unquote(urlsplit(self.url).path))
        for item in tree.findall("d:response", NS):
            href = (item.findtext("d:href", "", NS) or "").strip()
            path = unquote(urlsplit(href).path)
            if not href or posixpath.normpath(path) == own_path:
                continue  # the collection itself
            remote_id = path
            item_status = item.findtext("d:status", "", NS) or ""
            if " 404" in item_status:
                deleted.append(remote_id)
                continue
            etag = (item.findtext("d:propstat/d:prop/d:getetag", "", NS) or "").strip()
            data = item.findtext("d:propstat/d:prop/c:calendar-data", None, NS)
            if data is None:
                raise SyncError(
                    f"the server sent no calendar data for {remote_id}", transient=False
                )
            event = parse_event(data, remote_id=remote_id, etag=etag)
            if event is not None:
                changed.append(event)
        new_token = (tree.findtext("d:sync-token", "", NS) or "").strip() or None
        return Changes(changed=changed, deleted=deleted, token=new_token, full=not token)

    def put(self, event: CalendarEvent, remote_id: str | None, etag: str | None) -> tuple[str, str]:
        body = ical.build_calendar([event], ical.Method.PUBLISH)
        # A CalDAV object carries no METHOD (RFC 4791 4.1): strict servers refuse one.
        text = body.decode("utf-8").replace("METHOD:PUBLISH\r\n", "", 1)
        if remote_id is None:
            path = unquote(urlsplit(self.url).path) + file_name_for(event.uid)
            headers = {"Content-Type": ICS_TYPE, "If-None-Match": "*"}
        else:
            path = remote_id
            headers = {"Content-Type": ICS_TYPE}
            if etag:
                headers["If-Match"] = etag
        url = self._href_url(quote(path, safe="/@:"))
        response = self._request("PUT", url, text, headers)
        if remote_id is None and int(response.status) == 412:
            # Our UID's object already exists: an earlier PUT whose answer was lost. It is ours.
            response = self._request("PUT", url, text, {"Content-Type": ICS_TYPE})
        self._check_status(response, "PUT", 200, 201, 204)
        new_etag = (response.headers.get("ETag") or "").strip()
        return unquote(urlsplit(url).path), new_etag

    def delete(self, remote_id: str, etag: str | None) -> None:
        headers = {"If-Match": etag} if etag else {}
        response = self._request(
            "DELETE", self._href_url(quote(remote_id, safe="/@:")), "", headers
        )
        if int(response.status) in (404, 410):
            return  # already gone
        self._check_status(response, "DELETE", 200, 202, 204)

    def decline(self, event: RemoteEvent, reason: str) -> None:
        # No scheduling outbox on a plain calendar: remove it (the engine mails the organiser).
        # Not conditional: whatever its latest version, the room does not take it.
        self.delete(event.remote_id, None)

    def check(self) -> str:
        """Test the connection: the address must be a calendar we may read. Returns its name."""
        response = self._request("PROPFIND", self.url, CHECK_BODY, {"Depth": "0"})
        self._check_status(response, "PROPFIND", 207)
        tree = response.tree
        if tree is None:
            raise SyncError("the server's answer to PROPFIND is empty", transient=False)
        if tree.find(".//d:resourcetype/c:calendar", NS) is None:
            raise SyncError(
                "the address is not a calendar (no CalDAV calendar there)", transient=False
            )
        return (tree.findtext(".//d:displayname", "", NS) or "").strip()


def _raw_body(response: Any) -> bytes:
    raw = getattr(response, "_raw", b"") or b""
    if response.tree is not None:
        return etree.tostring(response.tree)
    return raw if isinstance(raw, bytes) else str(raw).encode()


def _network_problem(exc: OSError, url: str) -> str:
    name = type(exc).__name__
    text = str(exc)
    where = urlsplit(url).netloc
    if "timed out" in text.lower() or "timeout" in name.lower():
        return f"no answer from {where} in time ({name})"
    if "refused" in text.lower() or "ConnectionError" in name:
        return f"could not connect to {where} ({name})"
    return f"network problem talking to {where} ({name})"


def parse_event(data: str, *, remote_id: str, etag: str) -> RemoteEvent | None:
    """The event in one calendar object. None for an object without a VEVENT (a to-do).
    Data that is not iCalendar, or an event without UID or start, raises SyncError."""
    try:
        calendar = Calendar.from_ical(data)
    except Exception as exc:  # noqa: BLE001 - icalendar raises ValueError and others on garbage
        raise SyncError(
            f"{remote_id} is not valid iCalendar: {exc}"[:300], transient=False
        ) from exc
    events = [c for c in calendar.walk("VEVENT")]
    if not events:
        return None
    master = next((e for e in events if "RECURRENCE-ID" not in e), events[0])
    try:
        uid = str(master.get("UID", "")).strip()
        start_prop = master.get("DTSTART")
        if not uid or start_prop is None:
            raise ValueError("an event needs a UID and a DTSTART")
        start_value = start_prop.dt
        start = _instant(start_value)
        if master.get("DTEND") is not None:
            end = _instant(master.get("DTEND").dt)
        elif master.get("DURATION") is not None:
            end = start + master.get("DURATION").dt
        elif isinstance(start_value, date) and not isinstance(start_value, datetime):
            end = start + timedelta(days=1)  # an all-day event lasts the day (RFC 5545 3.6.1)
        else:
            end = start
    except (ValueError, TypeError, AttributeError) as exc:
        raise SyncError(f"{remote_id}: {exc}"[:300], transient=False) from exc
    organizer = master.get("ORGANIZER")
    organizer_email = ""
    organizer_name = ""
    if organizer is not None:
        value = str(organizer)
        organizer_email = value[7:] if value.lower().startswith("mailto:") else ""
        organizer_name = str(getattr(organizer, "params", {}).get("CN", "") or "")
    rrule = master.get("RRULE")
    recurrence = rrule.to_ical().decode() if rrule is not None else ""
    if not recurrence and (master.get("RDATE") is not None or len(events) > 1):
        recurrence = "RDATE"  # repeats by dates or has moved occurrences: still a series
    return RemoteEvent(
        remote_id=remote_id,
        uid=uid,
        etag=etag,
        start=start,
        end=end,
        summary=str(master.get("SUMMARY", "") or ""),
        organizer_email=organizer_email.strip(),
        organizer_name=organizer_name.strip(),
        recurrence=recurrence,
        cancelled=str(master.get("STATUS", "")).upper() == "CANCELLED",
    )


def _instant(value: date | datetime) -> datetime:
    """An aware instant: floating times are read as UTC (as calendar clients do), and an all-day
    date as its midnight in UTC (the engine's opening-hours rule then refuses it)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return datetime.combine(value, time(0), tzinfo=UTC)

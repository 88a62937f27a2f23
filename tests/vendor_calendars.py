"""Loopback stand-ins for Microsoft Graph (with the Microsoft identity platform's token endpoint) and
the Google Calendar API (with Google's OAuth token endpoint), for the room-calendar adapters.

No tenant is reachable from the tests, so these small real HTTP servers implement exactly the
endpoints the adapters use, with the vendors' documented JSON: the client-credentials grant
(checking the client secret) and the JWT-bearer grant (checking the assertion's RS256 signature
with the service account's public key); Graph's calendarView delta rounds (`@odata.nextLink`,
`@odata.deltaLink`, `@removed`, 410 `syncStateNotFound`) and Google's sync tokens (`nextPageToken`,
`nextSyncToken`, cancelled events, 410 `fullSyncRequired`); etags with If-Match (412); Graph's
`transactionId` and Google's iCalUID duplicates (409); declines as each vendor records them.

Faults are injected per request: `server.fail("429", retry_after=7)` makes the next request answer
with it (401, 429, 500, malformed JSON, or an answer slower than the adapter's timeout)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Fault:
    kind: str  # "401", "403", "429", "500", "503", "malformed", "slow"
    path_contains: str = ""
    retry_after: int | None = None
    delay: float = 0.0


@dataclass
class SeenRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeVendor:
    """The HTTP plumbing both fakes share: a threaded werkzeug server, a request log, faults."""

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    requests: list[SeenRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._counter = itertools.count(1)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeVendor:
        self._server = make_server(self.host, self.port, self._wsgi, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fail(
        self, kind: str, *, path_contains: str = "", retry_after: int | None = None, delay=0.0
    ) -> None:
        """The next request whose path contains `path_contains` answers with this fault."""
        with self.lock:
            self.faults.append(Fault(kind, path_contains, retry_after, delay))

    def seen(self, method: str, path_contains: str = "") -> list[SeenRequest]:
        with self.lock:
            return [r for r in self.requests if r.method == method and path_contains in r.path]

    def next_number(self) -> int:
        return next(self._counter)

    # --- WSGI -----------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable) -> Any:
        request = Request(environ)
        raw = request.get_data()
        if request.mimetype == "application/json" and raw:
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = None
        else:
            body = request.form.to_dict() if request.form else raw.decode("utf-8", "replace")
        seen = SeenRequest(
            request.method,
            request.path,
            parse_qs(request.query_string.decode(), keep_blank_values=True),
            dict(request.headers),
            body,
        )
        with self.lock:
            self.requests.append(seen)
            fault = next((f for f in self.faults if f.path_contains in request.path), None)
            if fault is not None:
                self.faults.remove(fault)
        if fault is not None:
            response = self._fault_response(fault)
        else:
            with self.lock:
                response = self.handle(seen)
        return response(environ, start_response)

    def _fault_response(self, fault: Fault) -> Response:
        if fault.kind == "slow":
            time.sleep(fault.delay or 2.0)
            return self.json_response({}, 200)
        if fault.kind == "malformed":
            return Response('{"value": [ {"id": ', status=200, mimetype="application/json")
        status = int(fault.kind)
        response = self.error_response(status, self.fault_reason(status), "Injected fault")
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(fault.retry_after)
        return response

    @staticmethod
    def json_response(body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def handle(self, request: SeenRequest) -> Response:  # pragma: no cover - overridden
        raise NotImplementedError

    def error_response(self, status: int, code: str, message: str) -> Response:
        raise NotImplementedError  # pragma: no cover - overridden

    def fault_reason(self, status: int) -> str:
        raise NotImplementedError  # pragma: no cover - overridden


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# =============================================================================================
# Microsoft Graph


@dataclass
class FakeGraph(FakeVendor):
    """One tenant with one app registration and room mailboxes; events per mailbox."""

    tenant_id: str = "contoso.onmicrosoft.com"
    client_id: str = "11111111-2222-3333-4444-555555555555"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    mailboxes: tuple[str, ...] = ("aurora@contoso.example",)
    room_names: dict[str, str] = field(default_factory=lambda: {"aurora@contoso.example": "Aurora"})
    token_lifetime: int = 3599

    def __post_init__(self) -> None:
        super().__post_init__()
        self.access_tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.events: dict[str, dict[str, Any]] = {}  # id -> event JSON (with "_mailbox", "_change")
        self.tombstones: dict[str, int] = {}  # id -> change number of the deletion
        self.changes = 0
        self.delta_tokens: dict[str, tuple[str, int, datetime, datetime]] = {}
        self.pending_pages: dict[str, list[list[dict[str, Any]]]] = {}
        self.declines: list[dict[str, Any]] = []  # what the organisers were told

    @property
    def login_base(self) -> str:
        return self.base

    @property
    def graph_base(self) -> str:
        return f"{self.base}/v1.0"

    def fault_reason(self, status: int) -> str:
        return {
            401: "InvalidAuthenticationToken",
            403: "ErrorAccessDenied",
            429: "TooManyRequests",
            503: "ServiceNotAvailable",
        }.get(status, "InternalServerError")

    def error_response(self, status: int, code: str, message: str) -> Response:
        return self.json_response(
            {
                "error": {
                    "code": code,
                    "message": message,
                    "innerError": {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")},
                }
            },
            status,
        )

    # --- what a person does in Outlook --------------------------------------------------------

    def add_external_event(
        self,
        subject: str,
        start: datetime,
        end: datetime,
        *,
        organizer: tuple[str, str] = ("Dana Swope", "danas@contoso.example"),
        mailbox: str | None = None,
    ) -> dict[str, Any]:
        """Someone invites the room from Outlook: the room's copy, with the room as attendee."""
        room = mailbox or self.mailboxes[0]
        event = self._new_event(room, {"subject": subject, "start": None, "end": None})
        event["start"] = {"dateTime": _graph_utc(start), "timeZone": "UTC"}
        event["end"] = {"dateTime": _graph_utc(end), "timeZone": "UTC"}
        event["organizer"] = {"emailAddress": {"name": organizer[0], "address": organizer[1]}}
        event["isOrganizer"] = False
        event["attendees"] = [
            {
                "type": "resource",
                "status": {"response": "accepted", "time": event["createdDateTime"]},
                "emailAddress": {"name": room, "address": room},
            }
        ]
        event["responseStatus"] = {"response": "accepted", "time": event["createdDateTime"]}
        self._store(event)
        return event

    def change_external_event(self, event_id: str, **changes: Any) -> None:
        event = self.events[event_id]
        for key in ("start", "end"):
            if key in changes:
                event[key] = {"dateTime": _graph_utc(changes.pop(key)), "timeZone": "UTC"}
        event.update(changes)
        self._store(event)

    def remove_event(self, event_id: str) -> None:
        self.events.pop(event_id)
        self.changes += 1
        self.tombstones[event_id] = self.changes

    def expire_delta_tokens(self) -> None:
        self.delta_tokens.clear()

    def events_of(self, mailbox: str | None = None) -> list[dict[str, Any]]:
        room = mailbox or self.mailboxes[0]
        return [e for e in self.events.values() if e["_mailbox"] == room]

    # --- HTTP -----------------------------------------------------------------------------------

    def handle(self, request: SeenRequest) -> Response:
        parts = request.path.strip("/").split("/")
        if parts[1:] == ["oauth2", "v2.0", "token"] and request.method == "POST":
            return self._token(parts[0], request.body)
        if parts[:1] != ["v1.0"] or len(parts) < 3 or parts[1] != "users":
            return self.error_response(400, "BadRequest", f"Resource not found for {request.path}")
        auth = request.headers.get("Authorization", "")
        expiry = self.access_tokens.get(auth.removeprefix("Bearer "))
        if expiry is None or expiry < time.time():
            return self.error_response(
                401, "InvalidAuthenticationToken", "Access token is empty or invalid."
            )
        mailbox = parts[2]
        if mailbox not in self.mailboxes:
            return self.error_response(
                404, "ErrorInvalidUser", f"The requested user '{mailbox}' is invalid."
            )
        rest = parts[3:]
        utc = 'outlook.timezone="UTC"' in request.headers.get("Prefer", "")
        if rest == ["calendar"] and request.method == "GET":
            return self.json_response(
                {
                    "@odata.context": f"{self.graph_base}/$metadata#users('{mailbox}')/calendar/$entity",
                    "id": base64.b64encode(f"AAMkAGI2TG93AAA{mailbox}".encode()).decode(),
                    "name": "Calendar",
                    "canEdit": True,
                    "owner": {"name": self.room_names.get(mailbox, mailbox), "address": mailbox},
                }
            )
        if rest == ["calendarView", "delta"] and request.method == "GET":
            return self._delta(mailbox, request, utc)
        if rest == ["events"] and request.method == "POST":
            return self._create(mailbox, request.body, utc)
        if len(rest) >= 2 and rest[0] == "events":
            event = self.events.get(rest[1])
            if event is None or event["_mailbox"] != mailbox:
                return self.error_response(
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                )
            if len(rest) == 3 and rest[2] == "decline" and request.method == "POST":
                return self._decline(event, request.body)
            if len(rest) == 2 and request.method == "GET":
                return self.json_response(self._public(event, utc))
            if len(rest) == 2 and request.method == "PATCH":
                return self._update(event, request, utc)
            if len(rest) == 2 and request.method == "DELETE":
                self.remove_event(event["id"])
                return Response(status=204)
        return self.error_response(405, "Request_BadRequest", "Unsupported request")

    def _token(self, tenant: str, form: Any) -> Response:
        form = form if isinstance(form, dict) else {}
        if tenant != self.tenant_id:
            return self.json_response(
                {
                    "error": "invalid_request",
                    "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                },
                400,
            )
        if form.get("grant_type") != "client_credentials":
            return self.json_response({"error": "unsupported_grant_type"}, 400)
        if form.get("client_id") != self.client_id:
            return self.json_response(
                {
                    "error": "unauthorized_client",
                    "error_description": "AADSTS700016: Application with identifier "
                    f"'{form.get('client_id')}' was not found in the directory.",
                },
                400,
            )
        if not secrets.compare_digest(str(form.get("client_secret", "")), self.client_secret):
            return self.json_response(
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided. Ensure "
                    "the secret being sent in the request is the client secret value, not the "
                    "client secret ID.",
                    "error_codes": [7000215],
                },
                401,
            )
        if form.get("scope") != "https://graph.microsoft.com/.default":
            return self.json_response(
                {"error": "invalid_scope", "error_description": "AADSTS1002012"}, 400
            )
        token = secrets.token_urlsafe(32)
        self.access_tokens[token] = time.time() + self.token_lifetime
        self.tokens_issued += 1
        return self.json_response(
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            }
        )

    def _new_event(self, mailbox: str, body: dict[str, Any]) -> dict[str, Any]:
        number = self.next_number()
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
        event_id = base64.b64encode(f"AAMkAGI1AAAt{number:08d}".encode()).decode()
        return {
            **body,
            "id": event_id,
            "_mailbox": mailbox,
            "createdDateTime": now,
            "lastModifiedDateTime": now,
            "iCalUId": "040000008200E00074C5B7101A82E008"
            + hashlib.sha1(event_id.encode()).hexdigest().upper(),  # noqa: E501
            "isCancelled": False,
            "isAllDay": False,
            "type": "singleInstance",
            "organizer": {"emailAddress": {"name": mailbox, "address": mailbox}},
            "isOrganizer": True,
            "attendees": body.get("attendees", []),
        }

    def _store(self, event: dict[str, Any]) -> None:
        self.changes += 1
        change_key = base64.b64encode(
            hashlib.sha1(f"{event['id']}{self.changes}".encode()).digest()[:16]
        ).decode()  # noqa: E501
        event["changeKey"] = change_key
        event["@odata.etag"] = f'W/"{change_key}"'
        event["lastModifiedDateTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
        event["_change"] = self.changes
        self.events[event["id"]] = event
        self.tombstones.pop(event["id"], None)

    def _public(self, event: dict[str, Any], utc: bool) -> dict[str, Any]:
        public = {k: v for k, v in event.items() if not k.startswith("_")}
        public["@odata.type"] = "#microsoft.graph.event"
        for key in ("start", "end"):
            value = event[key]
            moment = _graph_moment(value)
            if utc:
                public[key] = {"dateTime": _graph_utc(moment), "timeZone": "UTC"}
        return public

    def _create(self, mailbox: str, body: Any, utc: bool) -> Response:
        if not isinstance(body, dict) or "start" not in body or "end" not in body:
            return self.error_response(400, "ErrorInvalidRequest", "Start and end are required.")
        try:
            start, end = _graph_moment(body["start"]), _graph_moment(body["end"])
        except (KeyError, ValueError):
            return self.error_response(400, "ErrorInvalidRequest", "Invalid dateTimeTimeZone.")
        if end <= start:
            return self.error_response(
                400, "ErrorInvalidRequest", "The end of the event must be after its start."
            )
        transaction = body.get("transactionId")
        if transaction:
            for existing in self.events.values():
                if existing.get("transactionId") == transaction:
                    return self.json_response(self._public(existing, utc), 201)
        event = self._new_event(mailbox, body)
        self._store(event)
        return self.json_response(self._public(event, utc), 201)

    def _update(self, event: dict[str, Any], request: SeenRequest, utc: bool) -> Response:
        if_match = request.headers.get("If-Match")
        if if_match and if_match != event["@odata.etag"]:
            return self.error_response(
                412,
                "ErrorIrresolvableConflict",
                "The send or update operation could not be performed because the change key "
                "passed in the request does not match the current change key for the item.",
            )
        body = request.body if isinstance(request.body, dict) else {}
        if "transactionId" in body and body["transactionId"] != event.get("transactionId"):
            return self.error_response(400, "ErrorInvalidRequest", "transactionId is read-only.")
        event.update(body)
        self._store(event)
        return self.json_response(self._public(event, utc))

    def _decline(self, event: dict[str, Any], body: Any) -> Response:
        if event.get("isOrganizer"):
            return self.error_response(
                400,
                "ErrorInvalidRequest",
                "Your request can't be completed. You can't respond to a meeting you organized.",
            )
        body = body if isinstance(body, dict) else {}
        self.declines.append(
            {
                "event_id": event["id"],
                "subject": event.get("subject"),
                "organizer": event["organizer"]["emailAddress"]["address"],
                "comment": body.get("comment"),
                "sendResponse": body.get("sendResponse", True),
            }
        )
        self.remove_event(event["id"])  # Exchange moves a declined meeting out of the calendar
        return Response(status=202)

    def _delta(self, mailbox: str, request: SeenRequest, utc: bool) -> Response:
        query = {k: v[0] for k, v in request.query.items()}
        if "$skiptoken" in query:
            pages = self.pending_pages.get(query["$skiptoken"])
            if pages is None:
                return self.error_response(
                    410, "syncStateNotFound", "The sync state generation is not found."
                )
            return self._delta_page(mailbox, pages, utc)
        if "$deltatoken" in query:
            state = self.delta_tokens.get(query["$deltatoken"])
            if state is None or state[0] != mailbox:
                return self.error_response(
                    410,
                    "syncStateNotFound",
                    "The sync state generation is not found. Please resync.",
                )
            _, since, window_start, window_end = state
        else:
            try:
                window_start = _parse_iso(query["startDateTime"])
                window_end = _parse_iso(query["endDateTime"])
            except (KeyError, ValueError):
                return self.error_response(
                    400,
                    "ErrorInvalidParameter",
                    "This request requires a time window specified by the query string parameters "
                    "StartDateTime and EndDateTime.",
                )
            since = 0
        items: list[dict[str, Any]] = []
        for event in self.events_of(mailbox):
            if event["_change"] > since and _overlaps(event, window_start, window_end):
                items.append(self._public(event, utc))
        if since:
            for event_id, change in self.tombstones.items():
                if change > since:
                    items.append(
                        {
                            "@odata.type": "#microsoft.graph.event",
                            "id": event_id,
                            "@removed": {"reason": "deleted"},
                        }
                    )
        page_size = 100
        for preference in request.headers.get("Prefer", "").split(","):
            name, _, value = preference.strip().partition("=")
            if name == "odata.maxpagesize" and value.isdigit():
                page_size = max(int(value), 1)
        pages = [items[i : i + page_size] for i in range(0, len(items), page_size)] or [[]]
        delta = secrets.token_urlsafe(12)
        self.delta_tokens[delta] = (mailbox, self.changes, window_start, window_end)
        pages[-1] = pages[-1] + [{"_deltatoken": delta}]
        return self._delta_page(mailbox, pages, utc)

    def _delta_page(self, mailbox: str, pages: list[list[dict[str, Any]]], utc: bool) -> Response:
        page, rest = pages[0], pages[1:]
        base = f"{self.graph_base}/users/{mailbox}/calendarView/delta"
        body: dict[str, Any] = {
            "@odata.context": f"{self.graph_base}/$metadata#Collection(event)",
            "value": [item for item in page if "_deltatoken" not in item],
        }
        if rest:
            skip = secrets.token_urlsafe(12)
            self.pending_pages[skip] = rest
            body["@odata.nextLink"] = f"{base}?{urlencode({'$skiptoken': skip})}"
        else:
            delta = next(item["_deltatoken"] for item in page if "_deltatoken" in item)
            body["@odata.deltaLink"] = f"{base}?{urlencode({'$deltatoken': delta})}"
        return self.json_response(body)


def _graph_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000")


def _graph_moment(value: dict[str, Any]) -> datetime:
    moment = datetime.fromisoformat(str(value["dateTime"])[:26])
    if moment.tzinfo is None:
        zone = str(value.get("timeZone") or "UTC")
        moment = moment.replace(tzinfo=UTC if zone == "UTC" else ZoneInfo(zone))
    return moment


def _overlaps(event: dict[str, Any], start: datetime, end: datetime) -> bool:
    return _graph_moment(event["start"]) < end and _graph_moment(event["end"]) > start


# =============================================================================================
# Google Calendar


@dataclass
class FakeGoogle(FakeVendor):
    """Google's token endpoint and Calendar API v3 for a service account and resource calendars."""

    client_email: str = "foyer-sync@foyer-test.iam.gserviceaccount.com"
    calendars: tuple[str, ...] = ("c_1882a6ff2bd4u2jgkl0b4n3ebc@resource.calendar.google.com",)
    calendar_zone: str = "Europe/Berlin"
    key: RSAKey | None = None  # the service account's key pair (generating one takes ~0.1 s)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.key = self.key or RSAKey.generate_key(2048)
        self.key_id = secrets.token_hex(20)
        self.public_key = RSAKey.import_key(self.key.as_pem(private=False))
        self.access_tokens: dict[str, float] = {}
        self.assertions: list[dict[str, Any]] = []
        self.events: dict[str, dict[str, Any]] = {}
        self.changes = 0
        self.sync_tokens: dict[str, tuple[str, int]] = {}
        self.page_tokens: dict[str, list[list[dict[str, Any]]]] = {}

    @property
    def token_uri(self) -> str:
        return f"{self.base}/token"

    @property
    def api_base(self) -> str:
        return f"{self.base}/calendar/v3"

    def service_account_info(self, *, key: RSAKey | None = None) -> dict[str, Any]:
        """The parsed JSON key file an admin downloads from the Cloud console."""
        return {
            "type": "service_account",
            "project_id": "foyer-test",
            "private_key_id": self.key_id,
            "private_key": (key or self.key).as_pem(private=True).decode(),
            "client_email": self.client_email,
            "client_id": "109876543210987654321",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        }

    def fault_reason(self, status: int) -> str:
        return {
            401: "authError",
            403: "rateLimitExceeded",
            429: "rateLimitExceeded",
            503: "backendError",
        }.get(status, "backendError")

    def error_response(self, status: int, code: str, message: str) -> Response:
        domain = "usageLimits" if "RateLimit" in code or "rateLimit" in code else "global"
        if code in ("fullSyncRequired", "duplicate", "timeRangeEmpty"):
            domain = "calendar"
        return self.json_response(
            {
                "error": {
                    "errors": [{"domain": domain, "reason": code, "message": message}],
                    "code": status,
                    "message": message,
                }
            },
            status,
        )

    # --- what a person does in Google Calendar ------------------------------------------------

    def add_external_event(
        self,
        summary: str,
        start: datetime,
        end: datetime,
        *,
        organizer: tuple[str, str] = ("Jonas Weber", "jonas.weber@example.com"),
        calendar_id: str | None = None,
        room_is_attendee: bool = True,
        recurrence: list[str] | None = None,
    ) -> dict[str, Any]:
        """Someone adds the room to their meeting in Google Calendar: the room's copy."""
        calendar = calendar_id or self.calendars[0]
        event_id = secrets.token_hex(13)
        zone = ZoneInfo(self.calendar_zone)
        event: dict[str, Any] = {
            "kind": "calendar#event",
            "id": event_id,
            "_calendar": calendar,
            "status": "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
            "created": _google_now(),
            "summary": summary,
            "creator": {"email": organizer[1], "displayName": organizer[0]},
            "organizer": {"email": organizer[1], "displayName": organizer[0]},
            "start": {
                "dateTime": start.astimezone(zone).isoformat(),
                "timeZone": self.calendar_zone,
            },
            "end": {"dateTime": end.astimezone(zone).isoformat(), "timeZone": self.calendar_zone},
            "iCalUID": f"{event_id}@google.com",
            "sequence": 0,
            "reminders": {"useDefault": True},
            "eventType": "default",
        }
        if recurrence:
            event["recurrence"] = recurrence
        if room_is_attendee:
            event["attendees"] = [
                {
                    "email": organizer[1],
                    "displayName": organizer[0],
                    "organizer": True,
                    "responseStatus": "accepted",
                },
                {
                    "email": calendar,
                    "displayName": "Room",
                    "self": True,
                    "resource": True,
                    "responseStatus": "accepted",
                },
            ]
        self._store(event)
        return event

    def change_external_event(self, event_id: str, **changes: Any) -> None:
        event = self.events[event_id]
        zone = ZoneInfo(self.calendar_zone)
        for key in ("start", "end"):
            if key in changes:
                event[key] = {
                    "dateTime": changes.pop(key).astimezone(zone).isoformat(),
                    "timeZone": self.calendar_zone,
                }
        event.update(changes)
        event["sequence"] = event.get("sequence", 0) + 1
        self._store(event)

    def cancel_event(self, event_id: str) -> None:
        event = self.events[event_id]
        event["status"] = "cancelled"
        self._store(event)

    def expire_sync_tokens(self) -> None:
        self.sync_tokens.clear()

    def live_events(self, calendar_id: str | None = None) -> list[dict[str, Any]]:
        calendar = calendar_id or self.calendars[0]
        return [
            e
            for e in self.events.values()
            if e["_calendar"] == calendar and e["status"] != "cancelled"
        ]

    def _store(self, event: dict[str, Any]) -> None:
        self.changes += 1
        event["etag"] = f'"{3321539261536000 + self.changes * 1000}"'
        event["updated"] = _google_now()
        event["_change"] = self.changes
        self.events[event["id"]] = event

    def _public(self, event: dict[str, Any]) -> dict[str, Any]:
        if event["status"] == "cancelled":  # a deleted event is only its id (documented)
            return {
                "kind": "calendar#event",
                "etag": event["etag"],
                "id": event["id"],
                "status": "cancelled",
            }
        return {k: v for k, v in event.items() if not k.startswith("_")}

    # --- HTTP -----------------------------------------------------------------------------------

    def handle(self, request: SeenRequest) -> Response:
        if request.path == "/token" and request.method == "POST":
            return self._token(request.body)
        parts = request.path.strip("/").split("/")
        if parts[:3] != ["calendar", "v3", "calendars"] or len(parts) < 4:
            return self.error_response(404, "notFound", "Not Found")
        auth = request.headers.get("Authorization", "")
        expiry = self.access_tokens.get(auth.removeprefix("Bearer "))
        if expiry is None or expiry < time.time():
            return self.error_response(401, "authError", "Invalid Credentials")
        calendar = parts[3]
        if calendar not in self.calendars:
            return self.error_response(404, "notFound", "Not Found")
        if len(parts) == 4 and request.method == "GET":
            return self.json_response(
                {
                    "kind": "calendar#calendar",
                    "etag": '"p32ofplf5q6gf80g"',
                    "id": calendar,
                    "summary": "Berlin-2-Aurora (8) [Video]",
                    "timeZone": self.calendar_zone,
                    "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
                }
            )
        if len(parts) < 5 or parts[4] != "events":
            return self.error_response(404, "notFound", "Not Found")
        query = {k: v[0] for k, v in request.query.items()}
        if len(parts) == 5:
            if request.method == "GET":
                return self._list(calendar, query)
            if request.method == "POST":
                return self._insert(calendar, request.body)
        if len(parts) == 6:
            event = self.events.get(parts[5])
            if event is None or event["_calendar"] != calendar:
                return self.error_response(404, "notFound", "Not Found")
            if request.method == "GET":
                return self.json_response(self._public(event))
            revives = isinstance(request.body, dict) and request.body.get("status") not in (
                None,
                "cancelled",
            )
            if event["status"] == "cancelled" and not (request.method == "PATCH" and revives):
                return self.error_response(410, "deleted", "Resource has been deleted")
            if_match = request.headers.get("If-Match")
            if if_match and if_match != event["etag"]:
                return self.error_response(412, "conditionNotMet", "Precondition Failed")
            if request.method == "PATCH":
                body = request.body if isinstance(request.body, dict) else {}
                if "iCalUID" in body and body["iCalUID"] != event["iCalUID"]:
                    return self.error_response(400, "invalid", "iCalUID cannot be changed")
                event.update(body)
                self._store(event)
                return self.json_response(self._public(event))
            if request.method == "DELETE":
                self.cancel_event(event["id"])
                return Response(status=204)
        return self.error_response(405, "badRequest", "Unsupported request")

    def _token(self, form: Any) -> Response:
        form = form if isinstance(form, dict) else {}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self.json_response(
                {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}, 400
            )
        try:
            token = jwt.decode(
                str(form.get("assertion", "")), self.public_key, algorithms=["RS256"]
            )
        except (JoseError, ValueError):
            return self.json_response(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, 400
            )
        claims = token.claims
        self.assertions.append({"header": token.header, "claims": claims})
        now = time.time()
        problems = []
        if claims.get("iss") != self.client_email:
            problems.append("Invalid issuer")
        if claims.get("aud") != self.token_uri:
            problems.append("Invalid JWT audience")
        if not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0)):
            problems.append("Invalid JWT: Token must be a short-lived token")
        if claims.get("exp", 0) - claims.get("iat", 0) > 3600:
            problems.append("Invalid JWT: Token must be a short-lived token (60 minutes)")
        if "https://www.googleapis.com/auth/calendar" not in str(claims.get("scope", "")).split():
            problems.append("Invalid OAuth scope or ID token audience provided.")
        if token.header.get("kid") not in (None, self.key_id):
            problems.append("Invalid JWT Signature.")
        if problems:
            return self.json_response(
                {"error": "invalid_grant", "error_description": problems[0]}, 400
            )
        access = "ya29." + secrets.token_urlsafe(40)
        self.access_tokens[access] = now + 3599
        return self.json_response(
            {"access_token": access, "expires_in": 3599, "token_type": "Bearer"}
        )

    def _list(self, calendar: str, query: dict[str, str]) -> Response:
        if "pageToken" in query:
            pages = self.page_tokens.pop(query["pageToken"], None)
            if pages is None:
                return self.error_response(400, "invalid", "Invalid page token value.")
            return self._page(calendar, pages)
        if "iCalUID" in query:
            items = [
                self._public(e)
                for e in self.events.values()
                if e["_calendar"] == calendar
                and e.get("iCalUID") == query["iCalUID"]
                and (e["status"] != "cancelled" or query.get("showDeleted") == "true")
            ]
            body = self._envelope(calendar)
            body["items"] = items
            return self.json_response(body)
        since = 0
        if "syncToken" in query:
            for forbidden in ("timeMin", "timeMax", "updatedMin", "orderBy", "q"):
                if forbidden in query:
                    return self.error_response(
                        400, "invalid", f"{forbidden} cannot be used with syncToken"
                    )
            state = self.sync_tokens.get(query["syncToken"])
            if state is None or state[0] != calendar:
                return self.error_response(
                    410,
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                )
            since = state[1]
        show_deleted = query.get("showDeleted") == "true" or since > 0
        items = [
            self._public(e)
            for e in sorted(self.events.values(), key=lambda e: e["_change"])
            if e["_calendar"] == calendar
            and e["_change"] > since
            and (show_deleted or e["status"] != "cancelled")
        ]
        size = min(int(query.get("maxResults", "250")), 2500)
        pages = [items[i : i + size] for i in range(0, len(items), size)] or [[]]
        sync = secrets.token_urlsafe(16)
        self.sync_tokens[sync] = (calendar, self.changes)
        pages[-1] = pages[-1] + [{"_sync": sync}]
        return self._page(calendar, pages)

    def _envelope(self, calendar: str) -> dict[str, Any]:
        return {
            "kind": "calendar#events",
            "etag": f'"p{self.changes:014d}"',
            "summary": calendar,
            "updated": _google_now(),
            "timeZone": self.calendar_zone,
            "accessRole": "writer",
            "defaultReminders": [],
        }

    def _page(self, calendar: str, pages: list[list[dict[str, Any]]]) -> Response:
        page, rest = pages[0], pages[1:]
        body = self._envelope(calendar)
        body["items"] = [item for item in page if "_sync" not in item]
        if rest:
            token = secrets.token_urlsafe(16)
            self.page_tokens[token] = rest
            body["nextPageToken"] = token
        else:
            body["nextSyncToken"] = next(item["_sync"] for item in page if "_sync" in item)
        return self.json_response(body)

    def _insert(self, calendar: str, body: Any) -> Response:
        if not isinstance(body, dict) or "start" not in body or "end" not in body:
            return self.error_response(400, "required", "Missing end time.")
        try:
            start = _parse_iso(body["start"]["dateTime"])
            end = _parse_iso(body["end"]["dateTime"])
        except (KeyError, TypeError, ValueError):
            return self.error_response(400, "invalid", "Invalid start time.")
        if end <= start:
            return self.error_response(400, "timeRangeEmpty", "The specified time range is empty.")
        uid = body.get("iCalUID")
        if uid and any(
            e.get("iCalUID") == uid and e["_calendar"] == calendar for e in self.events.values()
        ):
            return self.error_response(409, "duplicate", "The requested identifier already exists.")
        event_id = secrets.token_hex(13)
        event = {
            "kind": "calendar#event",
            "id": event_id,
            "_calendar": calendar,
            "status": "confirmed",
            "created": _google_now(),
            "creator": {"email": self.client_email},
            "organizer": {"email": calendar, "displayName": "Room", "self": True},
            "iCalUID": uid or f"{event_id}@google.com",
            "sequence": 0,
            "reminders": {"useDefault": True},
            "eventType": "default",
            **{k: v for k, v in body.items() if k != "iCalUID"},
        }
        self._store(event)
        return self.json_response(self._public(event))


def _google_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def in_days(days: int, hour: int, minute: int = 0, *, zone: str = "Europe/Berlin") -> datetime:
    """A wall-clock time `days` from today in `zone`, for events that are always ahead."""
    today = datetime.now(ZoneInfo(zone)).date() + timedelta(days=days)
    return datetime(today.year, today.month, today.day, hour, minute, tzinfo=ZoneInfo(zone))

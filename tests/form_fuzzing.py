"""What the form fuzz tests share: the seeded world on one backend, who may use each state-changing
rule and with which real objects, the form fields each view reads, hypothesis strategies for hostile
values, and a fingerprint of the database that tells a refused submission that wrote nothing from
one that left something half-written; and `fuzz_rule`, which puts them together for one rule.

The world is the demo company (two sites, a coordinator of each, an employee, an admin, and real
objects of every kind), seeded once per backend into a database of its own; every test then works
inside a transaction that is rolled back, so tests never see each other's writes."""

from __future__ import annotations

import ast
import hashlib
import inspect
import io
import os
import re
import tempfile
import textwrap
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, sessionmaker
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    DecimalField,
    EmailField,
    FloatField,
    IntegerField,
    MultipleFileField,
    SelectField,
    SelectMultipleField,
    TimeField,
)
from wtforms.fields.core import UnboundField

from portal.db import make_engine, utcnow
from portal.models import (
    Asset,
    Blackout,
    Booking,
    BookingStatus,
    Desk,
    Equipment,
    EquipmentLoan,
    Floor,
    KioskDevice,
    LoginSession,
    Notice,
    OutboxMessage,
    PurchaseOrder,
    RequestLine,
    Resource,
    RoleGrant,
    Room,
    Site,
    Ticket,
    User,
    Visit,
)
from portal.models.access_control import AccessGrant
from portal.models.budgets import SiteHoliday, SsoGroupRole
from portal.models.calendar_sync import CalendarLink, Provider
from portal.models.feeds import CalendarFeed, FeedKind
from portal.models.job_failures import JobFailure
from portal.models.service_desk import CatalogItem, SavedView, SlaPolicy, Vendor
from portal.models.visitors import DenyListEntry
from portal.schema import upgrade
from portal.services import demo_company, demo_history, demo_service_desk, demo_visitors
from portal.services.dashboards import DASHBOARDS
from tests.conftest import Browser, _postgres_database, make_test_app
from tests.test_route_permissions import (
    ADMIN_ONLY,
    COORDINATOR,
    PLAIN_ARGS,
    SIGNED_IN,
    url_for_rule,
)

LENA = "lena.fischer@example.com"  # employee, Berlin
JONAS = "jonas.weber@example.com"  # coordinator, Berlin
AMARA = "amara.okafor@example.com"  # admin
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}

# Public rules and who uses them; every other rule's user follows from its permission class.
PUBLIC_ACTORS = {
    "auth.login": "anonymous",
    "auth.logout": "employee",
    "door_events.receive": "anonymous",  # HMAC-signed; garbage must still be a clean 4xx
}
# Signed-in rules that act on someone else's request or ticket: the site's coordinator uses them.
COORDINATOR_ACTS = {
    "requests.approve_line",
    "requests.decline_line",
    "requests.mark_ready",
    "requests.mark_delivered",
    "requests.close",
    "tickets.assign",
    "tickets.change_status",
    "notices.read",  # the demo's notices are Jonas's
    "notices.open_notice",
    "notices.read_all",
}


def actor_for(endpoint: str) -> str:
    if endpoint.startswith("kiosk."):
        return "kiosk"
    if endpoint in PUBLIC_ACTORS:
        return PUBLIC_ACTORS[endpoint]
    if endpoint in ADMIN_ONLY:
        return "admin"
    if endpoint in COORDINATOR or endpoint in COORDINATOR_ACTS:
        return "coordinator"
    if endpoint in SIGNED_IN:
        return "employee"
    raise AssertionError(
        f"{endpoint}: say who uses it (PUBLIC_ACTORS here, or its permission class in"
        " tests/test_route_permissions.py)"
    )


def state_changing_rules(app: Flask) -> list[Any]:
    return sorted(
        (r for r in app.url_map.iter_rules() if (r.methods or set()) & STATE_CHANGING),
        key=lambda r: (r.endpoint, r.rule),
    )


# ---------------------------------------------------------------------------------------------
# The world


@dataclass
class World:
    url: str
    engine: Engine
    tmp: Path
    args: dict[str, Any]  # URL arguments naming real Berlin objects (or Lena's own)
    overrides: dict[str, dict[str, Any]]  # per endpoint, where the general choice does not fit
    baseline: dict[str, tuple[int, str]]  # the seeded database's fingerprint, per table
    tables: list[str]


def _first(session: Session, statement: Any) -> int:
    found = session.scalar(statement.limit(1))
    assert found is not None, f"the seeded world lacks {statement}"
    return found


def build_world(backend_url: str, tmp: Path) -> Iterator[World]:
    """A database of its own on the backend of `backend_url`, seeded with the demo company."""
    if backend_url.startswith("sqlite"):
        yield from _seed(f"sqlite:///{tmp / 'fuzz.sqlite3'}", tmp)
    else:
        for url in _postgres_database():
            yield from _seed(url, tmp)


def _seed(url: str, tmp: Path) -> Iterator[World]:
    engine = make_engine(url)
    upgrade(engine)
    now = utcnow()
    with Session(engine) as s, s.begin():
        demo_company.seed_demo(s)
        demo_visitors.seed_visitors(s, now)
        demo_service_desk.seed_service_desk(s, now, tmp / "instance" / "uploads")
        demo_history.seed_tickets_and_visits(s)
        args, overrides = _world_args(s, now)
    tables = sorted(sa_inspect(engine).get_table_names())
    with engine.connect() as conn:
        baseline = {t: table_fingerprint(conn, t) for t in tables}
    yield World(url, engine, tmp, args, overrides, baseline, tables)
    engine.dispose()


def _world_args(s: Session, now: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    berlin = s.scalar(select(Site).where(Site.slug == "berlin"))
    lena = s.scalar(select(User).where(User.email == LENA))
    jonas = s.scalar(select(User).where(User.email == JONAS))
    assert berlin and lena and jonas
    a = berlin.id
    in_berlin = Resource.site_id == a
    floor_id = _first(s, select(Floor.id).where(Floor.building.has(site_id=a)))
    room_id = _first(s, select(Room.id).where(in_berlin).order_by(Room.id))
    # objects the demo does not create, made directly in Berlin
    blackout = Blackout(site_id=a, starts_at=now, ends_at=now + timedelta(hours=1))
    holiday = SiteHoliday(site_id=a, day=date(2031, 6, 2), name="Fuzz day")
    link = CalendarLink(resource_id=room_id, provider=Provider.CALDAV)
    feed = CalendarFeed(owner_id=lena.id, kind=FeedKind.MINE, token_hash="fuzz-feed-token")
    mapping = SsoGroupRole(group_name="fuzz-group", role="coordinator", site_id=a)
    access_grant = AccessGrant(
        site_id=a, user_id=lena.id, starts_at=now, ends_at=now + timedelta(hours=8), state="failed"
    )
    failure = JobFailure(
        task_name="deliver_now",
        task_path="portal.jobs.deliver_now",
        arguments={"args": [0], "kwargs": {}},
        error_type="RuntimeError",
        open_key="fuzz-failure",
    )
    view = SavedView(user_id=jonas.id, name="Fuzz view", query="status=open")
    deny = DenyListEntry(site_id=a, name="Fuzz Person", name_key="fuzz person", reason="fuzz")
    s.add_all([blackout, holiday, link, feed, mapping, access_grant, failure, view, deny])
    s.flush()
    lena_booking = _first(
        s,
        select(Booking.id)
        .where(
            Booking.user_id == lena.id,
            Booking.status == BookingStatus.CONFIRMED,
            Booking.start_at > now,
        )
        .order_by(Booking.start_at),
    )
    pending = _first(
        s,
        select(Booking.id).where(
            Booking.status == BookingStatus.PENDING,
            Booking.resource_id.in_(select(Resource.id).where(in_berlin)),
        ),
    )
    lena_request = _first(
        s,
        select(Ticket.id).where(
            Ticket.requester_id == lena.id, Ticket.kind == "request", Ticket.closed.is_(False)
        ),
    )
    open_request = _first(
        s,
        select(Ticket.id).where(
            Ticket.site_id == a, Ticket.kind == "request", Ticket.status == "submitted"
        ),
    )
    berlin_issue = _first(
        s,
        select(Ticket.id).where(
            Ticket.site_id == a, Ticket.kind == "issue", Ticket.closed.is_(False)
        ),
    )
    lena_visit = _first(
        s, select(Visit.id).where(Visit.host_id == lena.id, Visit.status == "expected")
    )
    # someone in the lobby right now, for the coordinator's check-out
    in_lobby = s.get(
        Visit,
        _first(
            s,
            select(Visit.id)
            .where(Visit.site_id == a, Visit.status == "expected", Visit.id != lena_visit)
            .order_by(Visit.id.desc()),
        ),
    )
    in_lobby.status, in_lobby.checked_in_at = "checked_in", now
    s.flush()
    berlin_visit = in_lobby.id
    lena_asset = _first(s, select(Asset.id).where(Asset.holder_id == lena.id))
    berlin_asset = _first(s, select(Asset.id).where(Asset.site_id == a, Asset.status == "in_stock"))
    args: dict[str, Any] = {
        "site_id": a,
        "site_slug": berlin.slug,
        "floor_id": floor_id,
        "desk_id": _first(s, select(Desk.id).where(in_berlin).order_by(Desk.id)),
        "room_id": room_id,
        "resource_id": _first(s, select(Resource.id).where(in_berlin).order_by(Resource.id)),
        "booking_id": lena_booking,
        "ticket_id": lena_request,
        "visit_id": lena_visit,
        "asset_id": lena_asset,
        "order_id": _first(s, select(PurchaseOrder.id).where(PurchaseOrder.site_id == a)),
        "link_id": link.id,
        "feed_id": feed.id,
        "equipment_id": _first(s, select(Equipment.id).where(in_berlin)),
        "device_id": _first(s, select(KioskDevice.id).where(KioskDevice.site_id == a)),
        "blackout_id": blackout.id,
        "holiday_id": holiday.id,
        "user_id": lena.id,
        "slug": next(iter(DASHBOARDS)),
        "line_id": _first(s, select(RequestLine.id).where(RequestLine.ticket_id == open_request)),
        "loan_id": _first(s, select(EquipmentLoan.id).where(EquipmentLoan.user_id == lena.id)),
        "notice_id": _first(s, select(Notice.id).where(Notice.user_id == jonas.id)),
        "message_id": _first(s, select(OutboxMessage.id)),
        "grant_id": access_grant.id,
        "failure_id": failure.id,
        "view_id": view.id,
        "entry_id": deny.id,
        "mapping_id": mapping.id,
        "policy_id": _first(s, select(SlaPolicy.id)),
        "vendor_id": _first(s, select(Vendor.id)),
        "item_id": _first(s, select(CatalogItem.id).where(CatalogItem.active.is_(True))),
        "session_id": 0,  # filled per test: Lena's other session
    }
    request_line = {"ticket_id": open_request}
    overrides = {
        "bookings.decide": {"booking_id": pending},
        "requests.approve_line": request_line,
        "requests.decline_line": request_line,
        "requests.mark_ready": request_line,
        "requests.mark_delivered": request_line,
        "issues.me_too": {"ticket_id": berlin_issue},
        "tickets.assign": {"ticket_id": berlin_issue},
        "tickets.change_status": {"ticket_id": berlin_issue},
        "lobby.check_out": {"visit_id": berlin_visit},
        "requests.close": {
            "ticket_id": _first(
                s,
                select(Ticket.id).where(
                    Ticket.requester_id == lena.id, Ticket.status == "delivered"
                ),
            )
        },
        "tickets.cancel": {
            "ticket_id": _first(
                s,
                select(Ticket.id).where(
                    Ticket.requester_id == lena.id, Ticket.kind == "issue", Ticket.closed.is_(False)
                ),
            )
        },
        "admin.users.revoke": {
            "user_id": jonas.id,
            "grant_id": _first(s, select(RoleGrant.id).where(RoleGrant.user_id == jonas.id)),
        },
        "kiosk.walk_in_step": {"step": "details"},
        "kiosk.invitation_step": {"step": "confirm"},
        "equipment.hand_over": {"asset_id": berlin_asset},
        "equipment.returned": {
            "asset_id": _first(
                s, select(Asset.id).where(Asset.site_id == a, Asset.holder_id.is_not(None))
            )
        },
        "equipment.lost": {"asset_id": berlin_asset},
        "equipment.retire": {"asset_id": berlin_asset},
    }
    return args, overrides


# ---------------------------------------------------------------------------------------------
# The fingerprint: rows per table and a hash of every row, kept up to date cheaply by rehashing only
# the tables that saw an INSERT, UPDATE or DELETE since the last look.

_DML = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)


def table_fingerprint(conn: Connection, table: str) -> tuple[int, str]:
    rows = sorted(repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{table}"')))
    return len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()


class Fingerprint:
    """Watches one connection; `current()` is the database's fingerprint, per table."""

    def __init__(self, conn: Connection, baseline: dict[str, tuple[int, str]]) -> None:
        self.conn = conn
        self.tables = dict(baseline)
        self.dirty: set[str] = set()
        event.listen(conn, "before_cursor_execute", self._watch)

    def _watch(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if found := _DML.match(statement):
            self.dirty.add(found.group(1))

    def current(self) -> dict[str, tuple[int, str]]:
        dirty, self.dirty = self.dirty, set()
        for table in dirty:
            self.tables[table] = table_fingerprint(self.conn, table)
        self.dirty.clear()  # our own SELECTs are not writes, but be sure nothing lingers
        return dict(self.tables)

    def counts_agree(self) -> bool:
        """Belt and braces: the row counts the watcher believes match the database's."""
        union = " UNION ALL ".join(
            f"SELECT '{t}', COUNT(*) FROM \"{t}\"" for t in sorted(self.tables)
        )
        actual = dict(self.conn.execute(text(union)).all())
        self.dirty.clear()
        return actual == {t: n for t, (n, _h) in self.tables.items()}


def changed_tables(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(t for t in after if before.get(t) != after[t])


# ---------------------------------------------------------------------------------------------
# Form fields each view reads, found in its source (and in the same module's helpers and form
# classes it names), so a new field is fuzzed without anyone listing it.

_FORM_READ = re.compile(
    r"""(?:form|values|files)(?:\.get(?:list)?\(\s*|\[\s*)["']([A-Za-z_][\w-]*)["']"""
)


@dataclass
class FormField:
    name: str
    kind: str  # text, int, decimal, date, time, datetime, bool, choice, email, file
    choices: tuple[str, ...] = ()  # a select's fixed choices, when its class names them


@dataclass
class FormShape:
    fields: list[FormField] = field(default_factory=list)

    def add(self, name: str, kind: str, choices: tuple[str, ...] = ()) -> None:
        if name != "csrf_token" and all(f.name != name for f in self.fields):
            self.fields.append(FormField(name, kind, choices))


_KINDS: list[tuple[type, str]] = [
    (MultipleFileField, "file"),
    (FileField, "file"),
    (BooleanField, "bool"),
    (DateTimeLocalField, "datetime"),
    (DateField, "date"),
    (TimeField, "time"),
    (IntegerField, "int"),
    (DecimalField, "decimal"),
    (FloatField, "decimal"),
    (SelectMultipleField, "choice"),
    (SelectField, "choice"),
    (EmailField, "email"),
]


def _kind_of(field_class: type) -> str:
    for base, kind in _KINDS:
        if issubclass(field_class, base):
            return kind
    return "text"


def _form_class_fields(form_class: type) -> list[FormField]:
    found = []
    for name in dir(form_class):
        value = getattr(form_class, name, None)
        if isinstance(value, UnboundField):
            choices = value.kwargs.get("choices") or ()
            values = tuple(
                str(c[0] if isinstance(c, tuple | list) else c)
                for c in (choices if isinstance(choices, list | tuple) else ())
            )
            found.append(FormField(name, _kind_of(value.field_class), values))
    return found


def form_shape(view: Any) -> FormShape:
    """The view's fields: from the form classes it (or a helper in its module) names, and from
    what it reads out of `request.form` directly; helpers are followed two calls deep."""
    view = inspect.unwrap(view)
    module = inspect.getmodule(view)
    shape = FormShape()
    seen: set[Any] = set()
    todo = [(view, 0)]
    while todo:
        thing, depth = todo.pop(0)
        if thing in seen:
            continue
        seen.add(thing)
        source = textwrap.dedent(inspect.getsource(thing))
        for name in _FORM_READ.findall(source):
            shape.add(name, "file" if f'files.getlist("{name}"' in source else "text")
        if depth >= 2:
            continue
        names = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
        for name in sorted(names):
            found = getattr(module, name, None)
            if isinstance(found, type) and issubclass(found, FlaskForm):
                for f in _form_class_fields(found):
                    shape.add(f.name, f.kind, f.choices)
            elif (inspect.isfunction(found) or inspect.isclass(found)) and (
                inspect.getmodule(found) is module
            ):
                todo.append((found, depth + 1))
    return shape


_HX_ACTION = re.compile(r"""hx-(?:post|put|patch|delete)="\{\{\s*url_for\(\s*'([\w.]+)'""")


def htmx_driven_endpoints(app: Flask) -> set[str]:
    """Endpoints the UI calls with htmx (hx-post and friends), as opposed to plain forms; the
    kiosk's forms all go through its htmx form macro."""
    found = {e for e in app.view_functions if e.startswith("kiosk.")}
    for root in (Path(app.root_path) / "templates", Path(app.root_path).parent / "kiosk"):
        for template in root.rglob("*.html"):
            found.update(_HX_ACTION.findall(template.read_text()))
    return found


# ---------------------------------------------------------------------------------------------
# Hostile values

HUGE = "x" * 100_001
NASTY = [
    "",
    " ",
    "\t\n\r ",
    "\x00",
    "a\x00b",
    "\x1b[31m\x07\x08\x7f",
    "\u202eevil\u202c",  # right-to-left override
    "שלום עולם",
    "مرحبا",
    "👩🏽‍💻🏳️‍🌈",
    "e\u0301\u0301\u0301\u0301",  # stacked combining marks
    "Z\u0351\u0310\u0357\u035b\u0346",
    "\ufeff\u200b\u2060",
    "𝕱𝖔𝖞𝖊𝖗",
    "'; DROP TABLE users; --",
    "<script>alert(1)</script>",
    "{{ 7*7 }}",
    "%00",
    "../../etc/passwd",
    "-1",
    "0",
    "-0",
    "2147483648",  # one past PostgreSQL's INTEGER
    "99999999999",
    "9223372036854775808",  # one past SQLite's INTEGER
    "99999999999999999999999999",
    "-99999999999999999999999999",
    "1e309",
    "NaN",
    "inf",
    "0x10",
    "1.5",
    "1,5",
    "٣",  # an Arabic-Indic digit: str.isdigit() says yes, int() agrees, SQL may not
    "²",  # isdigit() says yes, int() says no
    "2026-02-30",
    "0000-00-00",
    "9999-12-31",
    "0001-01-01",
    "2026-13-01",
    "25:61",
    "24:00",
    "10:00",
    "2026-12-02T10:00",
    "2026-12-02T25:00",
    "true",
    "on",
    "[]",
    "{}",
    HUGE,
    "é🙂" * 30_000,
]
TIME_OF_DAY = ["00:00", "08:00", "09:30", "12:00", "17:45", "23:59"]

nasty = st.sampled_from(NASTY)
unicode_text = st.text(max_size=30)  # every code point but surrogates: control chars, RTL, emoji
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.integers(min_value=-3, max_value=400)
).map(str)
days = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(str)
near_days = st.integers(min_value=-3, max_value=40).map(
    lambda n: str(date(2026, 12, 2) + timedelta(days=n))
)
times = st.sampled_from(TIME_OF_DAY)
plausible = {
    "text": st.text(min_size=1, max_size=20),
    "int": st.integers(min_value=-2, max_value=50).map(str),
    "decimal": st.sampled_from(["0", "1.50", "12.5", "-1", "1000000"]),
    "date": near_days,
    "time": times,
    "datetime": st.tuples(near_days, times).map("T".join),
    "bool": st.sampled_from(["y", "on", "1"]),
    "choice": st.sampled_from(["", "1", "2", "desk", "room", "high", "low"]),
    "email": st.sampled_from(["ann@example.com", "not-an-email", "a@b", "ann@exa mple.com"]),
}


# What a field read straight from request.form probably holds, by its name.
_BY_NAME: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"email"), "email"),
    (re.compile(r"(^|_)(date|day|first_day|last_day|needed_by|until|from)$"), "date"),
    (re.compile(r"(^|_)(start|end|ends|opens_at|closes_at|time|midday)$"), "time"),
    (
        re.compile(r"(^|_)(id|version|quantity|qty|count|counted|level|minutes|duration|days)$"),
        "int",
    ),
    (re.compile(r"^(item|resource|site|floor|building|line_item|line_qty|assignee)$"), "int"),
]


def _likely_kind(f: FormField) -> str:
    if f.kind != "text":
        return f.kind
    return next((kind for pattern, kind in _BY_NAME if pattern.search(f.name)), "text")


def hostile_value(kind: str) -> st.SearchStrategy[Any]:
    if kind == "file":
        upload = st.tuples(
            st.sampled_from(
                [b"", b"\x89PNG\r\n\x1a\n\x00\x00", b"GIF89a", b"%PDF-1.4", b"\x00" * 64]
            ),
            st.sampled_from(["plan.png", "photo.jpg", "../evil.svg", "événement.webp", "x", ""]),
        ).map(lambda pair: (io.BytesIO(pair[0]), pair[1]))
        return st.one_of(upload, nasty)
    return st.one_of(nasty, unicode_text, numbers, days, plausible.get(kind, unicode_text))


def plausible_value(f: FormField) -> st.SearchStrategy[Any]:
    if f.choices:
        return st.sampled_from(f.choices)
    kind = _likely_kind(f)
    if kind == "file":
        return hostile_value("file")
    return plausible.get(kind, plausible["text"])


def _one(draw: Any, f: FormField, hostile: bool) -> Any:
    if not hostile:
        return draw(plausible_value(f))
    value = hostile_value(_likely_kind(f))
    how = draw(st.sampled_from(["missing", "once", "once", "once", "twice"]))
    if how == "once":
        return draw(value)
    if how == "twice":
        return [draw(value), draw(value)]
    return None


@st.composite
def submissions(draw: Any, shape: FormShape) -> dict[str, Any]:
    """A form body. Mostly plausible forms with one hostile field (so the input gets past the
    first check and into the rules behind it), sometimes all plausible, sometimes all hostile.
    A hostile field may be missing, or sent twice (a duplicate); stray fields come along."""
    mode = draw(st.sampled_from(["one", "one", "one", "none", "all"]))
    target = draw(st.integers(0, max(len(shape.fields) - 1, 0)))
    form: dict[str, Any] = {}
    for index, f in enumerate(shape.fields):
        hostile = mode == "all" or (mode == "one" and index == target)
        value = _one(draw, f, hostile)
        if value is not None:
            form[f.name] = value
    for name in draw(st.lists(st.text(min_size=1, max_size=8), max_size=2)):
        form.setdefault(name, draw(st.one_of(nasty, unicode_text)))
    return form


# ---------------------------------------------------------------------------------------------
# Clients


def signed_in_client(app: Flask, email: str | None) -> tuple[Browser, str]:
    app.test_client_class = Browser
    client: Browser = app.test_client()  # type: ignore[assignment]
    if email:
        client.sign_in(email, demo_company.DEMO_PASSWORD)
    return client, client.csrf_token()


def kiosk_client(app: Flask, session: Session) -> tuple[Browser, str]:
    from portal.services import kiosk_devices
    from portal.services.audit import Actor

    berlin = session.scalar(select(Site).where(Site.slug == "berlin"))
    _device, code = kiosk_devices.create(
        session, Actor.system("fuzz"), berlin, "Fuzz lobby", now=utcnow()
    )
    session.commit()
    app.test_client_class = Browser
    client: Browser = app.test_client()  # type: ignore[assignment]

    def token() -> str:
        page = client.get("/kiosk/").get_data(as_text=True)
        return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)  # type: ignore[union-attr]

    paired = client.post(
        "/kiosk/pair",
        data={"code": code, "csrf_token": token()},
        headers={"HX-Request": "true"},
    )
    assert paired.status_code == 204, paired.status_code
    return client, token()


def make_app(world: World, tmp: Path, conn: Connection) -> Flask:
    factory = sessionmaker(
        bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    return make_test_app(tmp, world.url, SESSION_FACTORY=factory, RATELIMIT_ENABLED=False)


def url_for(world: World, rule: Any, extra: dict[str, Any]) -> str:
    args = {**PLAIN_ARGS, **world.args, **world.overrides.get(rule.endpoint, {}), **extra}
    return url_for_rule(rule, args)


def readable_pages(app: Flask, url: str) -> list[str]:
    """The form's own address and its parent's, where they answer GET: after an accepted write
    they show what was written, so they must still render."""
    adapter = app.url_map.bind("localhost")
    found = []
    for candidate in (url, url.rstrip("/").rsplit("/", 1)[0] or "/"):
        try:
            adapter.match(candidate, method="GET")
        except Exception:  # noqa: BLE001 - not a page (404, 405 or a redirect)
            continue
        if candidate not in found:
            found.append(candidate)
    return found


# ---------------------------------------------------------------------------------------------
# One rule, fuzzed

# Modest by default so CI stays fast; FOYER_FUZZ_EXAMPLES=200 digs deeper (same seed, more inputs).
EXAMPLES_PER_RULE = int(os.environ.get("FOYER_FUZZ_EXAMPLES", "12"))

# State-changing rules not fuzzed here, each with the reason.
NOT_FUZZED: dict[str, str] = {}

# Tables a refused request may still write, per endpoint, each with the reason.
WRITTEN_EVEN_WHEN_REFUSED: dict[str, dict[str, str]] = {
    "auth.login": {"audit_events": "a failed sign-in is recorded for the security trail"},
}

# Rules that refuse whatever a signed-in user can send, each with the reason; every other rule must
# answer at least one example with something other than 401, 403 or 404 (the fuzz reached its form).
REFUSED_WHATEVER_IS_SENT = {
    "kiosk.elsewhere": "the kiosk's catch-all: a 404 for every unknown kiosk path",
    "door_events.receive": "needs the door controller's HMAC signature (test_access_control)",
}

# htmx forms that swap with hx-select: they pick their part out of the whole page on purpose.
WHOLE_PAGE_BY_DESIGN = {"admin.catalog.set_stock": "hx-select=#main on the stock form"}


def _endpoints() -> tuple[list[str], set[str]]:
    """The rules as the app has them now: a new form is fuzzed the day it appears."""
    with tempfile.TemporaryDirectory() as tmp:
        app = make_test_app(Path(tmp), f"sqlite:///{tmp}/unused.sqlite3")
        rules = {rule.endpoint for rule in state_changing_rules(app)}
        return sorted(rules - set(NOT_FUZZED)), htmx_driven_endpoints(app)


# HTMX_DRIVEN: forms the UI submits with htmx. A plain form is never sent as a (non-boosted)
# htmx request, so for it an htmx refusal may be the whole page; it still must not fail or write.
FUZZED, HTMX_DRIVEN = _endpoints()
# Two test modules share the rules, so pytest-xdist (--dist loadfile) runs them on two workers.
ADMIN_RULES = [e for e in FUZZED if e.startswith("admin.")]
PEOPLE_RULES = [e for e in FUZZED if not e.startswith("admin.")]


def short(form: dict[str, Any]) -> str:
    def one(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(one(v) for v in value) + "]"
        if isinstance(value, tuple):
            return f"<file {value[1]!r}>"
        text = repr(value)
        return text if len(text) <= 40 else f"{text[:30]}...({len(value)} chars)"

    return "{" + ", ".join(f"{k!r}: {one(v)}" for k, v in form.items()) + "}"


def _client_for(actor: str, app: Any, conn: Any) -> tuple[Any, str]:
    if actor == "kiosk":
        with Session(bind=conn, join_transaction_mode="create_savepoint") as session:
            return kiosk_client(app, session)
    email = {"employee": LENA, "coordinator": JONAS, "admin": AMARA}.get(actor)
    return signed_in_client(app, email)


def _home(actor: str) -> str:
    return "/kiosk/" if actor == "kiosk" else "/"


def fuzz_rule(fuzz_world: World, endpoint: str, tmp_path: Path) -> None:
    """Hypothesis's examples against one rule, as someone who may use it; see the test modules."""
    conn = fuzz_world.engine.connect()
    outer = conn.begin()
    try:
        fingerprint = Fingerprint(conn, fuzz_world.baseline)
        app = make_app(fuzz_world, tmp_path, conn)
        actor = actor_for(endpoint)
        client, token = _client_for(actor, app, conn)
        extra: dict[str, Any] = {}
        if endpoint == "account.end_one_session":
            signed_in_client(app, LENA)  # Lena on a second device: the session to end
            lena = conn.scalar(select(User.id).where(User.email == LENA))
            extra["session_id"] = conn.scalar(
                select(LoginSession.id)
                .where(LoginSession.user_id == lena)
                .order_by(LoginSession.id.desc())
            )
        rule = next(r for r in state_changing_rules(app) if r.endpoint == endpoint)
        url = url_for(fuzz_world, rule, extra)
        methods = sorted((rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"})
        shape = form_shape(app.view_functions[endpoint])
        pages_after_write = readable_pages(app, url)
        statuses: Counter[int] = Counter()

        @settings(
            max_examples=EXAMPLES_PER_RULE,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            form=submissions(shape),
            htmx=st.booleans(),
            method=st.sampled_from(methods),
        )
        @example(form={}, htmx=False, method=methods[0])
        @example(form={f.name: "" for f in shape.fields}, htmx=True, method=methods[0])
        def submit(form: dict[str, Any], htmx: bool, method: str) -> None:
            before = fingerprint.current()
            headers = {"X-CSRFToken": token}
            if htmx:
                headers["HX-Request"] = "true"
            data = {"csrf_token": token, **form}
            response = client.open(url, method=method, data=data, headers=headers)
            status = response.status_code
            statuses[status] += 1
            where = f"{method} {url}{' (htmx)' if htmx else ''} as {actor} with {short(form)}"
            assert status < 500, f"{where} answered {status}"
            after = fingerprint.current()
            if status >= 400:
                written = [
                    t
                    for t in changed_tables(before, after)
                    if t not in WRITTEN_EVEN_WHEN_REFUSED.get(endpoint, {})
                ]
                assert written == [], f"{where} was refused ({status}) but wrote {written}"
                if htmx and endpoint in HTMX_DRIVEN and endpoint not in WHOLE_PAGE_BY_DESIGN:
                    page = response.get_data(as_text=True).lower()
                    assert "<html" not in page, f"{where}: a whole page for htmx ({status})"
            elif changed_tables(before, after):
                # accepted: the person's pages still render with what was written
                home = client.get(_home(actor), follow_redirects=True)
                assert home.status_code == 200, f"after {where}: home answered {home.status_code}"
                for page in pages_after_write:
                    shown = client.get(page)
                    assert shown.status_code < 500, (
                        f"after {where}: {page} answered {shown.status_code}"
                    )
                fingerprint.current()

        submit()
        assert fingerprint.counts_agree(), "the write watcher missed a change"
        if endpoint not in REFUSED_WHATEVER_IS_SENT:
            assert set(statuses) - {401, 403, 404}, f"never got past the door: {statuses}"
        print(
            f"{endpoint}: {dict(sorted(statuses.items()))} fields={[f.name for f in shape.fields]}"
        )
    finally:
        outer.rollback()
        conn.close()

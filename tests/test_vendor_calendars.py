"""Microsoft 365 and Google Workspace room calendars: each adapter, against a loopback server that
speaks its vendor's documented JSON (tests/vendor_calendars.py), lists the room's events and then
only what changed, pushes Foyer bookings with etags, declines what the room cannot take so the
organiser sees it on the vendor's side, starts over when the vendor forgets the sync token, and
turns every way the vendor can fail into the right SyncError. The vendors' own sample responses
(tests/fixtures/vendor_calendars/) are read as well, so the parsers agree with the documentation,
not only with our fakes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from joserfc.jwk import RSAKey
from werkzeug.wrappers import Response

from integrations.calendar_sync import google, graph
from integrations.calendar_sync.base import Gone, RemoteEvent, SyncError
from integrations.calendar_sync.google import GoogleResourceCalendar
from integrations.calendar_sync.graph import GraphRoomCalendar
from integrations.ical import CalendarEvent, EventStatus, Person
from tests.vendor_calendars import FakeGoogle, FakeGraph, FakeVendor, SeenRequest, in_days

FIXTURES = Path(__file__).parent / "fixtures" / "vendor_calendars"
BERLIN = ZoneInfo("Europe/Berlin")
TIMEOUT = 0.5  # the "slow" fault answers after 1.5 s


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def booking_event(
    booking_id: int = 41, *, start: datetime | None = None, hours: int = 1
) -> CalendarEvent:
    start = start or in_days(3, 10)
    return CalendarEvent(
        uid=f"booking-{booking_id}@foyer.test",
        sequence=0,
        stamp=datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
        start=start,
        end=start + timedelta(hours=hours),
        time_zone="Europe/Berlin",
        summary="Team sync – Room Aurora",
        location="Aurora, Floor 2, Berlin",
        attendees=(Person("lena.fischer@example.com", "Lena Fischer"),),
    )


def expect_sync_error(call, *, transient: bool) -> SyncError:
    with pytest.raises(SyncError) as caught:
        call()
    assert not isinstance(caught.value, Gone)
    assert caught.value.transient is transient, str(caught.value)
    return caught.value


# =============================================================================================
# Microsoft Graph


@pytest.fixture
def m365() -> Iterator[FakeGraph]:
    server = FakeGraph().start()
    yield server
    server.stop()


def room_calendar(server: FakeGraph, **options: Any) -> GraphRoomCalendar:
    return GraphRoomCalendar(
        server.tenant_id,
        server.client_id,
        options.pop("client_secret", server.client_secret),
        server.mailboxes[0],
        login_base=server.login_base,
        graph_base=server.graph_base,
        timeout=options.pop("timeout", TIMEOUT),
        **options,
    )


def test_graph_reads_microsofts_documented_event_json():
    first_page = fixture("graph_delta_initial_page.json")["value"]
    plan = graph.parse_event(first_page[0])
    assert plan.remote_id == "AAMkADNVxRAAA="
    assert plan.summary == "Plan shopping list"
    assert plan.start == datetime(2016, 12, 9, 20, 30, tzinfo=UTC)
    assert plan.end == datetime(2016, 12, 9, 22, 0, tzinfo=UTC)
    assert (plan.organizer_name, plan.organizer_email) == (
        "Samantha Booth",
        "samanthab@contoso.onmicrosoft.com",
    )
    assert plan.etag == 'W/"EZ9r3czxY0m2jz8c45czkwAAFXcvIQ=="'
    assert plan.uid == "AAMkADNVxRAAA=@graph.microsoft.com"  # the sample omits iCalUId

    created = graph.parse_event(fixture("graph_event_created.json"))
    # 11:00 "Pacific Standard Time" on 15 April 2017 is daylight time: 18:00 UTC.
    assert created.start == datetime(2017, 4, 15, 18, 0, tzinfo=UTC)
    assert created.uid.startswith("040000008200E00074C5B7101A82E008")
    assert created.organizer_email == "danas@contoso.onmicrosoft.com"


class GraphReplay(FakeVendor):
    """Answers with Microsoft's documented delta pages, links pointed at this server."""

    def handle(self, request: SeenRequest) -> Response:
        if request.path.endswith("/oauth2/v2.0/token"):
            return self.json_response(
                {"token_type": "Bearer", "expires_in": 3599, "access_token": "t"}
            )
        name = {
            "": "graph_delta_initial_page.json",
            "$skiptoken": "graph_delta_next_round.json",
        }["$skiptoken" if "$skiptoken" in request.query else ""]
        text = (FIXTURES / name).read_text()
        return Response(
            text.replace(
                "https://graph.microsoft.com/v1.0/me/",
                f"{self.base}/v1.0/users/room@contoso.example/",
            ),
            mimetype="application/json",
        )


def test_graph_follows_the_documented_paging_and_removals():
    server = GraphReplay().start()
    try:
        calendar = GraphRoomCalendar(
            "t",
            "c",
            "s",
            "room@contoso.example",
            login_base=server.base,
            graph_base=f"{server.base}/v1.0",
        )
        changes = calendar.changes_since(None)
    finally:
        server.stop()
    assert changes.full
    assert [e.summary for e in changes.changed] == [
        "Plan shopping list",
        "Pick up car",
        "Attend service",
    ]
    assert changes.deleted == ["AAMkADk0MGFkODE3LWE4MmYtNDRhOS04OGQLkRkXbBznTvAADb6ytyAAA="]
    assert changes.token and "$deltatoken=R0usmcFuQtZdtpk4" in changes.token
    delta_request = server.seen("GET", "/calendarView/delta")[0]
    assert 'outlook.timezone="UTC"' in delta_request.headers["Prefer"]
    assert {"startDateTime", "endDateTime"} <= set(delta_request.query)


def test_graph_lists_the_room_then_only_what_changed(m365):
    standup = m365.add_external_event("Stand-up", in_days(1, 9), in_days(1, 9, 15))
    review = m365.add_external_event("Design review", in_days(2, 14), in_days(2, 15))
    offsite = m365.add_external_event("Offsite prep", in_days(5, 10), in_days(5, 12))
    m365.add_external_event("Last year's party", in_days(-400, 18), in_days(-400, 22))
    calendar = room_calendar(m365, page_size=2)

    first = calendar.changes_since(None)
    assert first.full and first.token
    assert {e.summary for e in first.changed} == {"Stand-up", "Design review", "Offsite prep"}
    by_id = {e.remote_id: e for e in first.changed}
    assert by_id[review["id"]].start == in_days(2, 14)
    assert by_id[review["id"]].organizer_email == "danas@contoso.example"
    assert by_id[review["id"]].uid == review["iCalUId"]
    assert len(m365.seen("GET", "/calendarView/delta")) == 2  # 3 events, 2 per page

    assert calendar.changes_since(first.token).changed == []

    m365.change_external_event(review["id"], start=in_days(2, 16), end=in_days(2, 17))
    m365.remove_event(standup["id"])
    lunch = m365.add_external_event("Lunch & learn", in_days(4, 12), in_days(4, 13))
    second = calendar.changes_since(first.token)
    assert not second.full
    assert {e.remote_id: e.start for e in second.changed} == {
        review["id"]: in_days(2, 16),
        lunch["id"]: in_days(4, 12),
    }
    assert second.deleted == [standup["id"]]
    assert offsite["id"] not in {e.remote_id for e in second.changed}
    assert m365.tokens_issued == 1  # one access token for all of it


def test_graph_pushes_a_booking_and_keeps_its_uid(m365):
    calendar = room_calendar(m365)
    event = booking_event(41)
    remote_id, etag = calendar.put(event, None, None)

    stored = m365.events[remote_id]
    assert stored["subject"] == "Team sync – Room Aurora"
    assert stored["transactionId"] == "booking-41@foyer.test"
    assert stored["start"] == {
        "dateTime": event.start.replace(tzinfo=None).isoformat(),
        "timeZone": "Europe/Berlin",
    }
    assert "Lena Fischer" in stored["body"]["content"]
    assert stored["attendees"] == []  # Foyer sends its own invitation; Exchange must not
    assert etag == stored["@odata.etag"]

    listed = calendar.changes_since(None).changed
    assert [(e.remote_id, e.uid, e.start) for e in listed] == [
        (remote_id, "booking-41@foyer.test", event.start)
    ]

    # A retried create (its first answer was lost) does not duplicate the event.
    assert calendar.put(event, None, None)[0] == remote_id
    assert len(m365.events_of()) == 1

    moved = replace(
        event,
        start=event.start + timedelta(hours=2),
        end=event.end + timedelta(hours=2),
        sequence=1,
    )
    same_id, new_etag = calendar.put(moved, remote_id, etag)
    assert same_id == remote_id and new_etag != etag
    assert m365.seen("PATCH")[-1].headers["If-Match"] == etag
    assert (
        m365.events[remote_id]["start"]["dateTime"] == moved.start.replace(tzinfo=None).isoformat()
    )

    # Someone edited it in Outlook meanwhile: the stale etag is refused, nothing is overwritten.
    error = expect_sync_error(lambda: calendar.put(event, remote_id, etag), transient=True)
    assert "changed in Microsoft 365" in str(error)
    assert (
        m365.events[remote_id]["start"]["dateTime"] == moved.start.replace(tzinfo=None).isoformat()
    )

    calendar.delete(remote_id, new_etag)
    assert m365.events_of() == []
    calendar.delete(remote_id, new_etag)  # already gone: fine

    # Pushing a change to an event deleted in Outlook puts it back.
    again, _ = calendar.put(moved, remote_id, new_etag)
    assert again != remote_id and m365.events[again]["subject"] == "Team sync – Room Aurora"


def test_graph_declines_so_the_organiser_hears_it(m365):
    clash = m365.add_external_event("Board meeting", in_days(3, 10), in_days(3, 11))
    calendar = room_calendar(m365)
    first = calendar.changes_since(None)
    [remote] = first.changed

    calendar.decline(remote, "Aurora is booked in Foyer from 10:00 to 11:00.")

    assert m365.declines == [
        {
            "event_id": clash["id"],
            "subject": "Board meeting",
            "organizer": "danas@contoso.example",
            "comment": "Aurora is booked in Foyer from 10:00 to 11:00.",
            "sendResponse": True,
        }
    ]
    assert calendar.changes_since(first.token).deleted == [clash["id"]]
    calendar.decline(remote, "again")  # already gone: fine
    assert len(m365.declines) == 1

    # Written straight into the room's own calendar (the room organises it): it cannot be declined,
    # so it is removed.
    own_id, _ = calendar.put(booking_event(7), None, None)
    own = next(e for e in calendar.changes_since(None).changed if e.remote_id == own_id)
    calendar.decline(own, "outside opening hours")
    assert own_id not in m365.events and len(m365.declines) == 1


def test_graph_starts_over_when_the_delta_token_is_gone(m365):
    m365.add_external_event("Stand-up", in_days(1, 9), in_days(1, 9, 15))
    calendar = room_calendar(m365)
    token = calendar.changes_since(None).token
    m365.expire_delta_tokens()
    with pytest.raises(Gone):
        calendar.changes_since(token)
    again = calendar.changes_since(None)
    assert again.full and [e.summary for e in again.changed] == ["Stand-up"]

    # A token whose window is running out starts a fresh window the same way.
    _, _, link = again.token.split("|", 2)
    ending = f"graph1|{(datetime.now(UTC) + timedelta(days=30)).isoformat()}|{link}"
    with pytest.raises(Gone):
        calendar.changes_since(ending)
    with pytest.raises(Gone):
        calendar.changes_since("not a token of ours")


def test_graph_will_not_follow_links_off_its_own_api(m365):
    calendar = room_calendar(m365)
    future = (datetime.now(UTC) + timedelta(days=399)).isoformat()
    expect_sync_error(
        lambda: calendar.changes_since(
            f"graph1|{future}|https://attacker.example/v1.0/x?$deltatoken=1"
        ),
        transient=False,
    )
    assert m365.requests == []  # not even a token request


@pytest.mark.parametrize(
    ("fault", "transient", "words"),
    [
        ({"kind": "429", "retry_after": 7}, True, "retry after 7 s"),
        ({"kind": "503", "retry_after": 30}, True, "HTTP 503"),
        ({"kind": "500"}, True, "HTTP 500"),
        ({"kind": "403"}, False, "Calendars.ReadWrite"),
        ({"kind": "malformed"}, False, "malformed JSON"),
        ({"kind": "slow", "delay": 1.5}, True, "did not answer within 0.5 s"),
    ],
)
def test_graph_failures_become_the_right_sync_error(m365, fault, transient, words):
    m365.fail(path_contains="/calendarView/delta", **fault)
    error = expect_sync_error(lambda: room_calendar(m365).changes_since(None), transient=transient)
    assert words in str(error)
    if fault["kind"] in ("429", "503"):
        assert error.retry_after == fault["retry_after"]


def test_graph_test_connection_button(m365):
    assert room_calendar(m365).check() == "Aurora"
    wrong_room = GraphRoomCalendar(
        m365.tenant_id,
        m365.client_id,
        m365.client_secret,
        "nobody@contoso.example",
        login_base=m365.login_base,
        graph_base=m365.graph_base,
        timeout=TIMEOUT,
    )
    error = expect_sync_error(wrong_room.check, transient=False)
    assert "no mailbox nobody@contoso.example" in str(error)
    error = expect_sync_error(room_calendar(m365, client_secret="wrong").check, transient=False)
    assert "Invalid client secret" in str(error)


def test_graph_sign_in_failures(m365):
    error = expect_sync_error(
        lambda: room_calendar(m365, client_secret="wrong").changes_since(None), transient=False
    )
    assert "AADSTS7000215" in str(error) and "wrong" not in str(error)

    calendar = room_calendar(m365)
    calendar.changes_since(None)
    m365.access_tokens.clear()  # the token was revoked: one new token, and it works
    calendar.changes_since(None)
    assert m365.tokens_issued == 2

    m365.fail("401", path_contains="/calendarView")
    m365.fail("401", path_contains="/calendarView")
    error = expect_sync_error(lambda: calendar.changes_since(None), transient=False)
    assert "HTTP 401" in str(error)

    m365.fail("429", path_contains="/oauth2/", retry_after=5)
    m365.access_tokens.clear()
    error = expect_sync_error(lambda: calendar.put(booking_event(), None, None), transient=True)
    assert error.retry_after == 5

    m365.stop()
    expect_sync_error(lambda: room_calendar(m365).changes_since(None), transient=True)


# =============================================================================================
# Google Calendar


@pytest.fixture(scope="module")
def service_key() -> RSAKey:
    return RSAKey.generate_key(2048)


@pytest.fixture
def workspace(service_key) -> Iterator[FakeGoogle]:
    server = FakeGoogle(key=service_key).start()
    yield server
    server.stop()


def resource_calendar(server: FakeGoogle, **options: Any) -> GoogleResourceCalendar:
    return GoogleResourceCalendar(
        options.pop("info", None) or server.service_account_info(),
        server.calendars[0],
        api_base=server.api_base,
        timeout=options.pop("timeout", TIMEOUT),
        **options,
    )


def test_google_reads_its_documented_event_json():
    page = fixture("google_events_list.json")
    events = {item["id"]: item for item in page["items"]}
    planning = google.parse_event(
        events["0j98ieeucptl5km9phajqs88vq"], calendar_zone="Europe/Berlin"
    )
    assert planning.start == datetime(2099, 12, 3, 10, 0, tzinfo=BERLIN)
    assert planning.uid == "0j98ieeucptl5km9phajqs88vq@google.com"
    assert (planning.organizer_name, planning.etag) == ("Jonas Weber", '"3321539261536000"')

    offsite = google.parse_event(
        events["2rom5qlsu2qo01aebs03q66uis"], calendar_zone="Europe/Berlin"
    )
    assert (offsite.start, offsite.end) == (
        datetime(2099, 12, 7, tzinfo=BERLIN),
        datetime(2099, 12, 8, tzinfo=BERLIN),
    )
    standup = google.parse_event(
        events["tlf9q8uk5vjl2i2868q36dpi28"], calendar_zone="Europe/Berlin"
    )
    assert standup.recurrence == "FREQ=WEEKLY;BYDAY=MO"


class GoogleReplay(FakeVendor):
    """Answers with the recorded list page, or one of Google's documented error bodies."""

    error: str | None = None

    def handle(self, request: SeenRequest) -> Response:
        if request.path == "/token":
            return self.json_response(
                {"access_token": "ya29.x", "expires_in": 3599, "token_type": "Bearer"}
            )
        if self.error:
            body = fixture(self.error)
            return self.json_response(body, body["error"]["code"])
        return self.json_response(fixture("google_events_list.json"))


def test_google_listing_of_the_recorded_page(service_key):
    server = GoogleReplay().start()
    try:
        info = FakeGoogle(key=service_key).service_account_info() | {
            "token_uri": f"{server.base}/token"
        }
        calendar = GoogleResourceCalendar(
            info, "room@resource.calendar.google.com", api_base=server.base, timeout=TIMEOUT
        )
        changes = calendar.changes_since(None)
        assert changes.full and changes.token == "CODhkOHizvkCEODhkOHizvkCGAUg-9n43gE="
        # The series stays (it still repeats); the event of 2012 does not; cancelled ones are deletions.
        assert {e.summary for e in changes.changed} == {
            "Quarterly planning",
            "Offsite",
            "Team stand-up",
        }
        assert set(changes.deleted) == {
            "tlf9q8uk5vjl2i2868q36dpi28_20991207T080000Z",
            "0cu25g99pfkhlfarupevcjc297",
        }
        assert server.seen("GET")[0].query["showDeleted"] == ["true"]

        server.error = "google_error_full_sync_required.json"
        with pytest.raises(Gone):
            calendar.changes_since(changes.token)
        server.error = "google_error_rate_limit.json"
        expect_sync_error(lambda: calendar.changes_since(changes.token), transient=True)
        server.error = "google_error_invalid_credentials.json"
        error = expect_sync_error(lambda: calendar.changes_since(changes.token), transient=False)
        assert "Invalid Credentials" in str(error)
    finally:
        server.stop()


def test_google_signs_in_with_the_service_account(workspace, service_key):
    resource_calendar(workspace, subject="facilities@example.com").changes_since(None)
    [assertion] = workspace.assertions
    assert assertion["header"]["kid"] == workspace.key_id
    claims = assertion["claims"]
    assert claims["iss"] == workspace.client_email
    assert claims["aud"] == workspace.token_uri
    assert claims["scope"] == "https://www.googleapis.com/auth/calendar"
    assert claims["sub"] == "facilities@example.com"
    assert claims["exp"] - claims["iat"] == 3600

    stranger = workspace.service_account_info(key=RSAKey.generate_key(2048))
    error = expect_sync_error(
        lambda: resource_calendar(workspace, info=stranger).changes_since(None), transient=False
    )
    assert "Invalid JWT Signature" in str(error)
    assert "PRIVATE KEY" not in repr(resource_calendar(workspace))
    with pytest.raises(ValueError, match="private_key"):
        GoogleResourceCalendar({"client_email": "a@b", "private_key": "nope"}, "room")


def test_google_lists_the_room_then_only_what_changed(workspace):
    standup = workspace.add_external_event("Stand-up", in_days(1, 9), in_days(1, 9, 15))
    review = workspace.add_external_event("Design review", in_days(2, 14), in_days(2, 15))
    weekly = workspace.add_external_event(
        "Weekly", in_days(-30, 8), in_days(-30, 9), recurrence=["RRULE:FREQ=WEEKLY;BYDAY=TU"]
    )
    workspace.add_external_event("Long ago", in_days(-60, 8), in_days(-60, 9))
    calendar = resource_calendar(workspace, page_size=2)

    first = calendar.changes_since(None)
    assert first.full and first.token
    by_id = {e.remote_id: e for e in first.changed}
    assert set(by_id) == {standup["id"], review["id"], weekly["id"]}
    assert by_id[review["id"]].start == in_days(2, 14)
    assert by_id[weekly["id"]].recurrence == "FREQ=WEEKLY;BYDAY=TU"
    assert len(workspace.seen("GET", "/events")) == 2

    assert calendar.changes_since(first.token).changed == []

    workspace.change_external_event(review["id"], start=in_days(2, 16), end=in_days(2, 17))
    workspace.cancel_event(standup["id"])
    second = calendar.changes_since(first.token)
    assert not second.full
    assert [(e.remote_id, e.start) for e in second.changed] == [(review["id"], in_days(2, 16))]
    assert second.deleted == [standup["id"]]
    assert "syncToken" in workspace.seen("GET", "/events")[-1].query


def test_google_pushes_a_booking_with_its_uid(workspace):
    calendar = resource_calendar(workspace)
    event = booking_event(42, start=in_days(3, 10))
    remote_id, etag = calendar.put(event, None, None)

    stored = workspace.events[remote_id]
    assert stored["iCalUID"] == "booking-42@foyer.test"
    assert stored["start"] == {"dateTime": event.start.isoformat(), "timeZone": "Europe/Berlin"}
    assert (
        stored["summary"] == "Team sync – Room Aurora" and "Lena Fischer" in stored["description"]
    )
    assert "attendees" not in stored
    assert workspace.seen("POST", "/events")[-1].query["sendUpdates"] == ["none"]
    [listed] = calendar.changes_since(None).changed
    assert (listed.remote_id, listed.uid, listed.etag) == (remote_id, "booking-42@foyer.test", etag)

    # A retried insert finds the first event by its UID instead of duplicating it.
    assert calendar.put(event, None, None)[0] == remote_id
    assert len(workspace.live_events()) == 1

    tentative = replace(event, status=EventStatus.TENTATIVE, end=event.end + timedelta(minutes=30))
    same_id, new_etag = calendar.put(tentative, remote_id, workspace.events[remote_id]["etag"])
    assert same_id == remote_id
    assert workspace.events[remote_id]["status"] == "tentative"
    assert workspace.events[remote_id]["end"]["dateTime"] == tentative.end.isoformat()

    error = expect_sync_error(lambda: calendar.put(event, remote_id, etag), transient=True)
    assert "changed in Google Calendar" in str(error)

    calendar.delete(remote_id, new_etag)
    assert workspace.live_events() == []
    calendar.delete(remote_id, new_etag)  # already deleted: fine
    calendar.delete("neverexisted", None)

    # Pushed anew after the deletion (Google keeps a deleted event's UID): the same event comes back.
    back, _ = calendar.put(event, None, None)
    assert back == remote_id and workspace.events[back]["status"] == "confirmed"


def test_google_declines_as_the_room_attendee(workspace):
    clash = workspace.add_external_event("Board meeting", in_days(3, 10), in_days(3, 11))
    etag_before = clash["etag"]
    calendar = resource_calendar(workspace)
    first = calendar.changes_since(None)
    [remote] = first.changed

    calendar.decline(remote, "Aurora is booked in Foyer from 10:00 to 11:00.")

    attendees = workspace.events[clash["id"]]["attendees"]
    room = next(a for a in attendees if a.get("resource"))
    assert room["responseStatus"] == "declined"
    assert room["comment"] == "Aurora is booked in Foyer from 10:00 to 11:00."
    organiser = next(a for a in attendees if a.get("organizer"))
    assert organiser["responseStatus"] == "accepted"
    assert workspace.seen("PATCH")[-1].headers["If-Match"] == etag_before

    # Created right in the room's calendar, not inviting the room: removed instead.
    direct = workspace.add_external_event(
        "Squatter", in_days(3, 10), in_days(3, 11), room_is_attendee=False
    )
    calendar.decline(
        RemoteEvent(direct["id"], direct["iCalUID"], "", in_days(3, 10), in_days(3, 11)), "taken"
    )
    assert workspace.events[direct["id"]]["status"] == "cancelled"
    calendar.decline(
        RemoteEvent("gone", "gone@google.com", "", in_days(3, 10), in_days(3, 11)), "taken"
    )


def test_google_starts_over_when_the_sync_token_is_gone(workspace):
    workspace.add_external_event("Stand-up", in_days(1, 9), in_days(1, 9, 15))
    calendar = resource_calendar(workspace)
    token = calendar.changes_since(None).token
    workspace.expire_sync_tokens()
    with pytest.raises(Gone):
        calendar.changes_since(token)
    again = calendar.changes_since(None)
    assert again.full and [e.summary for e in again.changed] == ["Stand-up"]


@pytest.mark.parametrize(
    ("fault", "transient", "words"),
    [
        ({"kind": "429", "retry_after": 11}, True, "retry after 11 s"),
        ({"kind": "403"}, True, "rateLimitExceeded"),
        ({"kind": "500"}, True, "HTTP 500"),
        ({"kind": "malformed"}, False, "malformed JSON"),
        ({"kind": "slow", "delay": 1.5}, True, "did not answer within 0.5 s"),
    ],
)
def test_google_failures_become_the_right_sync_error(workspace, fault, transient, words):
    workspace.fail(path_contains="/events", **fault)
    error = expect_sync_error(
        lambda: resource_calendar(workspace).changes_since(None), transient=transient
    )
    assert words in str(error)
    if fault["kind"] == "429":
        assert error.retry_after == 11


def test_google_test_connection_button(workspace):
    assert resource_calendar(workspace).check() == "Berlin-2-Aurora (8) [Video]"
    other = GoogleResourceCalendar(
        workspace.service_account_info(),
        "someone-else@example.com",
        api_base=workspace.api_base,
        timeout=TIMEOUT,
    )
    error = expect_sync_error(other.check, transient=False)
    assert "no calendar someone-else@example.com that foyer-sync@" in str(error)


def test_google_access_failures(workspace):
    calendar = resource_calendar(workspace)
    calendar.changes_since(None)
    workspace.access_tokens.clear()  # revoked: one new token, and it works
    calendar.changes_since(None)
    assert len(workspace.assertions) == 2

    workspace.fail("401", path_contains="/events")
    workspace.fail("401", path_contains="/events")
    error = expect_sync_error(lambda: calendar.changes_since(None), transient=False)
    assert workspace.client_email in str(error)

    other = GoogleResourceCalendar(
        workspace.service_account_info(),
        "someone-else@example.com",
        api_base=workspace.api_base,
        timeout=TIMEOUT,
    )
    expect_sync_error(lambda: other.changes_since(None), transient=False)

    workspace.stop()
    expect_sync_error(lambda: resource_calendar(workspace).changes_since(None), transient=True)


# =============================================================================================
# End to end: the sync engine (portal/services/calendar_sync.py) through each adapter

APP_KEY = b"vendor-calendars-test-key"


def _link_and_book(db, provider: str, settings: dict[str, str], secret: str):
    from portal.db import utcnow
    from portal.services import bookings, calendar_sync
    from portal.services.audit import Actor
    from tests import factories

    room = factories.room(db, name="Aurora")
    lena = factories.user(db, name="Lena Fischer", email="lena.fischer@example.com")
    factories.user(db, name="Jonas Weber", email="jonas.weber@example.com")
    now = utcnow()
    link = calendar_sync.save_link(
        db,
        Actor.system("tests"),
        APP_KEY,
        resource=room,
        provider=provider,
        settings=settings,
        secret=secret,
        now=now,
    )
    day = factories.weekday_ahead(days=3)
    booking = bookings.book(
        db,
        Actor.system("tests"),
        lena,
        resource_id=room.id,
        start=factories.at(day, 10),
        end=factories.at(day, 11),
        title="Team sync",
        now=now,
        notify=False,
    )
    db.commit()
    return link, booking, room, day


def _sync(db, link_id: int):
    from portal.services import calendar_sync

    db.commit()  # reading objects after the last commit began a transaction; the engine owns its own
    result = calendar_sync.sync_link(db, APP_KEY, link_id, force=True)
    assert result.ok, result.error
    return result


def _bookings_of(db, room):
    from sqlalchemy import select

    from portal.models import Booking

    db.expire_all()
    return list(
        db.scalars(select(Booking).where(Booking.resource_id == room.id).order_by(Booking.start_at))
    )


def test_a_room_linked_to_microsoft_365_shows_bookings_made_on_either_side(db, m365):
    from tests import factories

    link, booking, room, day = _link_and_book(
        db,
        "m365",
        {
            "tenant_id": m365.tenant_id,
            "client_id": m365.client_id,
            "mailbox": m365.mailboxes[0],
            "login_base": m365.login_base,
            "graph_base": m365.graph_base,
        },
        m365.client_secret,
    )
    assert _sync(db, link.id).pushed == 1
    [pushed] = m365.events_of()
    assert pushed["transactionId"].startswith(f"booking-{booking.id}@")
    assert pushed["subject"].startswith("Team sync")

    # Jonas books the room from Outlook at 14:00; a clash at 10:30 is declined.
    m365.add_external_event(
        "Design review",
        factories.at(day, 14),
        factories.at(day, 15),
        organizer=("Jonas Weber", "jonas.weber@example.com"),
    )
    clash = m365.add_external_event(
        "Board meeting",
        factories.at(day, 10, 30),
        factories.at(day, 11, 30),
        organizer=("Jonas Weber", "jonas.weber@example.com"),
    )
    result = _sync(db, link.id)
    assert (result.booked, result.declined) == (1, 1)
    held = [(b.title, b.user.email, b.start_at) for b in _bookings_of(db, room)]
    assert held == [
        ("Team sync", "lena.fischer@example.com", factories.at(day, 10)),
        ("Design review", "jonas.weber@example.com", factories.at(day, 14)),
    ]
    assert [d["event_id"] for d in m365.declines] == [clash["id"]]
    assert m365.declines[0]["comment"]
    # Our own event came back in the listing without becoming a second booking.
    assert len(m365.events_of()) == 2
    assert _sync(db, link.id).pushed == 0


def test_a_room_linked_to_google_workspace_shows_bookings_made_on_either_side(db, workspace):
    from tests import factories

    link, booking, room, day = _link_and_book(
        db,
        "google",
        {"calendar_id": workspace.calendars[0], "api_base": workspace.api_base},
        json.dumps(workspace.service_account_info()),
    )
    assert _sync(db, link.id).pushed == 1
    [pushed] = workspace.live_events()
    assert pushed["iCalUID"] == f"booking-{booking.id}@{pushed['iCalUID'].split('@', 1)[1]}"

    workspace.add_external_event("Design review", factories.at(day, 14), factories.at(day, 15))
    clash = workspace.add_external_event(
        "Board meeting", factories.at(day, 10, 30), factories.at(day, 11, 30)
    )
    result = _sync(db, link.id)
    assert (result.booked, result.declined) == (1, 1)
    held = [(b.title, b.user.email, b.start_at) for b in _bookings_of(db, room)]
    assert held == [
        ("Team sync", "lena.fischer@example.com", factories.at(day, 10)),
        ("Design review", "jonas.weber@example.com", factories.at(day, 14)),
    ]
    room_answer = next(a for a in workspace.events[clash["id"]]["attendees"] if a.get("resource"))
    assert room_answer["responseStatus"] == "declined" and room_answer["comment"]
    assert _sync(db, link.id).pushed == 0


def test_the_engine_waits_as_long_as_a_throttling_vendor_asks(db, m365):
    """A 429 with Retry-After: 600 puts the next attempt 10 minutes out, not the 30 s backoff."""
    from portal.db import utcnow
    from portal.models.calendar_sync import CalendarLink
    from portal.services import calendar_sync

    link, _booking, _room, _day = _link_and_book(
        db,
        "m365",
        {
            "tenant_id": m365.tenant_id,
            "client_id": m365.client_id,
            "mailbox": m365.mailboxes[0],
            "login_base": m365.login_base,
            "graph_base": m365.graph_base,
        },
        m365.client_secret,
    )
    m365.fail("429", path_contains="/calendarView/delta", retry_after=600)
    db.commit()
    result = calendar_sync.sync_link(db, APP_KEY, link.id, force=True)
    assert not result.ok and "retry after 600 s" in result.error
    db.expire_all()
    stored = db.get(CalendarLink, link.id)
    assert (stored.state, stored.failures) == ("retrying", 1)
    assert (stored.next_attempt_at - utcnow()).total_seconds() > 550  # the backoff alone: 30 s


def test_an_admin_links_a_room_to_microsoft_365_and_to_google_from_the_admin_view(
    db, client, admin, m365, workspace
):
    """The form, the Test connection button and Sync now, as an admin uses them."""
    import json

    from portal.models.calendar_sync import CalendarLink
    from tests import factories

    aurora = factories.room(db, name="Aurora")
    borealis = factories.room(db, name="Borealis", site=aurora.site)
    db.commit()
    client.sign_in(admin.email)
    forms = {
        aurora.id: {
            "provider": "m365",
            "m365_tenant_id": m365.tenant_id,
            "m365_client_id": m365.client_id,
            "m365_mailbox": m365.mailboxes[0],
            "m365_login_base": m365.login_base,
            "m365_graph_base": m365.graph_base,
            "secret": m365.client_secret,
        },
        borealis.id: {
            "provider": "google",
            "google_calendar_id": workspace.calendars[0],
            "google_api_base": workspace.api_base,
            "secret": json.dumps(workspace.service_account_info()),
        },
    }
    for room_id, fields in forms.items():
        saved = client.submit("/admin/calendars/", {"resource": room_id, **fields})
        assert saved.status_code == 303, saved.get_data(as_text=True)[:400]
        link_url = saved.headers["Location"]
        page = client.get(link_url).get_data(as_text=True)
        assert fields["secret"][:12] not in page  # write-only
        tested = client.submit(link_url + "/test")
        assert "Connected" in client.get(tested.headers["Location"]).get_data(as_text=True)
        synced = client.submit(link_url + "/sync")
        assert "Synced:" in client.get(synced.headers["Location"]).get_data(as_text=True)
    links = {link.resource_id: link for link in db.query(CalendarLink).all()}
    assert (links[aurora.id].provider, links[borealis.id].provider) == ("m365", "google")
    assert all(link.last_error in ("", None) for link in links.values())
    assert m365.client_secret not in json.dumps(links[aurora.id].settings)

"""An employee reports a facility problem from a phone (category, place, description, photos,
urgency), or from the QR code on a room or desk; sees what is already reported at that place and
says "me too" instead; follows their issues; sees photos only if they may see the issue. Every bad
input gets a clear message, and nothing is half-written."""

from __future__ import annotations

import io
import re
import secrets
from datetime import timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select, update

from portal.db import utcnow
from portal.models import (
    AuditEvent,
    Booking,
    IssueFollower,
    IssuePhoto,
    OutboxMessage,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from portal.services import facility_issues, tickets
from portal.services.audit import Actor
from tests.issues_helpers import (
    COLLEAGUE,
    COORDINATOR,
    REPORTER,
    SCRIPT,
    STRANGER,
    arrange,
    browser,
    count,
    gif_with_script,
    image_bomb,
    issue,
    jpeg,
    jpeg_with_gps,
    large_file,
    png,
    renamed_executable,
    stored_photos,
)

Place = facility_issues.Place


@pytest.fixture
def office(db):
    return arrange(db)


@pytest.fixture
def rita(client, office):
    client.sign_in(REPORTER)
    return client


def report(client, office, htmx=False, photos=None, **fields):
    data: dict[str, Any] = {
        "category": "plumbing",
        "site": office["berlin"].id,
        "floor": office["floor_1"].id,
        "resource": office["kitchen"].id,
        "place_note": "the sink by the window",
        "description": "The tap keeps dripping\nand the floor is wet.",
        "priority": "high",
        "submission_key": fields.pop("key", None) or secrets.token_hex(8),
    }
    data.update(fields)
    data = {k: v for k, v in data.items() if v is not None}
    if photos is not None:
        data["photos"] = [(io.BytesIO(content), name) for name, content in photos]
    return client.submit("/issues/new", data, htmx=htmx, content_type="multipart/form-data")


def only_issue(db) -> Ticket:
    db.expire_all()
    rows = list(db.scalars(select(Ticket)))
    assert len(rows) == 1
    return rows[0]


def nothing_saved(app, db) -> None:
    assert count(db, Ticket) == 0
    assert count(db, IssuePhoto) == 0
    assert stored_photos(app) == []


# ---------------------------------------------------------------------------------------------
# Reporting


def test_a_reporter_sends_a_problem_with_photos_and_sees_it(app, db, rita, office):
    response = report(rita, office, photos=[("tap.jpg", jpeg()), ("floor.png", png())])
    assert response.status_code == 303
    ticket = only_issue(db)
    assert response.headers["Location"].endswith(f"/issues/{ticket.id}")
    assert ticket.kind == "issue" and ticket.category == "plumbing"
    assert ticket.priority == "high" and ticket.status == "submitted"
    assert ticket.site_id == office["berlin"].id and ticket.floor_id == office["floor_1"].id
    assert ticket.resource_id == office["kitchen"].id
    assert ticket.place_note == "the sink by the window"
    # A short title (what and where; the inbox shows floor and office beside it): the
    # reporter's words are the description, shown in full on the page.
    assert ticket.title == "Plumbing problem in Kitchen"
    assert ticket.description == "The tap keeps dripping\nand the floor is wet."
    assert ticket.resolution_due_at is not None  # the SLA clock runs
    photos = list(db.scalars(select(IssuePhoto).where(IssuePhoto.ticket_id == ticket.id)))
    assert len(photos) == 2 and all(p.content_type == "image/jpeg" for p in photos)
    assert len(stored_photos(app)) == 2
    # The coordinator of Berlin is told in the header.
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == "issue.submitted"))

    page = rita.get(f"/issues/{ticket.id}").get_data(as_text=True)
    assert "Thank you: ISS-" in page
    assert "The tap keeps dripping" in page and "the sink by the window" in page
    assert "We aim to fix it by" in page
    for photo in photos:
        assert f"/issues/{ticket.id}/photos/{photo.id}" in page
    assert f'id="ticket-{ticket.id}"' in page and "Conversation" in page


def test_the_form_is_made_for_a_thumb(rita, office):
    page = rita.get("/issues/new")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for label in ("Cleaning", "Temperature", "Plumbing", "Electrical", "Furniture", "IT / AV"):
        assert label in html
    assert html.count('type="radio" name="category"') == 8
    assert 'accept="image/*" capture="environment" multiple' in html
    assert html.count('name="priority"') == 4
    # The home site is chosen; the office's floors are offered.
    assert re.search(rf'<option value="{office["berlin"].id}" selected>Berlin', html)
    assert "Floor 2" in html
    assert "js/issues.js" in html
    # Only the form's own request disables the Send button: the place lists and "Me too" inside
    # it do not inherit that (htmx logs a console error when it finds no button to disable).
    form_tag = re.search(r"<form id=\"issue-form\"[^>]*>", html).group(0)
    assert 'hx-disabled-elt="find .iform-submit"' in form_tag
    assert 'hx-disinherit="hx-disabled-elt"' in form_tag


def test_the_form_starts_at_todays_booked_desk(db, rita, office):
    now = utcnow()
    db.add(
        Booking(
            resource_id=office["desk"].id,
            user_id=office["reporter"].id,
            created_by_id=office["reporter"].id,
            start_at=now - timedelta(hours=1),
            end_at=now + timedelta(hours=2),
            blocked_until=now + timedelta(hours=2),
        )
    )
    db.commit()
    html = rita.get("/issues/new").get_data(as_text=True)
    assert re.search(rf'<option value="{office["floor_1"].id}" selected>', html)
    assert re.search(rf'<option value="{office["desk"].id}" selected>Desk 1.07', html)


def test_the_qr_code_of_a_room_opens_the_form_with_the_place_filled_in(rita, office):
    room = office["aurora"]
    for url in (f"/issues/new?qr={room.qr_code}", f"/issues/new?resource={room.id}"):
        html = rita.get(url).get_data(as_text=True)
        assert "Room Aurora · Floor 2" in html and "Somewhere else?" in html
        assert f'name="resource" value="{room.id}"' in html
        assert 'id="issue-site"' not in html  # a summary, not the lists
    unknown = rita.get("/issues/new?qr=nope").get_data(as_text=True)
    assert "does not belong to any room or desk" in unknown and 'id="issue-site"' in unknown


def test_the_room_and_desk_qr_page_links_to_the_form(rita, office):
    html = rita.get(f"/q/{office['aurora'].qr_code}").get_data(as_text=True)
    assert f"/issues/new?resource={office['aurora'].id}" in html
    assert "Report a problem here" in html


def test_a_report_from_the_qr_code_is_saved_with_that_place(db, rita, office):
    room = office["aurora"]
    response = report(
        rita, office, floor=office["floor_2"].id, resource=room.id, from_code="1", htmx=True
    )
    assert response.status_code == 204 and response.headers["HX-Redirect"].startswith("/issues/")
    assert only_issue(db).resource_id == room.id


def test_a_double_submit_makes_one_issue(db, app, rita, office):
    first = report(rita, office, key="same-key", photos=[("a.jpg", jpeg())])
    second = report(rita, office, key="same-key", photos=[("a.jpg", jpeg())])
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert count(db, Ticket) == 1 and len(stored_photos(app)) == 1


def test_a_floor_or_note_is_enough_without_a_room(db, rita, office):
    assert report(rita, office, resource="").status_code == 303
    ticket = only_issue(db)
    assert ticket.resource_id is None and ticket.floor_id == office["floor_1"].id
    assert ticket.title == "Plumbing problem on Floor 1"


# ---------------------------------------------------------------------------------------------
# Photos


def test_photos_lose_their_location_and_are_resized(app, db, rita, office):
    big = io.BytesIO()
    Image.new("RGB", (4000, 1000), (1, 2, 3)).save(big, "JPEG")
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # it does carry GPS
    report(rita, office, photos=[("gps.jpg", original), ("wide.jpg", big.getvalue())])
    ticket = only_issue(db)
    photos = list(db.scalars(select(IssuePhoto).order_by(IssuePhoto.id)))
    served = [rita.get(f"/issues/{ticket.id}/photos/{p.id}") for p in photos]
    assert all(r.status_code == 200 for r in served)
    stored = Image.open(io.BytesIO(served[0].data))
    assert stored.format == "JPEG" and not stored.getexif()
    assert b"SecretCam" not in served[0].data
    assert Image.open(io.BytesIO(served[1].data)).size == (2048, 512)
    assert (photos[1].width, photos[1].height) == (2048, 512)


def test_a_gif_with_script_in_it_is_re_encoded_so_nothing_survives(app, db, rita, office):
    original = gif_with_script()
    assert SCRIPT in original
    assert report(rita, office, photos=[("cat.gif", original)]).status_code == 303
    [path] = stored_photos(app)
    stored = path.read_bytes()
    assert SCRIPT not in stored and b"<script" not in stored.lower()
    assert Image.open(io.BytesIO(stored)).format == "JPEG"


def test_photos_are_served_privately_and_only_as_images(db, app, rita, office):
    report(rita, office, photos=[("tap.jpg", jpeg())])
    ticket = only_issue(db)
    photo = db.scalar(select(IssuePhoto))
    response = rita.get(f"/issues/{ticket.id}/photos/{photo.id}")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert response.headers["Cache-Control"].startswith("private")
    # Stored outside the web root, under a random name (not the uploaded one).
    [path] = stored_photos(app)
    assert "tap" not in path.name and "static" not in str(path)
    assert rita.get(f"/static/{path.name}").status_code == 404
    # The coordinator of the site sees it; a colleague or another office's employee does not.
    assert (
        browser(app, COORDINATOR).get(f"/issues/{ticket.id}/photos/{photo.id}").status_code == 200
    )
    for email in (COLLEAGUE, STRANGER):
        assert browser(app, email).get(f"/issues/{ticket.id}/photos/{photo.id}").status_code == 404


# ---------------------------------------------------------------------------------------------
# Bad input: a clear message, nothing saved, never a 500


@pytest.mark.parametrize(
    ("fields", "field_id", "message"),
    [
        ({"description": "   "}, "description", "Describe the problem"),
        ({"description": "x" * 2001}, "description", "Keep it under 2,000 characters"),
        ({"category": "aliens"}, "category", "Choose what kind of problem it is"),
        ({"category": None}, "category", "Choose what kind of problem it is"),
        ({"priority": "whenever"}, "priority", "Choose how urgent it is"),
        ({"site": "999999"}, "issue-site", "Choose the office"),
        ({"site": "berlin"}, "issue-site", "Choose the office"),
        ({"floor": "999999"}, "issue-floor", "That floor is not in Berlin"),
        ({"resource": "999999"}, "issue-resource", "There is no such room or desk"),
        ({"floor": "", "resource": "", "place_note": ""}, "issue-floor", "Choose the floor"),
        ({"place_note": "x" * 201}, "place_note", "Keep it under 200 characters"),
    ],
)
def test_bad_fields_are_refused_beside_the_field(app, db, rita, office, fields, field_id, message):
    response = report(rita, office, htmx=True, photos=[("ok.jpg", jpeg())], **fields)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith("<form")  # the form fragment, for htmx to swap in
    assert message in html and f'id="{field_id}' in html
    assert "choose your photos again" in html
    nothing_saved(app, db)


def test_a_place_that_does_not_hang_together_is_refused(app, db, rita, office):
    # A floor of another office, and a room of another floor.
    response = report(rita, office, floor=office["paris_floor"].id, resource="")
    assert response.status_code == 422
    assert "That floor is not in Berlin" in response.get_data(as_text=True)
    response = report(rita, office, floor=office["floor_1"].id, resource=office["aurora"].id)
    assert "Room Aurora is not on Floor 1" in response.get_data(as_text=True)
    response = report(rita, office, floor="", resource=office["paris_room"].id)
    assert "Room Seine is not in Berlin" in response.get_data(as_text=True)
    nothing_saved(app, db)


@pytest.mark.parametrize(
    ("photos", "message"),
    [
        ([("photo.jpg", renamed_executable())], "Photo 2 (photo.jpg) is not a photo we can open"),
        ([("bomb.png", image_bomb())], "Photo 2 (bomb.png): The image is too large to open safely"),
        (
            [("huge.png", image_bomb(8000))],
            "is 8000 × 8000 pixels; the most we accept is 25 megapixels",
        ),
        (
            [("ok.jpg", jpeg()), ("big.jpg", large_file(11))],
            "Photo 3 (big.jpg) is larger than 10 MB",
        ),
        ([(f"{n}.jpg", jpeg()) for n in range(4)], "Add at most 3 photos; you chose 4"),
        ([("notes.txt", b"just some text")], "is not a photo we can open"),
    ],
    ids=[
        "renamed-executable",
        "image-bomb",
        "64-megapixels",
        "11-mb-photo",
        "four-photos",
        "text-file",
    ],
)
def test_bad_photos_are_refused_and_nothing_is_written(app, db, rita, office, photos, message):
    # The good photos in the same report are not stored either: all are checked first.
    response = report(rita, office, photos=[("first.jpg", jpeg()), *photos][-4:])
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    nothing_saved(app, db)


def test_a_40_mb_photo_shows_the_form_with_a_message(app, db, rita, office):
    assert app.config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024  # the app's own cap is unchanged
    for htmx in (False, True):
        response = report(rita, office, htmx=htmx, photos=[("huge.jpg", large_file(40))])
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert "each photo may be at most 10 MB" in html and "Nothing was sent" in html
        assert 'name="description"' in html
    nothing_saved(app, db)


def test_three_photos_together_above_the_app_cap_are_accepted(app, db, rita, office):
    """Each under 10 MB, 24 MB together: more than the app's 16 MB cap for other forms."""
    photos = [(f"{n}.png", _noisy_png(8)) for n in range(3)]
    assert report(rita, office, photos=photos).status_code == 303
    assert len(stored_photos(app)) == 3


def _noisy_png(megabytes: int) -> bytes:
    import os

    side = int((megabytes * 1024 * 1024 / 3) ** 0.5)
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=0)
    assert buffer.tell() < 10 * 1024 * 1024
    return buffer.getvalue()


def test_html_in_the_description_is_shown_as_text(db, app, rita, office):
    report(rita, office, description='<img src=x onerror="alert(1)"> is <b>broken</b>')
    ticket = only_issue(db)
    html = rita.get(f"/issues/{ticket.id}").get_data(as_text=True)
    assert "<img src=x" not in html and "<b>broken</b>" not in html
    assert "&lt;img src=x onerror=" in html
    listing = rita.get("/issues/").get_data(as_text=True)
    assert "<b>broken</b>" not in listing


# ---------------------------------------------------------------------------------------------
# Duplicates and "me too"


def test_open_issues_at_the_chosen_place_are_offered(db, rita, office):
    colleague = office["colleague"]
    at_kitchen = issue(
        db,
        colleague,
        Place(office["berlin"], office["floor_1"], office["kitchen"]),
        description="Sink blocked",
    )
    on_floor = issue(
        db,
        colleague,
        Place(office["berlin"], office["floor_1"]),
        category="temperature",
        description="Freezing by the stairs",
    )
    elsewhere = issue(db, colleague, Place(office["berlin"], office["floor_2"], office["aurora"]))
    done = issue(
        db,
        colleague,
        Place(office["berlin"], office["floor_1"], office["kitchen"]),
        description="Old problem",
    )
    tickets.change_status(
        db, Actor.system("t"), done, TicketStatus.RESOLVED, by=office["coordinator"], now=utcnow()
    )
    db.commit()
    base = f"/issues/new/place?site={office['berlin'].id}&floor={office['floor_1'].id}"
    # The room: only its own open issue.
    fragment = rita.get(base + f"&resource={office['kitchen'].id}", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and html.lstrip().startswith('<div id="issue-place"')
    assert "is it one of these?" in html and "Sink blocked" in html
    assert f"/issues/{at_kitchen.id}/me-too" in html
    assert "Freezing" not in html and "Old problem" not in html
    assert f"/issues/{elsewhere.id}/me-too" not in html
    # The floor without a room: everything open on it.
    html = rita.get(base, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Sink blocked" in html and "Freezing by the stairs" in html
    assert f"/issues/{on_floor.id}/me-too" in html
    # A floor of another site is dropped (its lists are not offered).
    html = rita.get(
        f"/issues/new/place?site={office['berlin'].id}&floor={office['paris_floor'].id}",
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert "Choose a floor" in html and "Sink blocked" not in html


def test_the_place_lists_work_three_ways(rita, office):
    url = f"/issues/new/place?site={office['berlin'].id}&floor={office['floor_2'].id}"
    fragment = rita.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.get_data(as_text=True)
    assert "Aurora" in fragment.get_data(as_text=True)
    for headers in ({}, {"HX-Request": "true", "HX-Boosted": "true"}):
        full = rita.get(url, headers=headers, follow_redirects=True)
        html = full.get_data(as_text=True)
        assert full.status_code == 200 and "<html" in html and "Report a problem" in html
        assert re.search(rf'<option value="{office["floor_2"].id}" selected>', html)


def test_me_too_follows_the_issue_once(db, app, office):
    ticket = issue(
        db, office["reporter"], Place(office["berlin"], office["floor_1"], office["kitchen"])
    )
    carl = browser(app, COLLEAGUE)
    assert carl.get(f"/issues/{ticket.id}").status_code == 404  # not theirs yet
    first = carl.submit(f"/issues/{ticket.id}/me-too", htmx=True)
    assert first.status_code == 204 and first.headers["HX-Redirect"] == f"/issues/{ticket.id}"
    again = carl.submit(f"/issues/{ticket.id}/me-too")
    assert again.status_code == 303
    db.expire_all()
    assert db.get(Ticket, ticket.id).me_too_count == 1
    assert count(db, IssueFollower) == 1
    assert db.scalar(select(TicketEvent).where(TicketEvent.body.like("%has this problem too")))
    page = carl.get(f"/issues/{ticket.id}").get_data(as_text=True)
    assert "You already follow" in page and "Following:" in page
    assert "Carl Colleague has this problem too" in page
    # The reporter's own "me too" changes nothing.
    rita = browser(app, REPORTER)
    rita.submit(f"/issues/{ticket.id}/me-too")
    db.expire_all()
    assert db.get(Ticket, ticket.id).me_too_count == 1
    # Followers are listed under "My issues" and get the e-mails.
    assert ticket.title in carl.get("/issues/").get_data(as_text=True)
    tickets.change_status(
        db,
        Actor.system("t"),
        db.get(Ticket, ticket.id),
        TicketStatus.IN_PROGRESS,
        by=office["coordinator"],
        now=utcnow(),
    )
    db.commit()
    to = {m.to_address for m in db.scalars(select(OutboxMessage))}
    assert {REPORTER, COLLEAGUE} <= to


def test_me_too_is_only_for_open_issues(db, app, office):
    place = Place(office["berlin"], office["floor_1"], office["kitchen"])
    closed = issue(db, office["reporter"], place)
    tickets.cancel(db, Actor.system("t"), closed, office["reporter"], now=utcnow())
    request = factories_ticket(db, office)
    db.commit()
    carl = browser(app, COLLEAGUE)
    for ticket_id in (closed.id, request.id, 999999):
        assert carl.submit(f"/issues/{ticket_id}/me-too").status_code == 404
    assert count(db, IssueFollower) == 0


def factories_ticket(db, office):
    from tests.service_desk_factories import ticket

    return ticket(db, office["colleague"], office["berlin"], kind="request", title="A chair")


# ---------------------------------------------------------------------------------------------
# Following one's issues


def test_my_issues_lists_reported_and_followed_open_and_closed(db, app, rita, office):
    place = Place(office["berlin"], office["floor_1"], office["kitchen"])
    issue(db, office["reporter"], place, description="Dripping tap")
    mine_done = issue(
        db, office["reporter"], place, description="Broken chair", category="furniture"
    )
    tickets.change_status(
        db,
        Actor.system("t"),
        mine_done,
        TicketStatus.RESOLVED,
        by=office["coordinator"],
        now=utcnow(),
    )
    followed = issue(db, office["colleague"], place, description="Too cold")
    facility_issues.me_too(db, Actor.system("t"), followed, office["reporter"], now=utcnow())
    not_mine = issue(db, office["colleague"], place, description="Someone else's")
    db.commit()
    html = rita.get("/issues/").get_data(as_text=True)
    assert "Dripping tap" in html and "Too cold" in html and "Broken chair" in html
    assert "Someone else" not in html
    open_part, done_part = html.split("Fixed and closed")
    assert "Dripping tap" in open_part and "Broken chair" in done_part
    assert "We aim to fix it by" in open_part and "you said “me too”" in open_part
    assert "tstatus-resolved" in done_part
    assert not_mine.id  # present, just not listed


def test_the_reporter_can_comment_and_cancel(db, app, rita, office):
    ticket = issue(db, office["reporter"], Place(office["berlin"], office["floor_1"]))
    page = rita.get(f"/issues/{ticket.id}").get_data(as_text=True)
    assert "Cancel report" in page and "Ask a question or add details" in page
    assert (
        rita.submit(
            f"/tickets/{ticket.id}/comments", {"body": "Still dripping <b>!</b>"}
        ).status_code
        == 303
    )
    response = rita.submit(f"/tickets/{ticket.id}/cancel", {"version": ticket.version + 1})
    db.expire_all()
    fresh = db.get(Ticket, ticket.id)
    assert response.status_code == 303 and fresh.status == "cancelled"
    page = rita.get(f"/issues/{ticket.id}").get_data(as_text=True)
    assert "Cancel report" not in page and "Withdrawn" in page
    assert "Still dripping &lt;b&gt;!&lt;/b&gt;" in page


def test_a_comment_racing_a_colleagues_change_is_a_clear_409_not_a_500(
    db, app, rita, office, monkeypatch
):
    """What the PostgreSQL scan found: two writes to one ticket at the same instant. The one that
    read the older version is refused with a message (its text stays in the form), not a 500."""
    ticket = issue(db, office["reporter"], Place(office["berlin"], office["floor_1"]))
    db.commit()
    real_add_comment = tickets.add_comment

    def colleague_changes_it_first(session, *args, **kwargs):
        # Committed by someone else after this request read the ticket, before it writes.
        db.execute(update(Ticket).where(Ticket.id == ticket.id).values(version=Ticket.version + 1))
        db.commit()
        return real_add_comment(session, *args, **kwargs)

    monkeypatch.setattr(tickets, "add_comment", colleague_changes_it_first)
    response = rita.submit(f"/tickets/{ticket.id}/comments", {"body": "Still dripping"}, htmx=True)
    assert response.status_code == 409
    assert "Someone changed this at the same moment" in response.get_data(as_text=True)
    assert response.headers["HX-Retarget"] == "#flash"  # the typed comment stays where it was
    db.expire_all()
    comments = select(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "comment"
    )
    assert db.scalars(comments).all() == []

    monkeypatch.setattr(tickets, "add_comment", real_add_comment)
    again = rita.submit(f"/tickets/{ticket.id}/comments", {"body": "Still dripping"}, htmx=True)
    assert again.status_code == 200 and "Still dripping" in again.get_data(as_text=True)


def test_the_progress_shows_the_way_to_fixed(db, app, office):
    ticket = issue(db, office["reporter"], Place(office["berlin"], office["floor_1"]))
    rita = browser(app, REPORTER)
    html = rita.get(f"/issues/{ticket.id}").get_data(as_text=True)
    assert "Being looked at" in html and "We aim for" in html
    tickets.change_status(
        db,
        Actor.system("t"),
        ticket,
        TicketStatus.IN_PROGRESS,
        by=office["coordinator"],
        now=utcnow(),
    )
    tickets.change_status(
        db, Actor.system("t"), ticket, TicketStatus.RESOLVED, by=office["coordinator"], now=utcnow()
    )
    db.commit()
    html = rita.get(f"/issues/{ticket.id}").get_data(as_text=True)
    assert "Picked up" in html and "Fixed" in html and "We aim for" not in html


def h1_of(html: str) -> str:
    return re.search(r"<h1>(.*?)</h1>", html, re.S).group(1).strip()


def test_the_issue_page_has_a_short_heading_and_the_whole_description(db, app, rita, office):
    long = (
        "The radiator under the window is ice cold although the thermostat is at five, "
        "and it has been like this since Monday.\nWe are wearing coats in meetings."
    )
    report(rita, office, description=long, category="temperature")
    ticket = only_issue(db)
    assert ticket.title == "Temperature problem in Kitchen"
    html = rita.get(f"/issues/{ticket.id}").get_data(as_text=True)
    assert h1_of(html) == "Temperature problem in Kitchen"
    assert "since Monday.\nWe are wearing coats in meetings." in html  # all of it, uncut
    # A desk, a floor, or only the office: always what and where, in a few words.
    desk = issue(db, office["reporter"], Place(office["berlin"], office["floor_1"], office["desk"]))
    floor = issue(
        db, office["reporter"], Place(office["berlin"], office["floor_2"]), category="safety"
    )
    assert h1_of(rita.get(f"/issues/{desk.id}").get_data(as_text=True)) == (
        "Plumbing problem at desk 1.07"
    )
    assert h1_of(rita.get(f"/issues/{floor.id}").get_data(as_text=True)) == (
        "Safety hazard on Floor 2"
    )
    site_only = Place(office["berlin"], note="the car park")
    assert facility_issues.heading_for("other", site_only) == "Problem in Berlin"
    # Issues reported before titles were short get the short heading too.
    desk.title = "Plumbing · Desk 1.07 · Floor 1 — The tap keeps dripping"
    db.commit()
    assert h1_of(rita.get(f"/issues/{desk.id}").get_data(as_text=True)) == (
        "Plumbing problem at desk 1.07"
    )
    # The inbox lists the short title, with the place beside it.
    inbox = browser(app, COORDINATOR).get("/inbox/").get_data(as_text=True)
    assert "Temperature problem in Kitchen" in inbox and "Safety hazard on Floor 2" in inbox


def test_a_fix_by_moment_already_past_is_said_honestly(db, app, rita, office):
    place = Place(office["berlin"], office["floor_1"], office["kitchen"])
    late = issue(db, office["reporter"], place, description="Late one")
    on_time = issue(db, office["reporter"], place, description="On time one")
    late.resolution_due_at = utcnow() - timedelta(hours=3)
    on_time.resolution_due_at = utcnow() + timedelta(days=2)
    db.commit()
    page = rita.get(f"/issues/{late.id}").get_data(as_text=True)
    assert "It should have been fixed by" in page and "Sorry it is late" in page
    assert "We aim to fix it by" not in page and "We aim for" not in page
    assert "Should have been done by" in page  # the progress step says so too
    page = rita.get(f"/issues/{on_time.id}").get_data(as_text=True)
    assert "We aim to fix it by" in page and "should have been" not in page.lower()
    mine = rita.get("/issues/").get_data(as_text=True)
    late_row, on_time_row = (
        re.search(rf'href="/issues/{t.id}".*?</a>', mine, re.S).group(0) for t in (late, on_time)
    )
    assert "Late: it should have been fixed by" in late_row and "We aim" not in late_row
    assert "We aim to fix it by" in on_time_row and "Late" not in on_time_row


def test_the_coordinator_sees_the_manage_panel(db, app, office):
    ticket = issue(db, office["reporter"], Place(office["berlin"], office["floor_1"]))
    html = browser(app, COORDINATOR).get(f"/issues/{ticket.id}").get_data(as_text=True)
    assert "only coordinators see this" in html and "Cancel report" not in html


# ---------------------------------------------------------------------------------------------
# Nobody sees another's issue by changing an id


def test_every_id_bearing_route_answers_404_to_the_wrong_person(db, app, office):
    ticket = issue(db, office["reporter"], Place(office["berlin"], office["floor_1"]))
    rita = browser(app, REPORTER)
    report(rita, office, photos=[("a.jpg", jpeg())], key="with-photo")
    with_photo = db.scalar(select(Ticket).where(Ticket.id != ticket.id))
    photo = db.scalar(select(IssuePhoto))
    request = factories_ticket(db, office)
    db.commit()
    for email in (COLLEAGUE, STRANGER):
        other = browser(app, email)
        assert other.get(f"/issues/{ticket.id}").status_code == 404
        assert other.get(f"/issues/{with_photo.id}").status_code == 404
        assert other.get(f"/issues/{with_photo.id}/photos/{photo.id}").status_code == 404
        assert other.submit(f"/tickets/{ticket.id}/cancel").status_code == 404
        assert other.submit(f"/tickets/{ticket.id}/comments", {"body": "hi"}).status_code == 404
    # The reporter: a photo under another of their issues, or a request's id, is not found.
    assert rita.get(f"/issues/{ticket.id}/photos/{photo.id}").status_code == 404
    assert rita.get(f"/issues/{with_photo.id}/photos/999999").status_code == 404
    carl = browser(app, COLLEAGUE)
    assert carl.get(f"/issues/{request.id}").status_code == 404  # a request is not an issue
    db.expire_all()
    assert db.get(Ticket, ticket.id).status == "submitted"


def test_signed_out_visitors_are_sent_to_sign_in(client, office):
    for url in ("/issues/", "/issues/new", "/issues/1", "/issues/1/photos/1"):
        response = client.get(url)
        assert response.status_code in (302, 303) and "sign-in" in response.headers["Location"]


def test_the_reporters_own_and_followed_issues_are_not_offered_for_me_too(db, rita, office):
    kitchen = Place(office["berlin"], office["floor_1"], office["kitchen"])
    own = issue(db, office["reporter"], kitchen, description="My own report")
    followed = issue(db, office["colleague"], kitchen, description="Carl's report")
    facility_issues.me_too(db, Actor.system("t"), followed, office["reporter"], now=utcnow())
    db.commit()
    html = rita.get(f"/issues/new?resource={office['kitchen'].id}").get_data(as_text=True)
    assert "Yours: open it" in html and "You follow it" in html
    assert f"/issues/{own.id}/me-too" not in html and f"/issues/{followed.id}/me-too" not in html

"""A coordinator looks after their site's spaces: floors, rooms and desks, the floor plan with
markers on it, and the QR codes printed for check-in. Bad input gets a message beside the field."""

from __future__ import annotations

import io
import re
import secrets
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import func, select

from portal.db import utcnow
from portal.models import AuditEvent, Booking, BookingStatus, Desk, Floor, Resource, Room
from tests import factories
from tests.conftest import Browser

COORDINATOR = "cora@example.com"


# ---------------------------------------------------------------------------------------------
# Arrangements


@pytest.fixture
def berlin(db):
    return factories.site(db, "berlin")


@pytest.fixture
def new_york(db):
    return factories.site(db, "new-york", time_zone="America/New_York")


@pytest.fixture
def berlin_floor(db, berlin):
    floor = factories.floor(db, berlin, level=4)
    db.commit()
    return floor


@pytest.fixture
def new_york_floor(db, new_york):
    floor = factories.floor(db, new_york, level=2)
    db.commit()
    return floor


@pytest.fixture
def coordinator(db, berlin):
    user = factories.user(db, name="Cora Coordinator", email=COORDINATOR, coordinator_of=berlin)
    db.commit()
    return user


@pytest.fixture
def cora(client, coordinator) -> Browser:
    client.sign_in(COORDINATOR)
    return client


def add_room(db, floor, name="Spree", **values):
    room = Room(
        site_id=floor.building.site_id,
        floor_id=floor.id,
        name=name,
        capacity=values.pop("capacity", 6),
        qr_code=secrets.token_urlsafe(6),
        **values,
    )
    db.add(room)
    db.commit()
    return room


def add_desk(db, floor, name="4.01", **values):
    desk = Desk(
        site_id=floor.building.site_id,
        floor_id=floor.id,
        name=name,
        qr_code=secrets.token_urlsafe(6),
        **values,
    )
    db.add(desk)
    db.commit()
    return desk


def room_form(**changes):
    form = {
        "name": "Havel",
        "capacity": "8",
        "equipment": ["display", "whiteboard"],
        "buffer_minutes": "5",
    }
    form.update(changes)
    return form


def count(db, model):
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model))


def png_bytes(size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    metadata = PngInfo()
    metadata.add_text("Comment", "drawn by the architect; secret-marker")
    Image.new("RGB", size, (240, 240, 230)).save(buffer, "PNG", pnginfo=metadata)
    return buffer.getvalue()


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}  # GPS
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


MALICIOUS_SVG = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     viewBox="0 0 800 600" onload="alert('loaded')">
  <script type="text/javascript">alert('script')</script>
  <style>@import url(https://evil.example/x.css); rect { fill: #eee }</style>
  <rect x="10" y="10" width="780" height="580" stroke="#333" onclick="alert(1)"/>
  <foreignObject width="100" height="100">
    <div xmlns="http://www.w3.org/1999/xhtml"><iframe src="javascript:alert(2)"></iframe></div>
  </foreignObject>
  <a xlink:href="javascript:alert(3)"><text x="20" y="40">Kitchen</text></a>
  <image href="https://evil.example/track.png" width="10" height="10"/>
  <set attributeName="href" to="javascript:alert(4)"/>
  <rect x="50" y="50" width="100" height="60" fill="url(https://evil.example/paint)"/>
</svg>
"""


def upload_plan(client, floor, data: bytes, filename="plan.png", htmx=False):
    return client.submit(
        f"/admin/spaces/floors/{floor.id}/plan",
        {"plan": (io.BytesIO(data), filename)},
        htmx=htmx,
        content_type="multipart/form-data",
    )


def stored_files(app, folder="plans") -> list[Path]:
    directory = Path(app.extensions["foyer.settings"].instance_path) / "uploads" / folder
    return sorted(directory.iterdir()) if directory.exists() else []


# ---------------------------------------------------------------------------------------------
# Who may do what


def test_a_coordinator_manages_their_own_site_and_nothing_of_another(
    cora, db, berlin, berlin_floor, new_york_floor
):
    theirs = add_room(db, new_york_floor, "Hudson")
    overview = cora.get("/admin/spaces/").get_data(as_text=True)
    assert "Berlin" in overview and "New York" not in overview
    assert cora.get(f"/admin/spaces/sites/{berlin.id}").status_code == 200
    assert cora.get(f"/admin/spaces/floors/{berlin_floor.id}").status_code == 200

    ny = new_york_floor
    for path in (
        f"/admin/spaces/sites/{ny.building.site_id}",
        f"/admin/spaces/floors/{ny.id}",
        f"/admin/spaces/floors/{ny.id}/rooms/new",
        f"/admin/spaces/floors/{ny.id}/placement",
        f"/admin/spaces/floors/{ny.id}/qr-codes",
        f"/admin/spaces/rooms/{theirs.id}/edit",
    ):
        assert cora.get(path).status_code == 404, path
    for path, form in (
        (f"/admin/spaces/floors/{ny.id}/rooms/new", room_form()),
        (f"/admin/spaces/floors/{ny.id}/desks/new", {"name": "2.01", "assignment": "hot"}),
        (f"/admin/spaces/rooms/{theirs.id}/edit", room_form(name="Mine now")),
        (f"/admin/spaces/resources/{theirs.id}/disable", {"reason": "Because"}),
        (f"/admin/spaces/floors/{ny.id}/placement", {"resource": theirs.id, "x": 1, "y": 1}),
        (f"/admin/spaces/sites/{ny.building.site_id}/floors", {"building": "B", "level": "9"}),
    ):
        assert cora.submit(path, form).status_code == 404, path
    assert upload_plan(cora, ny, png_bytes()).status_code == 404
    db.expire_all()
    hudson = db.get(Room, theirs.id)
    assert (hudson.name, hudson.active, hudson.plan_x) == ("Hudson", True, None)
    assert count(db, Resource) == 1


def test_an_administrator_manages_every_site(client, admin, db, berlin_floor, new_york_floor):
    client.sign_in("ada@example.com")
    overview = client.get("/admin/spaces/").get_data(as_text=True)
    assert "Berlin" in overview and "New York" in overview
    assert client.get(f"/admin/spaces/floors/{new_york_floor.id}").status_code == 200


def test_employees_cannot_reach_any_of_it(client, employee, db, berlin_floor):
    room = add_room(db, berlin_floor)
    client.sign_in("erin@example.com")
    for path in (
        "/admin/spaces/",
        f"/admin/spaces/sites/{berlin_floor.building.site_id}",
        f"/admin/spaces/floors/{berlin_floor.id}",
        f"/admin/spaces/floors/{berlin_floor.id}/placement",
        f"/admin/spaces/floors/{berlin_floor.id}/qr-codes",
        f"/admin/spaces/rooms/{room.id}/edit",
    ):
        assert client.get(path).status_code == 403, path
    assert (
        client.submit(f"/admin/spaces/resources/{room.id}/disable", {"reason": "x"}).status_code
        == 403
    )
    assert (
        client.submit(f"/admin/spaces/floors/{berlin_floor.id}/rooms/new", room_form()).status_code
        == 403
    )
    assert upload_plan(client, berlin_floor, png_bytes()).status_code == 403
    assert upload_plan(client, berlin_floor, b"\x00" * (20 * 1024 * 1024)).status_code == 413
    assert count(db, Resource) == 1 and stored_files(client.application) == []


def test_anonymous_visitors_are_sent_to_sign_in(client, db, berlin_floor):
    response = client.get(f"/admin/spaces/floors/{berlin_floor.id}")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")


# ---------------------------------------------------------------------------------------------
# Floors, rooms and desks


def test_a_coordinator_adds_a_floor_then_a_room_and_a_desk(cora, db, berlin, employee):
    response = cora.submit(
        f"/admin/spaces/sites/{berlin.id}/floors",
        {"building": "Main building", "level": "3", "name": "Third floor"},
    )
    assert response.status_code == 303
    floor = db.scalar(select(Floor).where(Floor.name == "Third floor"))
    assert response.headers["Location"] == f"/admin/spaces/floors/{floor.id}"

    same_level = cora.submit(
        f"/admin/spaces/sites/{berlin.id}/floors", {"building": "main building", "level": "3"}
    )
    assert same_level.status_code == 422
    assert "Main building already has a floor at level 3." in same_level.get_data(as_text=True)

    response = cora.submit(
        f"/admin/spaces/floors/{floor.id}/rooms/new",
        room_form(allowed_departments=["Engineering"], needs_approval="y"),
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    response = cora.submit(
        f"/admin/spaces/floors/{floor.id}/desks/new",
        {
            "name": "3.01",
            "zone": "Engineering",
            "attributes": ["standing", "dual monitor"],
            "assignment": "assigned",
            "assigned_email": "ERIN@example.com",
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)

    page = cora.get(f"/admin/spaces/floors/{floor.id}").get_data(as_text=True)
    assert "Room Havel added." not in page  # the flash was shown on the redirect...
    assert "Havel" in page and "Needs approval" in page and "Whiteboard" in page
    assert "3.01" in page and "Assigned to Erin Employee" in page and "Standing desk" in page
    db.expire_all()
    room = db.scalar(select(Room).where(Room.name == "Havel"))
    assert (room.capacity, room.equipment, room.allowed_departments) == (
        8,
        ["display", "whiteboard"],
        ["Engineering"],
    )
    assert room.needs_approval and room.buffer_minutes == 5 and room.site_id == berlin.id
    assert len(room.qr_code) == 8
    desk = db.scalar(select(Desk).where(Desk.name == "3.01"))
    assert desk.assigned_user_id == employee.id and desk.attributes == ["dual monitor", "standing"]
    actions = set(db.scalars(select(AuditEvent.action)))
    assert {"floor.created", "room.created", "desk.created"} <= actions


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "Give it a name."),
        ({"name": "   "}, "Give it a name."),
        ({"capacity": "0"}, "A room seats between 1 and 500 people."),
        ({"capacity": "10000"}, "A room seats between 1 and 500 people."),
        ({"capacity": "ten"}, "Enter a whole number."),
        ({"capacity": ""}, "Enter how many people the room seats."),
        ({"buffer_minutes": "-5"}, "The buffer is between 0 and 120 minutes."),
        ({"equipment": ["display", "teleporter"]}, "Choose from the list."),
        ({"name": "x" * 121}, "Keep it under 120 characters."),
        ({"name": "Spree"}, "already has a room called Spree."),
        ({"name": "SPREE"}, "already has a room called Spree."),
        ({"name": "4.01"}, "already has a desk called 4.01."),
    ],
)
def test_bad_room_input_is_refused_beside_the_field_and_nothing_is_saved(
    cora, db, berlin_floor, changes, message
):
    add_room(db, berlin_floor, "Spree")
    add_desk(db, berlin_floor, "4.01")
    response = cora.submit(
        f"/admin/spaces/floors/{berlin_floor.id}/rooms/new", room_form(**changes)
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'class="field-error"' in page and message in page
    assert 'aria-invalid="true"' in page
    assert count(db, Resource) == 2


def test_a_name_with_markup_is_refused_and_shown_back_escaped(cora, db, berlin_floor):
    evil = "<script>alert('owned')</script>"
    response = cora.submit(
        f"/admin/spaces/floors/{berlin_floor.id}/rooms/new", room_form(name=evil)
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Names cannot contain &lt; or &gt;" in page
    assert evil not in page and "&lt;script&gt;alert(" in page
    response = cora.submit(
        f"/admin/spaces/floors/{berlin_floor.id}/desks/new",
        {"name": "5.01", "zone": "<b>VIP</b>", "assignment": "hot"},
    )
    assert response.status_code == 422 and "<b>VIP</b>" not in response.get_data(as_text=True)
    assert count(db, Resource) == 0


def test_markup_already_in_the_database_is_shown_escaped_everywhere(cora, db, berlin_floor):
    # e.g. imported before these checks existed
    evil = '<img src=x onerror="alert(1)">'
    desk = add_desk(db, berlin_floor, evil, plan_x=0.5, plan_y=0.5, zone="<i>z</i>")
    for path in (
        f"/admin/spaces/floors/{berlin_floor.id}",
        f"/admin/spaces/floors/{berlin_floor.id}/placement",
        f"/admin/spaces/floors/{berlin_floor.id}/qr-codes",
        f"/admin/spaces/desks/{desk.id}/edit",
    ):
        page = cora.get(path).get_data(as_text=True)
        assert evil not in page and "<i>z</i>" not in page, path
        assert "&lt;img src=x onerror=" in page, path


def test_the_422_is_a_fragment_for_htmx_and_a_page_otherwise(cora, db, berlin_floor):
    url = f"/admin/spaces/floors/{berlin_floor.id}/rooms/new"
    bad = room_form(capacity="0")
    plain = cora.submit(url, bad)
    fragment = cora.submit(url, bad, htmx=True)
    boosted = cora.submit(url, bad, htmx=True, headers={"HX-Boosted": "true"})
    for response in (plain, fragment, boosted):
        assert response.status_code == 422
        assert "A room seats between 1 and 500 people." in response.get_data(as_text=True)
    assert "<html" in plain.get_data(as_text=True) and "<html" in boosted.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and body.lstrip().startswith('<form id="room-form"')
    assert "HX-Request" in fragment.headers["Vary"]
    ok = cora.submit(url, room_form(), htmx=True)
    assert (
        ok.status_code == 204
        and ok.headers["HX-Redirect"] == f"/admin/spaces/floors/{berlin_floor.id}"
    )


def test_editing_a_room_and_a_desk(cora, db, berlin_floor, employee):
    room = add_room(db, berlin_floor, "Spree", capacity=4)
    desk = add_desk(db, berlin_floor, "4.01")
    add_desk(db, berlin_floor, "4.02")
    page = cora.get(f"/admin/spaces/rooms/{room.id}/edit").get_data(as_text=True)
    assert 'value="Spree"' in page
    response = cora.submit(
        f"/admin/spaces/rooms/{room.id}/edit", room_form(name="Spree", capacity="12")
    )
    assert response.status_code == 303
    taken = cora.submit(
        f"/admin/spaces/desks/{desk.id}/edit", {"name": "4.02", "assignment": "hot"}
    )
    assert taken.status_code == 422 and "already has a desk called 4.02." in taken.get_data(
        as_text=True
    )
    nobody = cora.submit(
        f"/admin/spaces/desks/{desk.id}/edit",
        {"name": "4.01", "assignment": "assigned", "assigned_email": "ghost@example.com"},
    )
    assert nobody.status_code == 422
    assert "No active person has that e-mail address." in nobody.get_data(as_text=True)
    missing = cora.submit(
        f"/admin/spaces/desks/{desk.id}/edit", {"name": "4.01", "assignment": "assigned"}
    )
    assert "Enter the e-mail of the person this desk belongs to." in missing.get_data(as_text=True)
    db.expire_all()
    assert db.get(Room, room.id).capacity == 12
    assert db.get(Desk, desk.id).assignment == "hot"
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "room.updated"))
    assert event.before == {"capacity": 4, "equipment": [], "buffer_minutes": 0} or (
        event.before["capacity"] == 4 and event.after["capacity"] == 12
    )


def test_unknown_resources_answer_404(cora, db, berlin_floor):
    for path in (
        "/admin/spaces/rooms/999999/edit",
        "/admin/spaces/desks/999999/edit",
        "/admin/spaces/floors/999999",
    ):
        assert cora.get(path).status_code == 404
    assert cora.submit("/admin/spaces/resources/999999/disable", {"reason": "x"}).status_code == 404
    desk = add_desk(db, berlin_floor)
    assert cora.get(f"/admin/spaces/rooms/{desk.id}/edit").status_code == 404  # a desk, not a room


# ---------------------------------------------------------------------------------------------
# Out of service


def test_disabling_keeps_the_row_and_its_bookings(cora, db, berlin_floor, employee):
    desk = add_desk(db, berlin_floor, "4.07")
    start = utcnow().replace(microsecond=0) + timedelta(days=2)
    booking = Booking(
        resource_id=desk.id,
        user_id=employee.id,
        created_by_id=employee.id,
        start_at=start,
        end_at=start + timedelta(hours=8),
        blocked_until=start + timedelta(hours=8),
        status=BookingStatus.CONFIRMED,
    )
    db.add(booking)
    db.commit()

    no_reason = cora.submit(f"/admin/spaces/resources/{desk.id}/disable", {"reason": "  "})
    assert no_reason.status_code == 422
    assert "Say why, so people know." in no_reason.get_data(as_text=True)
    fragment = cora.submit(f"/admin/spaces/resources/{desk.id}/disable", {"reason": ""}, htmx=True)
    assert fragment.status_code == 422
    assert (
        fragment.get_data(as_text=True)
        .lstrip()
        .startswith('<section class="card" id="availability"')
    )

    response = cora.submit(f"/admin/spaces/resources/{desk.id}/disable", {"reason": "Broken chair"})
    assert response.status_code == 303
    page = cora.get(response.headers["Location"]).get_data(as_text=True)
    assert "4.07 is out of service. 1 upcoming booking still hold it" in page
    assert "Broken chair" in page and "Out of service" in page
    db.expire_all()
    kept = db.get(Desk, desk.id)
    assert (kept.active, kept.disabled_reason) == (False, "Broken chair")
    assert db.get(Booking, booking.id).status == BookingStatus.CONFIRMED

    sheet = cora.get(f"/admin/spaces/floors/{berlin_floor.id}/qr-codes").get_data(as_text=True)
    assert kept.qr_code not in sheet and "1 out-of-service space is left out" in sheet

    assert cora.submit(f"/admin/spaces/resources/{desk.id}/enable").status_code == 303
    db.expire_all()
    assert (db.get(Desk, desk.id).active, db.get(Desk, desk.id).disabled_reason) == (True, "")
    actions = list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[-2:] == ["desk.disabled", "desk.enabled"]


# ---------------------------------------------------------------------------------------------
# Floor plans


def test_a_png_plan_is_accepted_re_encoded_and_served_safely(cora, app, db, berlin_floor):
    response = upload_plan(cora, berlin_floor, png_bytes((400, 300)), "Plan 4.PNG")
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    assert response.headers["Location"] == f"/admin/spaces/floors/{berlin_floor.id}/placement"
    db.expire_all()
    floor = db.get(Floor, berlin_floor.id)
    assert (floor.plan_content_type, floor.plan_width, floor.plan_height) == ("image/png", 400, 300)
    assert floor.plan_file.endswith(".png") and "Plan" not in floor.plan_file

    served = cora.get(f"/admin/spaces/floors/{floor.id}/plan/{floor.plan_file}")
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    )
    assert b"secret-marker" not in served.data  # metadata does not survive re-encoding
    assert Image.open(io.BytesIO(served.data)).size == (400, 300)
    assert cora.get(f"/admin/spaces/floors/{floor.id}/plan/other.png").status_code == 404

    # Replacing the plan removes the old file once the change is committed.
    old = floor.plan_file
    assert upload_plan(cora, berlin_floor, png_bytes((200, 100))).status_code == 303
    assert [p.name for p in stored_files(app)] != [old] and len(stored_files(app)) == 1


def test_an_svg_plan_is_stripped_of_script_events_and_foreign_content(cora, db, berlin_floor):
    response = upload_plan(cora, berlin_floor, MALICIOUS_SVG, "plan.svg")
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    db.expire_all()
    floor = db.get(Floor, berlin_floor.id)
    # small drawings are scaled up so whole-number sizes keep the 4:3 aspect ratio
    assert (floor.plan_content_type, floor.plan_width, floor.plan_height) == (
        "image/svg+xml",
        1000,
        750,
    )
    served = cora.get(f"/admin/spaces/floors/{floor.id}/plan/{floor.plan_file}")
    assert served.mimetype == "image/svg+xml"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert "default-src 'none'" in served.headers["Content-Security-Policy"]
    svg = served.data.lower()
    for forbidden in (b"script", b"onload", b"onclick", b"foreignobject", b"iframe", b"javascript",
                      b"evil.example", b"<set", b"@import", b"alert"):  # fmt: skip
        assert forbidden not in svg, forbidden
    assert b"kitchen" in svg and svg.count(b"<rect") == 2
    stored = stored_files(cora.application)
    assert len(stored) == 1 and stored[0].read_bytes() == served.data


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (
            b"Just some notes, definitely not a picture.\n" * 20,
            "notes.png",
            "not a PNG, JPEG or SVG image",
        ),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "broken.png", "not a PNG, JPEG or SVG image"),
        (b"GIF89a" + b"\x00" * 100, "plan.gif", "not a PNG, JPEG or SVG image"),
        (b"", "empty.png", "Choose a PNG, JPEG or SVG image."),
        (
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><text>&lol2;</text></svg>',
            "bomb.svg",
            "entities or external references",
        ),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>', "nosize.svg", "has no size"),
        (b"<svg><rect></svg>", "broken.svg", "not well-formed"),
        (b"\x89PNG" + b"\x00" * (10 * 1024 * 1024 + 10), "huge.png", "the most we accept is 10 MB"),
    ],
)
def test_bad_plan_uploads_are_refused_with_a_message_and_nothing_is_stored(
    cora, db, berlin_floor, data, filename, message
):
    response = upload_plan(cora, berlin_floor, data, filename)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page and 'class="field-error"' in page
    db.expire_all()
    assert db.get(Floor, berlin_floor.id).plan_file is None
    assert stored_files(cora.application) == []


def test_an_image_with_too_many_pixels_is_refused_before_decoding(cora, db, berlin_floor):
    buffer = io.BytesIO()
    Image.new("1", (6000, 5000)).save(buffer, "PNG")  # 30 megapixels, a few kB compressed
    response = upload_plan(cora, berlin_floor, buffer.getvalue())
    assert response.status_code == 422
    assert "the most we accept is 25 megapixels" in response.get_data(as_text=True)


def test_a_50_mb_upload_gets_a_message_beside_the_field_never_a_500(cora, db, berlin_floor):
    fifty_mb = b"\x89PNG" + b"\x00" * (50 * 1024 * 1024)
    response = upload_plan(cora, berlin_floor, fifty_mb, "huge.png")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "a plan may be at most 10 MB. Nothing was saved." in page and "<html" in page
    fragment = upload_plan(cora, berlin_floor, fifty_mb, "huge.png", htmx=True)
    assert fragment.status_code == 422
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<form id="plan-form"') and "at most 10 MB" in body
    db.expire_all()
    assert db.get(Floor, berlin_floor.id).plan_file is None
    assert stored_files(cora.application) == []


def test_oversized_uploads_elsewhere_are_refused_without_a_500(
    cora, app, db, berlin_floor, new_york_floor
):
    fifty_mb = b"\xff\xd8" + b"\x00" * (50 * 1024 * 1024)
    room = add_room(db, berlin_floor, "Spree")
    photo = cora.submit(
        f"/admin/spaces/rooms/{room.id}/edit",
        {**room_form(name="Renamed"), "photo": (io.BytesIO(fifty_mb), "photo.jpg")},
        content_type="multipart/form-data",
    )
    assert photo.status_code == 422
    page = photo.get_data(as_text=True)
    assert "choose a smaller photo" in page and 'value="Spree"' in page
    # someone else's floor stays invisible, even when the upload is too large to read
    assert upload_plan(cora, new_york_floor, fifty_mb).status_code == 404
    db.expire_all()
    assert db.get(Room, room.id).name == "Spree" and db.get(Room, room.id).photo_file is None
    assert stored_files(app, "room-photos") == []


# ---------------------------------------------------------------------------------------------
# Placing rooms and desks on the plan


def test_placing_rooms_and_desks_on_the_plan(cora, db, berlin_floor, new_york_floor):
    assert upload_plan(cora, berlin_floor, png_bytes((1000, 500))).status_code == 303
    room = add_room(db, berlin_floor, "Spree")
    desk = add_desk(db, berlin_floor, "4.01")
    elsewhere = add_desk(db, factories.floor(db, berlin_floor.building.site, level=5), "5.01")
    url = f"/admin/spaces/floors/{berlin_floor.id}/placement"

    editor = cora.get(url).get_data(as_text=True)
    assert 'viewBox="0 0 1000 500"' in editor and 'name="x"' in editor and 'name="y"' in editor
    assert "plan-editor.js" in editor

    # without JavaScript: choose, type the position, submit
    response = cora.submit(url, {"resource": str(room.id), "x": "25", "y": "50"})
    assert response.status_code == 303
    page = cora.get(url).get_data(as_text=True)
    assert "Spree is placed at 25 % across, 50 % down." in page
    assert 'transform="translate(250.00 250.00)"' in page

    # with htmx: the editor comes back with the marker and an event for other widgets
    response = cora.submit(url, {"resource": str(desk.id), "x": "80.5", "y": "10"}, htmx=True)
    assert response.status_code == 200 and "plan-editor" in response.get_data(as_text=True)
    assert "<html" not in response.get_data(as_text=True)
    assert "spaces:placed" in response.headers["HX-Trigger"]
    # everything is placed now, so the desk just placed stays chosen
    assert f'<option value="{desk.id}" selected data-x="80.5" data-y="10.0">' in response.get_data(
        as_text=True
    )
    db.expire_all()
    assert (db.get(Room, room.id).plan_x, db.get(Room, room.id).plan_y) == (0.25, 0.5)
    assert (db.get(Desk, desk.id).plan_x, db.get(Desk, desk.id).plan_y) == (0.805, 0.1)

    for form, message in (
        ({"resource": "999999", "x": "1", "y": "1"}, "Choose a room or desk on this floor."),
        (
            {"resource": str(elsewhere.id), "x": "1", "y": "1"},
            "Choose a room or desk on this floor.",
        ),
        ({"resource": "<script>", "x": "1", "y": "1"}, "Choose a room or desk on this floor."),
        ({"resource": str(desk.id), "x": "150", "y": "1"}, "a percentage from 0 to 100"),
        ({"resource": str(desk.id), "x": "abc", "y": "1"}, "Enter a number from 0 to 100."),
        ({"resource": str(desk.id), "x": "nan", "y": "1"}, "a percentage from 0 to 100"),
        ({"resource": str(desk.id), "x": "", "y": "1"}, "Click on the plan, or enter a position"),
    ):
        response = cora.submit(url, form)
        assert response.status_code == 422, form
        assert message in response.get_data(as_text=True), form
    db.expire_all()
    assert db.get(Desk, elsewhere.id).plan_x is None and db.get(Desk, desk.id).plan_x == 0.805

    assert cora.submit(f"/admin/spaces/resources/{desk.id}/unplace").status_code == 303
    db.expire_all()
    assert db.get(Desk, desk.id).plan_x is None


def test_the_placement_editor_works_before_a_plan_exists(cora, db, berlin_floor):
    add_desk(db, berlin_floor, "4.01")
    page = cora.get(f"/admin/spaces/floors/{berlin_floor.id}/placement").get_data(as_text=True)
    assert "This floor has no plan yet." in page and 'name="x"' in page


# ---------------------------------------------------------------------------------------------
# Room photos


def test_a_room_photo_is_re_encoded_without_its_location(cora, db, berlin_floor):
    room = add_room(db, berlin_floor, "Spree")
    response = cora.submit(
        f"/admin/spaces/rooms/{room.id}/edit",
        {**room_form(name="Spree"), "photo": (io.BytesIO(jpeg_with_gps()), "IMG_0001.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    db.expire_all()
    photo = db.get(Room, room.id).photo_file
    served = cora.get(f"/admin/spaces/rooms/{room.id}/photo/{photo}")
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert b"SecretCam" not in served.data and not Image.open(io.BytesIO(served.data)).getexif()

    not_a_photo = cora.submit(
        f"/admin/spaces/rooms/{room.id}/edit",
        {**room_form(name="Spree"), "photo": (io.BytesIO(b"%PDF-1.7 not an image"), "x.jpg")},
        content_type="multipart/form-data",
    )
    assert not_a_photo.status_code == 422
    assert "This file is not a JPEG, PNG or WebP image." in not_a_photo.get_data(as_text=True)


# ---------------------------------------------------------------------------------------------
# The QR sheet


def _rasterise_segno_svg(svg: str, path: Path) -> None:
    """Draw segno's one-path SVG (moves and horizontal lines, one unit per module) as a PNG."""
    size = int(re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).group(1))
    d = re.search(r' d="([^"]+)"', svg).group(1)
    image = Image.new("L", (size, size), 255)
    x = y = 0.0
    for command, a, b in re.findall(r"([MmHh])\s*(-?[\d.]+)(?:[\s,]+(-?[\d.]+))?", d):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            end = float(a) if command == "H" else x + float(a)
            for column in range(int(x), int(end)):
                image.putpixel((column, int(y)), 0)
            x = end
    image.resize((size * 8, size * 8), Image.Resampling.NEAREST).save(path)


def test_the_qr_sheet_has_one_code_per_desk_and_room_that_opens_its_check_in_url(
    cora, db, berlin_floor, tmp_path
):
    resources = [add_room(db, berlin_floor, "Spree"), add_desk(db, berlin_floor, "4.01"),
                 add_desk(db, berlin_floor, "4.02")]  # fmt: skip
    response = cora.get(f"/admin/spaces/floors/{berlin_floor.id}/qr-codes")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "@media print" not in page  # print CSS is in a file
    assert "Set FOYER_BASE_URL" in page  # the test app's address is a loopback one
    assert page.count('class="qr-card"') == 3 and page.count('class="qr-code"') == 3
    assert "style=" not in page.split('<section class="qr-sheet"')[1]  # nothing the CSP blocks
    for resource in resources:
        assert f"http://127.0.0.1:5000/q/{resource.qr_code}" in page
        assert f'data-qr-code="{resource.qr_code}"' in page


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="needs zbarimg (Debian: zbar-tools)")
def test_each_printed_code_decodes_to_its_check_in_url(cora, db, berlin_floor, tmp_path):
    add_room(db, berlin_floor, "Spree")
    add_desk(db, berlin_floor, "4.01")
    page = cora.get(f"/admin/spaces/floors/{berlin_floor.id}/qr-codes").get_data(as_text=True)
    cards = re.findall(r'data-qr-code="([^"]+)".*?(<svg.*?</svg>)', page, re.S)
    assert len(cards) == 2
    for code, svg in cards:
        picture = tmp_path / f"{code}.png"
        _rasterise_segno_svg(svg, picture)
        decoded = subprocess.run(
            ["zbarimg", "--quiet", "--raw", str(picture)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert decoded == f"http://127.0.0.1:5000/q/{code}"

"""Arrangements and files for the facility-issue tests: an office with floors, rooms and desks,
people in it, and the photos (good and bad) a reporter might send."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

from flask import Flask
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import Ticket
from portal.services import facility_issues
from portal.services.audit import Actor
from tests import factories

REPORTER = "rita@example.com"
COLLEAGUE = "carl@example.com"
COORDINATOR = "cora@example.com"
STRANGER = "sam@example.com"  # works in another office


def arrange(db: Session) -> dict[str, Any]:
    """Berlin (two floors, a room and desks) and Paris (one floor, a room)."""
    berlin = factories.site(db, "berlin")
    paris = factories.site(db, "paris", time_zone="Europe/Paris")
    floor_1 = factories.floor(db, berlin, level=1)
    floor_2 = factories.floor(db, berlin, level=2)
    paris_floor = factories.floor(db, paris, level=0)
    office = {
        "berlin": berlin,
        "paris": paris,
        "floor_1": floor_1,
        "floor_2": floor_2,
        "paris_floor": paris_floor,
        "kitchen": factories.room(db, floor_1, name="Kitchen"),
        "aurora": factories.room(db, floor_2, name="Aurora"),
        "desk": factories.desk(db, floor_1, name="1.07"),
        "paris_room": factories.room(db, paris_floor, name="Seine"),
        "reporter": factories.user(db, name="Rita Reporter", email=REPORTER, home_site=berlin),
        "colleague": factories.user(db, name="Carl Colleague", email=COLLEAGUE, home_site=berlin),
        "coordinator": factories.user(
            db, name="Cora Coordinator", email=COORDINATOR, coordinator_of=berlin
        ),
        "stranger": factories.user(db, name="Sam Stranger", email=STRANGER, home_site=paris),
    }
    db.commit()
    return office


def browser(app: Flask, email: str) -> Any:
    """Another signed-in browser (each test client keeps its own cookies)."""
    from tests.conftest import Browser

    app.test_client_class = Browser
    other = app.test_client()
    other.sign_in(email)
    return other


def issue(db: Session, reporter: Any, place: facility_issues.Place, **kwargs: Any) -> Ticket:
    """An issue reported through the service, committed."""
    values: dict[str, Any] = {
        "category": "plumbing",
        "description": "The tap keeps dripping",
        "priority": "normal",
        "photos": [],
        "uploads": Path("/nonexistent"),
        "key": "",
    }
    values.update(kwargs)
    ticket, _ = facility_issues.report_issue(
        db, Actor.system("tests"), reporter=reporter, place=place, now=utcnow(), **values
    )
    db.commit()
    return ticket


def count(db: Session, model: Any) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model)) or 0


def stored_photos(app: Flask) -> list[Path]:
    directory = Path(app.extensions["foyer.settings"].instance_path) / "uploads" / "issues"
    return sorted(p for p in directory.iterdir() if p.is_file()) if directory.exists() else []


# ---------------------------------------------------------------------------------------------
# Files


def jpeg(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, (10, 90, 200, 255)).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}  # GPS
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


SCRIPT = b"<script>alert(document.cookie)</script>"


def gif_with_script() -> bytes:
    """A real GIF whose comment block carries HTML with a script (a "GIFAR"-style polyglot)."""
    buffer = io.BytesIO()
    frames = [Image.new("P", (32, 32), 1), Image.new("P", (32, 32), 2)]
    frames[0].save(
        buffer, "GIF", save_all=True, append_images=frames[1:], comment=SCRIPT, duration=100
    )
    return buffer.getvalue()


def image_bomb(side: int = 100_000) -> bytes:
    """A valid PNG header claiming side × side pixels (by default 100,000 × 100,000) with a tiny
    body: decoding it would need tens of gigabytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def renamed_executable() -> bytes:
    """The start of a Windows program (an "MZ" header), as if saved under photo.jpg."""
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 4000


def large_file(megabytes: float) -> bytes:
    """A JPEG header followed by filler: large, without being a photo worth decoding."""
    return b"\xff\xd8\xff\xe0" + b"\x00" * int(megabytes * 1024 * 1024)

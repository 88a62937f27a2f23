"""The admin's audit log: filter by who, action, object and dates, page through it, download
what is shown as CSV (streamed), and end someone's sessions everywhere."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from flask import Flask

from portal.models import AuditEvent
from portal.services import audit_search
from tests import factories


def _entry(db, at: datetime, action: str, who: str = "jo@example.com", **kwargs) -> AuditEvent:
    event = AuditEvent(at=at, actor_label=who, action=action, **kwargs)
    db.add(event)
    return event


def _seed(db) -> None:
    _entry(
        db,
        datetime(2026, 3, 2, 9, tzinfo=UTC),
        "booking.created",
        object_type="bookings",
        object_id="7",
    )
    _entry(
        db,
        datetime(2026, 3, 9, 9, tzinfo=UTC),
        "booking.cancelled",
        object_type="bookings",
        object_id="7",
    )
    _entry(
        db,
        datetime(2026, 3, 9, 10, tzinfo=UTC),
        "booking.created",
        object_type="bookings",
        object_id="8",
    )
    _entry(db, datetime(2026, 4, 1, 8, tzinfo=UTC), "login.failed", who="mallory@example.net")
    _entry(
        db,
        datetime(2026, 4, 2, 8, tzinfo=UTC),
        "user.deactivated",
        who='=HYPERLINK("http://evil")',
        object_type="users",
        object_id="3",
    )
    db.commit()


def _rows(response) -> list[str]:
    page = response.get_data(as_text=True)
    return [line for line in page.split("<tr>")[1:] if "<code>" in line]


def test_the_admin_filters_by_who_action_object_and_dates(client, admin, db) -> None:
    _seed(db)
    client.sign_in(admin.email)

    by_action = client.get("/admin/audit/?action=booking.")
    assert by_action.status_code == 200
    assert len(_rows(by_action)) == 3
    assert "login.failed" not in by_action.get_data(as_text=True)

    one_object = client.get("/admin/audit/?object_type=bookings&object_id=7")
    assert [r.count("booking.") for r in _rows(one_object)] == [1, 1]
    assert "booking.cancelled" in one_object.get_data(as_text=True)

    by_who = client.get("/admin/audit/?who=MALLORY")
    assert len(_rows(by_who)) == 1 and "login.failed" in _rows(by_who)[0]

    # Dates are days in the admin's zone, both ends included.
    in_march = client.get("/admin/audit/?from=2026-03-09&to=2026-03-31")
    assert len(_rows(in_march)) == 2
    assert "booking.cancelled" in in_march.get_data(as_text=True)


def test_a_reversed_or_unreadable_date_range_is_explained_not_searched(client, admin, db) -> None:
    _seed(db)
    client.sign_in(admin.email)
    reversed_range = client.get("/admin/audit/?from=2026-04-01&to=2026-03-01")
    assert reversed_range.status_code == 422
    assert "The end date is before the start date." in reversed_range.get_data(as_text=True)
    assert _rows(reversed_range) == []
    garbled = client.get("/admin/audit/?from=yesterday")
    assert garbled.status_code == 422
    assert "Give a date as YYYY-MM-DD." in garbled.get_data(as_text=True)
    refused = client.get("/admin/audit/export.csv?from=2026-04-01&to=2026-03-01")
    assert refused.status_code == 422
    assert "Nothing was exported" in refused.get_data(as_text=True)


def test_the_download_holds_what_the_page_shows_streamed_and_spreadsheet_safe(
    client, admin, db
) -> None:
    _seed(db)
    client.sign_in(admin.email)
    response = client.get("/admin/audit/export.csv?from=2026-04-01")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert 'filename="foyer-audit-log-2026-04-01-to-' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:5] == ["When (UTC)", "When (local)", "Who", "IP address", "Action"]
    actions = [r[4] for r in rows[1:]]
    assert "login.failed" in actions and "user.deactivated" in actions
    assert not any(a.startswith("booking.") for a in actions)
    # A formula someone typed as their label opens as text in a spreadsheet.
    assert '\'=HYPERLINK("http://evil")' in [r[2] for r in rows[1:]]


def test_a_long_export_comes_in_batches_newest_first_with_nothing_lost(client, admin, db) -> None:
    count = audit_search.EXPORT_BATCH * 2 + 7
    db.add_all(
        AuditEvent(at=datetime(2025, 1, 1, tzinfo=UTC), actor_label="bulk", action=f"bulk.{n}")
        for n in range(count)
    )
    db.commit()
    client.sign_in(admin.email)
    response = client.get("/admin/audit/export.csv?who=bulk")
    chunks = list(response.response)
    assert len(chunks) >= 4  # the header, then one chunk per batch
    rows = list(
        csv.reader(io.StringIO("".join(c.decode() if isinstance(c, bytes) else c for c in chunks)))
    )
    actions = [r[4] for r in rows[1:]]
    assert len(actions) == count
    assert actions[0] == f"bulk.{count - 1}" and actions[-1] == "bulk.0"


def test_only_admins_see_or_download_the_audit_log(client, db) -> None:
    berlin = factories.site(db)
    coordinator = factories.user(db, coordinator_of=berlin)
    db.commit()
    client.sign_in(coordinator.email)
    assert client.get("/admin/audit/").status_code == 403
    assert client.get("/admin/audit/export.csv").status_code == 403


def test_older_entries_keep_the_filter(client, admin, db) -> None:
    db.add_all(
        AuditEvent(at=datetime(2025, 1, 1, tzinfo=UTC), actor_label="pager", action="page.turned")
        for _ in range(audit_search.PAGE_SIZE + 5)
    )
    db.commit()
    client.sign_in(admin.email)
    first = client.get("/admin/audit/?who=pager").get_data(as_text=True)
    assert "Show older entries" in first
    assert "who=pager" in first.split("Show older entries")[0].rsplit("href=", 1)[1]
    older_url = (
        first.split('id="audit-more"')[1].split('href="')[1].split('"')[0].replace("&amp;", "&")
    )
    older = client.get(older_url, headers={"HX-Request": "true"})
    assert older.get_data(as_text=True).count("page.turned") == 5


def test_an_admin_signs_someone_out_everywhere_and_it_is_audited(
    app: Flask, client, admin, db
) -> None:
    person = factories.user(db, name="Lost Laptop")
    db.commit()
    laptop = app.test_client()
    laptop.__class__ = client.__class__
    laptop.sign_in(person.email)
    phone = app.test_client()
    phone.__class__ = client.__class__
    phone.sign_in(person.email)
    assert laptop.get("/my-day").status_code == 200

    client.sign_in(admin.email)
    done = client.submit(f"/admin/people/{person.id}/sign-out")
    assert done.status_code == 303
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Lost Laptop is signed out everywhere (2 sessions ended)." in page

    for device in (laptop, phone):
        again = device.get("/my-day")
        assert again.status_code in (302, 303) and "/sign-in" in again.headers["Location"]
    laptop.sign_in(person.email)  # they may sign in again
    entry = db.query(AuditEvent).filter_by(action="user.signed_out_everywhere").one()
    assert entry.object_id == str(person.id) and entry.after == {"sessions_ended": 2}

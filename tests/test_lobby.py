"""A site's coordinators run the lobby: the visitor log (search, filters, pages, a CSV export a
spreadsheet cannot be tricked by), checking visitors out, and the roll call during an evacuation.
Everyone signed in sees live notices in the header. Other sites' lobbies stay out of reach."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from portal.db import utcnow
from portal.models import (
    Booking,
    BookingStatus,
    CheckoutMethod,
    LoginSession,
    Notice,
    RollCallMark,
    Visit,
    VisitStatus,
)
from portal.services import notices, visitors
from tests import factories
from tests.test_visitors_portal import (
    COORDINATOR,
    HOST,
    NY_COORDINATOR,
    OTHER,
    arrange_office,
    make_visit,
)

HX = {"HX-Request": "true"}


@pytest.fixture
def office(db):
    return arrange_office(db)


def log_url(site) -> str:
    return f"/lobby/sites/{site.id}/"


# ---------------------------------------------------------------------------------------------
# The visitor log


def test_the_log_opens_on_today_and_filters_by_search_host_status_and_dates(client, office, db):
    berlin, host, other = office["berlin"], office["host"], office["other"]
    make_visit(
        db, berlin, host, "Anna Kowalski", company="Nordlicht", status=VisitStatus.CHECKED_IN
    )
    make_visit(db, berlin, other, "Bruno Brandt", company="Acme", email="bruno@acme.test")
    make_visit(
        db, berlin, host, "Yara Yesterday", days_from_today=-1, status=VisitStatus.CHECKED_OUT
    )
    make_visit(db, office["new_york"], office["ny_coordinator"], "Nora Newyork")
    db.commit()
    client.sign_in(COORDINATOR)
    assert client.get("/lobby/").headers["Location"].endswith(log_url(berlin))

    page = client.get(log_url(berlin)).get_data(as_text=True)
    assert "Anna Kowalski" in page and "Bruno Brandt" in page
    assert "Yara Yesterday" not in page and "Nora Newyork" not in page
    assert re.search(r'stat-value">1</span><span class="stat-label">On site now', page)

    def names(**args: str) -> set[str]:
        body = client.get(log_url(berlin), query_string=args, headers=HX).get_data(as_text=True)
        return {n for n in ("Anna Kowalski", "Bruno Brandt", "Yara Yesterday") if n in body}

    everything = {"day_from": "", "day_to": ""}
    assert names(**everything) == {"Anna Kowalski", "Bruno Brandt", "Yara Yesterday"}
    assert names(**everything, q="nordl") == {"Anna Kowalski"}  # company
    assert names(**everything, q="BRUNO@acme") == {"Bruno Brandt"}  # e-mail, any case
    assert names(**everything, host="otto") == {"Bruno Brandt"}
    assert names(**everything, status="checked_out") == {"Yara Yesterday"}
    yesterday = (visitors.today_at(berlin, utcnow()) - timedelta(days=1)).isoformat()
    assert names(day_from=yesterday, day_to=yesterday) == {"Yara Yesterday"}
    assert names(**everything, q="100%_") == set()  # LIKE wildcards are text


def test_the_log_fragment_three_ways_and_bad_filters(client, office, db):
    berlin = office["berlin"]
    make_visit(db, berlin, office["host"])
    db.commit()
    client.sign_in(COORDINATOR)
    full = client.get(log_url(berlin), query_string={"q": "anna"})
    fragment = client.get(log_url(berlin), query_string={"q": "anna"}, headers=HX)
    boosted = client.get(
        log_url(berlin), query_string={"q": "anna"}, headers={**HX, "HX-Boosted": "true"}
    )
    assert "<html" in full.get_data(as_text=True) and "<html" in boosted.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="visitor-log"') and "Anna Kowalski" in body
    assert "HX-Request" in fragment.headers["Vary"]
    bad = client.get(
        log_url(berlin), query_string={"day_from": "2026-05-10", "day_to": "2026-05-01"}, headers=HX
    )
    assert bad.status_code == 422 and "The end is before the start." in bad.get_data(as_text=True)
    assert client.get(log_url(berlin), query_string={"status": "bogus"}).status_code == 422
    assert client.get(log_url(berlin), query_string={"q": "x" * 500}).status_code == 422


def test_the_log_pages_through_many_visits(client, office, db):
    berlin, host = office["berlin"], office["host"]
    for n in range(55):
        make_visit(db, berlin, host, f"Guest {n:02d}", email=f"g{n}@example.org")
    db.commit()
    client.sign_in(COORDINATOR)
    first = client.get(log_url(berlin)).get_data(as_text=True)
    assert first.count('id="visit-row-') == 50 and "1–50" in first and "page=2" in first
    second = client.get(log_url(berlin), query_string={"page": "2"}).get_data(as_text=True)
    assert second.count('id="visit-row-') == 5 and "51–55" in second and "Previous" in second
    assert client.get(log_url(berlin), query_string={"page": "x"}).status_code == 200


def test_the_csv_export_has_the_filtered_log_and_cannot_run_formulas(client, office, db):
    berlin, host = office["berlin"], office["host"]
    make_visit(db, berlin, host, '=HYPERLINK("http://evil.test","click")', company="+1 Corp")
    make_visit(db, berlin, host, "@SUM(A1)", company="-2 Ltd", email="x@example.org")
    make_visit(
        db, berlin, host, "Zoë 王 محمد", company="Normal GmbH", status=VisitStatus.CHECKED_OUT
    )
    make_visit(db, berlin, host, "Old Visit", days_from_today=-40)
    db.commit()
    client.sign_in(COORDINATOR)
    response = client.get(f"/lobby/sites/{berlin.id}/visitors.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "no-store" in response.headers["Cache-Control"]
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["Date", "Expected from", "Expected until", "Visitor"]
    visitors_col, company_col = header.index("Visitor"), header.index("Company")
    names = {row[visitors_col] for row in body}
    assert '\'=HYPERLINK("http://evil.test","click")' in names and "'@SUM(A1)" in names
    assert "Zoë 王 محمد" in names and "Old Visit" not in names  # today by default
    companies = {row[company_col] for row in body}
    assert {"'+1 Corp", "'-2 Ltd", "Normal GmbH"} <= companies
    for row in body:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row), row
    everything = client.get(
        f"/lobby/sites/{berlin.id}/visitors.csv", query_string={"day_from": "", "day_to": ""}
    ).get_data(as_text=True)
    assert "Old Visit" in everything
    only_out = client.get(
        f"/lobby/sites/{berlin.id}/visitors.csv", query_string={"status": "checked_out"}
    ).get_data(as_text=True)
    assert "Zoë" in only_out and "HYPERLINK" not in only_out


def test_csv_cells_are_made_safe():
    from portal.services.spreadsheets import csv_safe

    assert csv_safe("=1+1") == "'=1+1"
    assert csv_safe("+49 30 1234") == "'+49 30 1234"
    assert csv_safe("-x") == "'-x" and csv_safe("@x") == "'@x" and csv_safe("\tx") == "'\tx"
    assert csv_safe("Anna") == "Anna" and csv_safe(None) == "" and csv_safe(3) == "3"


def test_a_coordinator_checks_a_visitor_out_from_the_log(client, office, db):
    berlin = office["berlin"]
    visit = make_visit(db, berlin, office["host"], status=VisitStatus.CHECKED_IN)
    db.commit()
    client.sign_in(COORDINATOR)
    assert "Check out" in client.get(log_url(berlin)).get_data(as_text=True)
    row = client.submit(f"/lobby/visits/{visit.id}/check-out", htmx=True)
    body = row.get_data(as_text=True)
    assert row.status_code == 200 and body.lstrip().startswith(f'<tr id="visit-row-{visit.id}"')
    assert "Checked out" in body and "is checked out" in body  # the row, and the message
    db.refresh(visit)
    assert visit.checkout_method == CheckoutMethod.COORDINATOR
    again = client.submit(f"/lobby/visits/{visit.id}/check-out", {"next": log_url(berlin)})
    assert again.status_code == 303 and again.headers["Location"] == log_url(berlin)


# ---------------------------------------------------------------------------------------------
# Roll call


@pytest.fixture
def on_site(db, office):
    """A visitor checked in, and an employee checked in to a desk today, at Berlin."""
    berlin = office["berlin"]
    visit = make_visit(db, berlin, office["host"], "Vera Visitor", status=VisitStatus.CHECKED_IN)
    desk = factories.desk(db, factories.floor(db, berlin), "2.14")
    now = utcnow()
    db.add(
        Booking(
            resource_id=desk.id,
            user_id=office["other"].id,
            created_by_id=office["other"].id,
            start_at=now - timedelta(minutes=30),
            end_at=now + timedelta(hours=2),
            blocked_until=now + timedelta(hours=2),
            status=BookingStatus.CHECKED_IN,
            checked_in_at=now - timedelta(minutes=25),
        )
    )
    db.commit()
    return visit


def test_roll_call_lists_who_is_on_site_and_marks_them_safe(client, office, db, on_site):
    berlin, otto = office["berlin"], office["other"]
    client.sign_in(COORDINATOR)
    home = client.get("/lobby/roll-call")
    assert home.headers["Location"].endswith(f"/lobby/sites/{berlin.id}/roll-call")
    page = client.get(f"/lobby/sites/{berlin.id}/roll-call").get_data(as_text=True)
    assert "Vera Visitor" in page and "Otto Other" in page and "2.14" in page
    assert re.search(r'roll-big">2</span>', page) and "data-print" in page
    assert 'aria-pressed="false"' in page

    subject = f"user:{otto.id}"
    tapped = client.submit(
        f"/lobby/sites/{berlin.id}/roll-call", {"subject": subject, "accounted": "1"}, htmx=True
    )
    body = tapped.get_data(as_text=True)
    assert tapped.status_code == 200
    assert (
        f'id="user-{otto.id}"' in body and "is-accounted" in body and 'aria-pressed="true"' in body
    )
    assert 'id="roll-summary"' in body and 'hx-swap-oob="true"' in body
    assert re.search(r'roll-big">1</span>', body)
    marks = db.scalars(select(RollCallMark.subject)).all()
    assert marks == [subject]
    # Tapped again: not accounted for any more. Without htmx: back to the person on the page.
    undone = client.submit(
        f"/lobby/sites/{berlin.id}/roll-call", {"subject": subject, "accounted": "0"}
    )
    assert undone.status_code == 303 and undone.headers["Location"].endswith(f"#user-{otto.id}")
    assert db.scalars(select(RollCallMark)).all() == []
    # Someone not on site (or made up) changes nothing.
    gone = client.submit(
        f"/lobby/sites/{berlin.id}/roll-call",
        {"subject": "visit:999999", "accounted": "1"},
        htmx=True,
    )
    assert gone.headers.get("HX-Refresh") == "true"
    junk = client.submit(
        f"/lobby/sites/{berlin.id}/roll-call", {"subject": "drop table", "accounted": "1"}
    )
    assert junk.status_code == 303 and db.scalars(select(RollCallMark)).all() == []


def test_roll_call_needs_the_csrf_token(client, office, on_site):
    client.sign_in(COORDINATOR)
    response = client.post(
        f"/lobby/sites/{office['berlin'].id}/roll-call",
        data={"subject": f"visit:{on_site.id}", "accounted": "1"},
    )
    assert response.status_code == 400


def test_roll_call_is_empty_and_calm_when_nobody_is_in(client, office):
    client.sign_in(COORDINATOR)
    page = client.get(f"/lobby/sites/{office['berlin'].id}/roll-call").get_data(as_text=True)
    assert "Nobody is checked in at Berlin right now." in page


def test_coordinators_get_a_one_tap_roll_call_link_in_the_header(client, office, admin):
    client.sign_in(COORDINATOR)
    assert 'href="/lobby/roll-call"' in client.get("/my-day").get_data(as_text=True)
    client.submit("/sign-out")
    client.sign_in(HOST)
    assert 'href="/lobby/roll-call"' not in client.get("/my-day").get_data(as_text=True)
    client.submit("/sign-out")
    client.sign_in("ada@example.com")  # an admin without a home site picks the site
    chooser = client.get("/lobby/roll-call")
    assert chooser.status_code == 200
    assert "Berlin" in chooser.get_data(as_text=True) and "New York" in chooser.get_data(
        as_text=True
    )


# ---------------------------------------------------------------------------------------------
# Who may use the lobby


def test_the_lobby_is_closed_to_employees_and_to_other_sites(client, office, db, on_site):
    berlin = office["berlin"]
    reads = [
        log_url(berlin),
        f"/lobby/sites/{berlin.id}/visitors.csv",
        f"/lobby/sites/{berlin.id}/roll-call",
    ]
    writes = [
        (
            f"/lobby/sites/{berlin.id}/roll-call",
            {"subject": f"visit:{on_site.id}", "accounted": "1"},
        ),
        (f"/lobby/visits/{on_site.id}/check-out", {}),
    ]
    for url in reads + ["/lobby/", "/lobby/roll-call"]:
        assert client.get(url).status_code == 302, url  # anonymous: sign in first
    client.sign_in(HOST)  # an employee (even the visitor's host)
    for url in reads + ["/lobby/", "/lobby/roll-call"]:
        assert client.get(url).status_code == 403, url
    for url, data in writes:
        assert client.submit(url, data).status_code == 403, url
    client.submit("/sign-out")
    client.sign_in(NY_COORDINATOR)  # another site's coordinator
    for url in reads:
        assert client.get(url).status_code == 404, url
    for url, data in writes:
        assert client.submit(url, data).status_code == 404, url
    assert (
        client.get("/lobby/").headers["Location"].endswith(f"/lobby/sites/{office['new_york'].id}/")
    )
    db.refresh(on_site)
    assert on_site.status == VisitStatus.CHECKED_IN
    assert db.scalars(select(RollCallMark)).all() == []


# ---------------------------------------------------------------------------------------------
# Live notices


def notify(db, user, text="Anna Kowalski (Acme) has arrived at Berlin.", link="/visitors/1"):
    notice = notices.notify(db, user, "visitor_arrived", text, link=link)
    db.commit()
    return notice


def test_the_header_polls_notices_and_shows_the_unread_count(client, office, db):
    host = office["host"]
    client.sign_in(HOST)
    page = client.get("/my-day").get_data(as_text=True)
    assert 'hx-get="/notices"' in page and 'hx-trigger="load, every 10s"' in page
    empty = client.get("/notices", headers=HX).get_data(as_text=True)
    assert "You are all caught up." in empty and 'id="notices-count"' in empty

    notify(db, host)
    notify(db, host, "Bruno (Acme) has arrived at Berlin.", "/visitors/2")
    poll = client.get("/notices", headers=HX)
    body = poll.get_data(as_text=True)
    assert poll.status_code == 200 and "<html" not in body
    assert "Anna Kowalski (Acme) has arrived at Berlin." in body
    assert re.search(r'id="notices-count"[^>]*hx-swap-oob="true"[^>]*>2<', body)
    state = re.search(r'id="notices-state" name="state" value="([^"]+)"', body)[1]
    unchanged = client.get("/notices", query_string={"state": state}, headers=HX)
    assert unchanged.status_code == 204  # nothing new: nothing to swap
    notify(db, host, "Carla has arrived.")
    changed = client.get("/notices", query_string={"state": state}, headers=HX)
    assert changed.status_code == 200 and "Carla has arrived." in changed.get_data(as_text=True)
    # Without JavaScript: a page of notices.
    assert "<html" in client.get("/notices").get_data(as_text=True)


def test_notices_are_only_ever_ones_own(client, office, db):
    mine = notify(db, office["host"], "For Hanna")
    theirs = notify(db, office["other"], "For Otto")
    assert client.get("/notices").status_code == 302  # signed out: to the sign-in page
    assert client.get("/notices", headers=HX).status_code == 401
    for url in (f"/notices/{mine.id}/read", "/notices/read", f"/notices/{mine.id}/open"):
        assert client.submit(url).status_code == 302, url
    client.sign_in(HOST)
    body = client.get("/notices", headers=HX).get_data(as_text=True)
    assert "For Hanna" in body and "For Otto" not in body
    client.submit(f"/notices/{theirs.id}/read", htmx=True)
    assert client.submit(f"/notices/{theirs.id}/open").status_code == 404
    db.refresh(theirs)
    assert theirs.read_at is None
    assert mine.read_at is None


def test_opening_a_notice_reads_it_and_follows_its_link(client, office, db):
    notice = notify(db, office["host"], link="/visitors/42")
    evil = notify(db, office["host"], link="https://evil.test/")
    client.sign_in(HOST)
    opened = client.submit(f"/notices/{notice.id}/open")
    assert opened.status_code == 303 and opened.headers["Location"] == "/visitors/42"
    db.refresh(notice)
    assert notice.read_at is not None
    assert client.submit(f"/notices/{evil.id}/open").headers["Location"] == "/notices"


def test_dismissing_one_or_all_notices(client, office, db):
    host = office["host"]
    first, second, third = (notify(db, host, f"Notice {n}") for n in range(3))
    client.sign_in(HOST)
    one = client.submit(f"/notices/{first.id}/read", htmx=True)
    body = one.get_data(as_text=True)
    assert "Notice 0" not in body and "Notice 1" in body
    assert re.search(r'id="notices-count"[^>]*>2<', body)
    plain = client.submit(f"/notices/{second.id}/read", {"next": "/visitors/"})
    assert plain.status_code == 303 and plain.headers["Location"] == "/visitors/"
    everything = client.submit("/notices/read", htmx=True).get_data(as_text=True)
    assert "You are all caught up." in everything
    assert notices.unread_count(db, host.id) == 0
    db.refresh(third)
    assert third.read_at is not None


def test_the_poll_is_cheap_and_does_not_keep_an_idle_session_alive(client, office, db, connection):
    host = office["host"]
    for n in range(3):
        notify(db, host, f"Visitor {n} arrived.")
    client.sign_in(HOST)
    db.execute(update(LoginSession).values(last_seen_at=utcnow() - timedelta(minutes=30)))
    db.commit()

    def statements_of(url: str, headers: dict[str, str]) -> tuple[object, list[str]]:
        seen: list[str] = []

        def count(_conn, _cursor, statement, *_args):
            if statement.lstrip().split(" ", 1)[0].upper() in (
                "SELECT",
                "INSERT",
                "UPDATE",
                "DELETE",
            ):
                seen.append(statement)

        event.listen(connection, "before_cursor_execute", count)
        try:
            return client.get(url, headers=headers), seen
        finally:
            event.remove(connection, "before_cursor_execute", count)

    response, statements = statements_of("/notices", HX)
    assert response.status_code == 200 and "Visitor 2 arrived." in response.get_data(as_text=True)
    session_loading = [s for s in statements if "FROM login_sessions" in s]
    others = [s for s in statements if s not in session_loading]
    assert len(session_loading) == 1
    assert len(others) <= 2, others  # the unread notices (and a count only past 20)
    # The poll is not activity: the session's last-seen time is not pushed back...
    assert not any(s.startswith("UPDATE login_sessions") for s in statements)
    # ...while a page the person opens is.
    _page, statements = statements_of("/my-day", {})
    assert any(s.startswith("UPDATE login_sessions") for s in statements)


def test_a_poll_never_swallows_the_next_pages_message(client, office, db):
    client.sign_in(HOST)
    with client.session_transaction() as cookie:
        cookie["_flashes"] = [("success", "Saved the thing.")]
    client.get("/notices", headers=HX)
    assert "Saved the thing." in client.get("/my-day").get_data(as_text=True)


def test_an_expired_session_sends_the_poll_to_sign_in(client, office, db):
    client.sign_in(HOST)
    db.execute(update(LoginSession).values(last_seen_at=utcnow() - timedelta(days=2)))
    db.commit()
    response = client.get("/notices", headers=HX)
    assert response.status_code == 401 and "/sign-in" in response.headers["HX-Redirect"]


def test_a_visitor_arriving_at_the_kiosk_shows_in_the_hosts_header(client, office, db):
    """The check-in (any app instance) writes the notice; the host's next poll shows it."""
    from portal.models import KioskDevice
    from portal.services.visitors import Signing

    berlin = office["berlin"]
    visit = make_visit(db, berlin, office["host"], "Anna Kowalski")
    device = KioskDevice(site_id=berlin.id, name="Main lobby")
    db.add(device)
    db.flush()
    visitors.check_in_invited(db, device, visit.id, Signing(submission_key="k1"), now=utcnow())
    db.commit()
    client.sign_in(HOST)
    body = client.get("/notices", headers=HX).get_data(as_text=True)
    assert "Anna Kowalski (Acme) has arrived at Berlin" in body
    assert "/notices/" in body and ">1<" in body
    notice = db.scalars(select(Notice)).one()
    assert (
        client.submit(f"/notices/{notice.id}/open").headers["Location"] == f"/visitors/{visit.id}"
    )
    assert db.scalar(select(Visit.status).where(Visit.id == visit.id)) == VisitStatus.CHECKED_IN


def test_other_employee_sees_no_lobby_navigation(client, office):
    client.sign_in(OTHER)
    body = client.get("/visitors/").get_data(as_text=True)
    assert 'href="/lobby/"' not in body

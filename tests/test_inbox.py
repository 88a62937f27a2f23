"""The coordinator's inbox: one queue per coordinator's sites, filters, SLA badges, saved views,
bulk actions that report each row, room approvals in the same list, and a fixed query count."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import (
    Booking,
    BookingStatus,
    LineStatus,
    SavedView,
    Ticket,
    TicketKind,
    TicketStatus,
)
from portal.services import inbox, tickets
from portal.services.audit import Actor
from tests import factories
from tests import service_desk_factories as sd

SYSTEM = Actor.system("tests")


@pytest.fixture
def world(db: Session) -> dict[str, Any]:
    """Two sites; Cora coordinates A, Bo coordinates B; Erin works at A."""
    site_a = factories.site(db, "alpha")
    site_b = factories.site(db, "beta")
    cora = factories.user(
        db, name="Cora Coordinator", email="cora@example.com", coordinator_of=site_a
    )
    bo = factories.user(db, name="Bo Coordinator", email="bo@example.com", coordinator_of=site_b)
    erin = factories.user(db, name="Erin Employee", email="erin@example.com")
    db.commit()
    return {"a": site_a, "b": site_b, "cora": cora, "bo": bo, "erin": erin}


def numbers(html: str) -> list[str]:
    """Ticket and booking numbers in the list, in order (each row links its number once)."""
    return re.findall(
        r'<td class="cell-number nowrap">.*?<a href="[^"]*">([A-Z]+-\d+)</a>', html, re.S
    )


def page(client: Any, query: str = "", **headers: str) -> str:
    response = client.get(f"/inbox/?{query}", headers=headers)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def pending_booking(
    db: Session, world: dict[str, Any], hours_ahead: float = 30, **kw: Any
) -> Booking:
    room = kw.pop("room", None) or factories.room(
        db, factories.floor(db, world["a"]), needs_approval=True
    )
    start = utcnow().replace(microsecond=0) + timedelta(hours=hours_ahead)
    booking = Booking(
        resource_id=room.id,
        user_id=world["erin"].id,
        created_by_id=world["erin"].id,
        title=kw.pop("title", "Board review"),
        start_at=start,
        end_at=start + timedelta(hours=1),
        blocked_until=start + timedelta(hours=1),
        status=BookingStatus.PENDING,
        **kw,
    )
    db.add(booking)
    db.flush()
    return booking


# ---------------------------------------------------------------------------------------------
# Who may look


def test_employees_cannot_open_the_inbox(client: Any, db: Session, world: dict[str, Any]) -> None:
    task = sd.ticket(db, world["erin"], world["a"], kind=TicketKind.RETURN, title="Return: Erin")
    db.commit()
    client.sign_in("erin@example.com")
    assert client.get("/inbox/").status_code == 403
    assert client.get(f"/inbox/tickets/{task.id}").status_code in (403, 404)
    assert (
        client.submit("/inbox/bulk", {"action": "close", "selected": f"t:{task.id}:1"}).status_code
        == 403
    )


def test_a_coordinator_never_sees_another_sites_tickets(
    client: Any, db: Session, world: dict[str, Any]
) -> None:
    mine = sd.ticket(db, world["erin"], world["a"], title="Dripping tap in kitchen A")
    theirs = sd.ticket(db, world["erin"], world["b"], title="Broken blind in office B")
    their_task = sd.ticket(db, world["erin"], world["b"], kind=TicketKind.RETURN, title="Return B")
    db.commit()
    client.sign_in("cora@example.com")
    html = page(client)
    assert mine.number in html and "Dripping tap" in html
    assert theirs.number not in html and "Broken blind" not in html
    # Asking for site B by hand, or for B's numbers, finds nothing.
    assert numbers(page(client, f"site={world['b'].id}")) == []
    assert numbers(page(client, f"q={theirs.number}")) == []
    assert client.get(f"/inbox/tickets/{their_task.id}").status_code == 404
    # A bulk action on B's ticket is refused for that row, and nothing changes.
    response = client.submit(
        "/inbox/bulk",
        {"action": "close", "selected": [f"t:{theirs.id}:{theirs.version}"]},
        htmx=True,
    )
    assert response.status_code == 200
    assert "is no longer in your inbox" in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(Ticket, theirs.id).status == TicketStatus.SUBMITTED


def test_an_admin_sees_every_site(
    client: Any, db: Session, world: dict[str, Any], admin: Any
) -> None:
    a = sd.ticket(db, world["erin"], world["a"])
    b = sd.ticket(db, world["erin"], world["b"])
    db.commit()
    client.sign_in(admin.email)
    found = numbers(page(client))
    assert a.number in found and b.number in found
    assert numbers(page(client, f"site={world['b'].id}")) == [b.number]


# ---------------------------------------------------------------------------------------------
# Filters


def test_each_filter_narrows_the_list(client: Any, db: Session, world: dict[str, Any]) -> None:
    now = utcnow()
    site, erin, cora = world["a"], world["erin"], world["cora"]
    other_coordinator = factories.user(db, name="Otto Other", coordinator_of=site)
    supplies = sd.item(db, "Stapler", price_cents=5_00)
    leak = sd.ticket(
        db, erin, site, title="Leaking tap", category="plumbing", now=now - timedelta(days=10)
    )
    cold = sd.ticket(
        db,
        erin,
        site,
        title="Too cold in 2.14",
        category="temperature",
        description="The radiator by the window stays cold all day.",
        now=now - timedelta(hours=2),
    )
    stapler = sd.ticket(
        db,
        erin,
        site,
        kind=TicketKind.REQUEST,
        title="Stapler ×1",
        category="office_supplies",
        lines=[(supplies, 1)],
        now=now - timedelta(days=2),
    )
    for calm in (cold, stapler):  # well within their targets, whatever the time of day
        calm.first_response_due_at = now + timedelta(days=3)
        calm.resolution_due_at = now + timedelta(days=5)
    done = sd.ticket(db, erin, site, title="Light flickers", category="electrical")
    tickets.change_status(db, SYSTEM, done, TicketStatus.CLOSED, by=cora, now=now)
    tickets.assign(db, SYSTEM, cold, by=cora, now=now, assignee=cora)
    tickets.assign(db, SYSTEM, leak, by=cora, now=now, assignee=other_coordinator)
    vendor = sd.vendor(db, "Aqua Plumbing")
    tickets.assign(db, SYSTEM, leak, by=cora, now=now, assignee=other_coordinator, vendor=vendor)
    db.commit()
    client.sign_in("cora@example.com")

    everything_open = set(numbers(page(client)))
    assert everything_open == {leak.number, cold.number, stapler.number}
    assert set(numbers(page(client, "status=all"))) == everything_open | {done.number}
    assert numbers(page(client, "status=closed")) == [done.number]
    assert numbers(page(client, "kind=request")) == [stapler.number]
    assert set(numbers(page(client, "kind=issue"))) == {leak.number, cold.number}
    assert numbers(page(client, "category=temperature")) == [cold.number]
    assert set(numbers(page(client, "age=1"))) == {leak.number, stapler.number}
    assert numbers(page(client, "age=7")) == [leak.number]
    assert numbers(page(client, "assignee=me")) == [cold.number]
    assert numbers(page(client, "assignee=none")) == [stapler.number]
    assert numbers(page(client, f"assignee={other_coordinator.id}")) == [leak.number]
    assert numbers(page(client, f"assignee=v{vendor.id}")) == [leak.number]
    assert numbers(page(client, "q=leaking")) == [leak.number]
    assert numbers(page(client, "q=RADIATOR")) == [cold.number]  # the reporter's own words
    assert numbers(page(client, f"q={stapler.number}")) == [stapler.number]
    assert numbers(page(client, "sla=overdue")) == [leak.number]
    # Combined filters narrow further; nonsense values are ignored rather than failing.
    assert numbers(page(client, "kind=issue&assignee=me")) == [cold.number]
    assert (
        set(numbers(page(client, "kind=bogus&sla=%3Cscript%3E&age=-3&page=zz"))) == everything_open
    )
    # Sorting: oldest first puts the ten-day-old leak on top, newest first the cold office.
    assert numbers(page(client, "sort=oldest"))[0] == leak.number
    assert numbers(page(client, "sort=newest"))[0] == cold.number


def test_sla_badges_say_how_late_in_words(client: Any, db: Session, world: dict[str, Any]) -> None:
    now = utcnow()
    late = sd.ticket(db, world["erin"], world["a"], title="Late one", now=now - timedelta(days=9))
    soon = sd.ticket(db, world["erin"], world["a"], title="Soon one")
    soon.first_response_due_at = now + timedelta(hours=2, minutes=10)
    soon.resolution_due_at = now + timedelta(days=3)
    calm = sd.ticket(db, world["erin"], world["a"], title="Calm one")
    calm.first_response_due_at = now + timedelta(days=2, minutes=30)
    calm.resolution_due_at = now + timedelta(days=5)
    db.commit()
    client.sign_in("cora@example.com")
    html = page(client)
    rows = {
        n: row
        for n, row in zip(
            numbers(html),
            re.findall(r"<tr class=\"inbox-row[^\"]*\">.*?</tr>", html, re.S),
            strict=True,
        )
    }
    assert "inbox-row-overdue" in rows[late.number] and "overdue by" in rows[late.number]
    assert re.search(r"overdue by \d+ d", rows[late.number])
    assert "inbox-row-soon" in rows[soon.number] and "due in 2 h" in rows[soon.number]
    assert "inbox-row-" not in rows[calm.number].split(">")[0].replace("inbox-row ", "")
    assert "due in 2 d" in rows[calm.number]
    # The default sort for open tickets is "SLA due soonest": late, soon, calm.
    assert numbers(html) == [late.number, soon.number, calm.number]
    # The overdue view lists only the late one; its tab says how many.
    assert numbers(page(client, "sla=overdue")) == [late.number]
    assert re.search(r"Overdue\s*<span class=\"count-pill\">1</span>", html)


# ---------------------------------------------------------------------------------------------
# Room approvals in the same list


def test_room_approvals_are_merged_and_can_be_approved(
    client: Any, db: Session, world: dict[str, Any]
) -> None:
    now = utcnow()
    issue = sd.ticket(db, world["erin"], world["a"], title="Wobbly chair")
    issue.first_response_due_at = now + timedelta(hours=10)
    issue.resolution_due_at = now + timedelta(days=2)
    booking = pending_booking(db, world, hours_ahead=3)  # must be decided before it starts
    elsewhere = pending_booking(
        db, world, room=factories.room(db, factories.floor(db, world["b"]), needs_approval=True)
    )
    db.commit()
    client.sign_in("cora@example.com")
    html = page(client)
    number = f"BKG-{booking.id:05d}"
    assert numbers(html) == [number, issue.number]  # due in 3 h sorts before due in 10 h
    assert "Room approval" in html and "Needs approval" in html
    assert f"BKG-{elsewhere.id:05d}" not in html
    assert numbers(page(client, "kind=room")) == [number]
    assert numbers(page(client, "kind=issue")) == [issue.number]
    assert numbers(page(client, "assignee=me")) == []

    response = client.submit(
        "/inbox/bulk",
        {
            "action": "approve",
            "selected": [f"b:{booking.id}:{booking.version}", f"t:{issue.id}:{issue.version}"],
        },
        htmx=True,
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "1 approved, 1 skipped" in body
    assert f"{issue.number}</strong> is a facility issue: nothing to approve" in body
    db.expire_all()
    assert db.get(Booking, booking.id).status == BookingStatus.CONFIRMED
    assert number not in numbers(body)


def test_pages_hold_every_item_once_in_order(db: Session, world: dict[str, Any]) -> None:
    """120 tickets and 7 approvals over three pages: each exactly once, in the sort order."""
    now = utcnow()
    made = []
    for n in range(120):
        t = sd.ticket(
            db, world["erin"], world["a"], title=f"Issue {n}", now=now - timedelta(minutes=n * 7)
        )
        made.append(t)
    room = factories.room(db, factories.floor(db, world["a"]), needs_approval=True)
    for n in range(7):
        pending_booking(db, world, hours_ahead=2 + n * 40, room=room, title=f"Booking {n}")
    db.flush()
    for sort in ("due", "newest", "oldest", "priority"):
        seen = []
        for number in (1, 2, 3):
            result = inbox.inbox_page(
                db, world["cora"], inbox.InboxFilter(sort=sort, page=number), now
            )
            seen += [row.number for row in result.rows]
            assert result.has_next == (number < 3)
        assert len(seen) == 127 and len(set(seen)) == 127, sort
        full = inbox.inbox_page(db, world["cora"], inbox.InboxFilter(sort=sort), now)
        assert full.total == 127
        assert seen[:50] == [row.number for row in full.rows]


# ---------------------------------------------------------------------------------------------
# Saved views


def test_saving_switching_and_deleting_views(
    client: Any, db: Session, world: dict[str, Any]
) -> None:
    plumbing = sd.ticket(db, world["erin"], world["a"], title="Leak", category="plumbing")
    sd.ticket(db, world["erin"], world["a"], title="Cold", category="temperature")
    db.commit()
    client.sign_in("cora@example.com")
    response = client.submit(
        "/inbox/views", {"name": "Plumbing", "back": "category=plumbing&page=3"}, htmx=True
    )
    assert response.status_code == 200
    saved = db.scalar(select(SavedView).where(SavedView.user_id == world["cora"].id))
    assert saved.name == "Plumbing" and saved.query == "category=plumbing"
    html = page(client)
    assert 'href="/inbox/?category=plumbing"' in html and ">Plumbing</a>" in html
    assert numbers(page(client, saved.query)) == [plumbing.number]
    # The tab of the view being looked at is marked current.
    assert re.search(
        r'href="/inbox/\?category=plumbing" aria-current="page"', page(client, saved.query)
    )
    # Same name again: the view is updated, not duplicated.
    client.submit("/inbox/views", {"name": "plumbing", "back": "category=plumbing&sla=overdue"})
    db.expire_all()
    views = db.scalars(select(SavedView).where(SavedView.user_id == world["cora"].id)).all()
    assert len(views) == 1 and views[0].query == "category=plumbing&sla=overdue"
    # No name, or a built-in's name: 422 with the reason beside the field.
    response = client.submit("/inbox/views", {"name": "  ", "back": ""}, htmx=True)
    assert response.status_code == 422 and "Give the view a name." in response.get_data(
        as_text=True
    )
    response = client.submit("/inbox/views", {"name": "Overdue", "back": "sla=overdue"}, htmx=True)
    assert response.status_code == 422 and "built-in view" in response.get_data(as_text=True)
    # Someone else cannot delete it; its owner can.
    client.post("/sign-out", data={"csrf_token": client.csrf_token()})
    other = factories.user(db, email="carl@example.com", coordinator_of=world["a"])
    db.commit()
    client.sign_in(other.email)
    assert client.submit(f"/inbox/views/{views[0].id}/delete").status_code == 404
    client.post("/sign-out", data={"csrf_token": client.csrf_token()})
    client.sign_in("cora@example.com")
    assert client.submit(f"/inbox/views/{views[0].id}/delete").status_code == 303
    assert db.scalar(select(SavedView).where(SavedView.id == views[0].id)) is None


def test_built_in_views(client: Any, db: Session, world: dict[str, Any]) -> None:
    client.sign_in("cora@example.com")
    html = page(client)
    for label in ("All open", "My queue", "Unassigned", "Overdue", "Room approvals"):
        assert label in html
    assert 'href="/inbox/" aria-current="page"' in html
    assert 'href="/inbox/?assignee=me" aria-current="page"' in page(client, "assignee=me")


def view_tab_count(html: str, label: str) -> int:
    match = re.search(re.escape(label) + r'\s*<span class="count-pill">(\d+)</span>', html)
    assert match, label
    return int(match.group(1))


def listed_total(html: str) -> int:
    match = re.search(r'<p class="inbox-count"[^>]*>\s*<strong>([\d,]+)</strong>', html)
    assert match
    return int(match.group(1).replace(",", ""))


def test_each_view_tab_counts_what_its_list_shows(
    client: Any, db: Session, world: dict[str, Any]
) -> None:
    """ "All open 3" above a list of 5 items confused coordinators: room approvals were listed
    but not counted. Every tab now counts exactly the items its list holds."""
    now = utcnow()
    late = sd.ticket(db, world["erin"], world["a"], title="Late one", now=now - timedelta(days=9))
    mine = sd.ticket(db, world["erin"], world["a"], title="Mine")
    mine.assignee_id = world["cora"].id
    sd.ticket(db, world["erin"], world["a"], title="Calm one")
    pending_booking(db, world, hours_ahead=30)
    started = pending_booking(db, world, hours_ahead=-0.5)  # under way, still undecided: overdue
    db.commit()
    client.sign_in("cora@example.com")
    html = page(client)
    expected = {
        "All open": 5,
        "My queue": 1,
        "Unassigned": 4,
        "Overdue": 2,
        "Room approvals": 2,
    }
    for label, builtin in inbox.BUILT_IN_VIEWS:
        assert view_tab_count(html, label) == expected[label], label
        assert listed_total(page(client, builtin.query_string())) == expected[label], label
    assert numbers(page(client, "sla=overdue")) == [late.number, f"BKG-{started.id:05d}"]
    # The toolbar says what the items are when tickets and approvals mix.
    assert "(3 tickets + 2 room approvals)" in html
    assert "room approvals)" not in page(client, "kind=room")


def test_the_header_and_filters_read_like_a_product(
    client: Any, db: Session, world: dict[str, Any]
) -> None:
    sd.ticket(db, world["erin"], world["a"], title="Temperature · Room Spree is far too warm")
    db.commit()
    client.sign_in("cora@example.com")
    html = page(client)
    # The page uses the normal container width, like every other page.
    assert '<main id="main" class="container"' in html
    # The sort is said in words, with "SLA" in capitals.
    assert "sorted by SLA: due soonest first" in html
    assert "sorted by Newest first" in page(client, "sort=newest")
    assert "Default (SLA: due soonest first)" in html
    # Settings are reached through the service desk's tab bar, not repeated in the header.
    header = html.split('<header class="page-header inbox-header">', 1)[1].split("</header>", 1)[0]
    assert "Vendors" not in header and "SLA policies" not in header
    assert html.count('href="/admin/service-desk/vendors"') == 0
    # The filters fold behind "Filters" (on phones) and say how many are active; the sort is
    # not a filter.
    assert re.search(r"data-inbox-filter-count hidden>", html)
    narrowed = page(client, "kind=issue&sla=overdue&sort=newest")
    assert re.search(
        r"data-inbox-filter-count ><span data-inbox-filter-number>2</span>"
        r'<span class="visually-hidden"> active</span>',
        narrowed,
    )


# ---------------------------------------------------------------------------------------------
# Bulk actions


def test_bulk_approve_reports_a_request_cancelled_a_moment_ago(
    client: Any, db: Session, world: dict[str, Any]
) -> None:
    site, erin = world["a"], world["erin"]
    chair = sd.item(db, "Chair", category="furniture", price_cents=120_00)
    sd.stock(db, chair, site, on_hand=10)
    first = sd.ticket(
        db,
        erin,
        site,
        kind=TicketKind.REQUEST,
        title="Chair ×2",
        category="furniture",
        lines=[(chair, 2)],
    )
    second = sd.ticket(
        db,
        erin,
        site,
        kind=TicketKind.REQUEST,
        title="Chair ×1",
        category="furniture",
        lines=[(chair, 1)],
    )
    gone = sd.ticket(
        db,
        erin,
        site,
        kind=TicketKind.REQUEST,
        title="Chair ×3",
        category="furniture",
        lines=[(chair, 3)],
    )
    db.commit()
    selection = [f"t:{t.id}:{t.version}" for t in (first, second, gone)]
    # Erin withdraws one while the coordinator's page is open.
    tickets.cancel(db, SYSTEM, gone, erin, now=utcnow())
    db.commit()
    client.sign_in("cora@example.com")
    response = client.submit("/inbox/bulk", {"action": "approve", "selected": selection}, htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "2 approved, 1 skipped" in body
    assert f"{gone.number}</strong> was cancelled a moment ago" in body
    db.expire_all()
    for t in (first, second):
        assert all(line.status != LineStatus.PENDING for line in db.get(Ticket, t.id).lines)
    assert all(line.status != LineStatus.APPROVED for line in db.get(Ticket, gone.id).lines)


def test_bulk_assign_and_close_check_each_row(
    client: Any, db: Session, world: dict[str, Any]
) -> None:
    site, erin, cora = world["a"], world["erin"], world["cora"]
    issue = sd.ticket(db, erin, site, title="Leak")
    stale = sd.ticket(db, erin, site, title="Draft")
    chair = sd.item(db, "Desk chair", category="furniture")
    request = sd.ticket(
        db,
        erin,
        site,
        kind=TicketKind.REQUEST,
        title="Desk chair ×1",
        category="furniture",
        lines=[(chair, 1)],
    )
    vendor = sd.vendor(db, "FixIt GmbH")
    db.commit()
    stale_key = f"t:{stale.id}:{stale.version}"
    tickets.add_comment(
        db, SYSTEM, stale, cora, "Looking into it", now=utcnow()
    )  # bumps the version
    db.commit()
    client.sign_in("cora@example.com")
    response = client.submit(
        "/inbox/bulk",
        {
            "action": "assign",
            "assign_to": f"v{vendor.id}",
            "selected": [f"t:{issue.id}:{issue.version}", stale_key],
        },
        htmx=True,
    )
    body = response.get_data(as_text=True)
    assert "1 assigned, 1 skipped" in body
    assert f"{stale.number}</strong> was changed by someone else" in body
    db.expire_all()
    assert db.get(Ticket, issue.id).vendor_id == vendor.id
    assert db.get(Ticket, stale.id).vendor_id is None

    issue = db.get(Ticket, issue.id)
    response = client.submit(
        "/inbox/bulk",
        {
            "action": "close",
            "selected": [f"t:{issue.id}:{issue.version}", f"t:{request.id}:{request.version}"],
        },
        htmx=True,
    )
    body = response.get_data(as_text=True)
    assert "1 closed, 1 skipped" in body and "cannot be closed yet" in body
    db.expire_all()
    assert db.get(Ticket, issue.id).status == TicketStatus.CLOSED
    assert db.get(Ticket, request.id).status == TicketStatus.SUBMITTED
    # Nothing selected, or no one to assign to: a clear message, not an error page.
    response = client.submit("/inbox/bulk", {"action": "close"}, htmx=True)
    assert response.status_code == 422 and "Select at least one row" in response.get_data(
        as_text=True
    )
    response = client.submit(
        "/inbox/bulk", {"action": "assign", "selected": [f"t:{request.id}:1"]}, htmx=True
    )
    assert response.status_code == 422 and "Choose a person or a vendor" in response.get_data(
        as_text=True
    )
    # Without htmx: a redirect back to the same view with the summary as a message.
    response = client.submit(
        "/inbox/bulk", {"action": "close", "selected": ["t:999999:1"], "back": "kind=issue"}
    )
    assert response.status_code == 303 and response.headers["Location"].endswith(
        "/inbox/?kind=issue"
    )
    assert "is no longer in your inbox" in client.get("/inbox/?kind=issue").get_data(as_text=True)


# ---------------------------------------------------------------------------------------------
# The page itself


def test_filters_answer_a_fragment_and_the_url_is_the_view(
    client: Any, db: Session, world: dict[str, Any]
) -> None:
    sd.ticket(db, world["erin"], world["a"], title="<script>alert(1)</script>")
    db.commit()
    client.sign_in("cora@example.com")
    full = page(client, "kind=issue")
    assert "<html" in full and 'hx-push-url="true"' in full
    assert 'option value="issue" selected' in full
    assert "<script>alert(1)</script>" not in full and "&lt;script&gt;" in full
    fragment = page(client, "kind=issue", **{"HX-Request": "true"})
    assert "<html" not in fragment and 'id="inbox-queue"' in fragment
    boosted = page(client, "kind=issue", **{"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted


def test_return_task_page_lists_the_assets(client: Any, db: Session, world: dict[str, Any]) -> None:
    task = sd.ticket(
        db,
        world["erin"],
        world["a"],
        kind=TicketKind.RETURN,
        title="Return: Erin Employee",
        category="offboarding",
        description="- Laptop LT-0042 (SN 123)\n- Monitor MN-7\n\n",
    )
    db.commit()
    client.sign_in("cora@example.com")
    html = client.get(f"/inbox/tickets/{task.id}").get_data(as_text=True)
    assert "Laptop LT-0042 (SN 123)" in html and "Monitor MN-7" in html
    assert f'id="ticket-{task.id}"' in html
    issue = sd.ticket(db, world["erin"], world["a"])
    db.commit()
    assert client.get(f"/inbox/tickets/{issue.id}").status_code == 404  # not a return task
    assert client.get("/inbox/tickets/999999").status_code == 404


# ---------------------------------------------------------------------------------------------
# A fixed number of SQL statements


def test_first_page_costs_the_same_number_of_queries_whatever_the_data(
    client: Any, db: Session, world: dict[str, Any], connection: Any
) -> None:
    site, erin, cora = world["a"], world["erin"], world["cora"]
    vendor = sd.vendor(db, "Counted Vendor")
    floor = factories.floor(db, site)
    room = factories.room(db, floor, needs_approval=True)
    desk = factories.desk(db, floor)

    def add(count: int) -> None:
        for n in range(count):
            t = sd.ticket(
                db,
                erin,
                site,
                title=f"Ticket {n}",
                category=("plumbing", "cleaning")[n % 2],
                floor_id=floor.id,
                resource_id=(room.id, desk.id)[n % 2],
            )
            tickets.assign(db, SYSTEM, t, by=cora, now=utcnow(), assignee=cora, vendor=vendor)
        db.commit()

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    def measure(query: str) -> int:
        client.get(f"/inbox/?{query}")  # warm: sign-in state and templates
        statements.clear()
        event.listen(connection, "before_cursor_execute", count)
        try:
            assert client.get(f"/inbox/?{query}").status_code == 200
        finally:
            event.remove(connection, "before_cursor_execute", count)
        return len(statements)

    client.sign_in("cora@example.com")
    add(5)
    pending_booking(db, world, room=room)
    db.commit()
    small = {
        q: measure(q)
        for q in ("", "kind=issue", "assignee=me&sort=priority", "q=ticket", "sla=on_track")
    }
    add(55)
    for n in range(3):
        pending_booking(db, world, hours_ahead=50 + n * 24, room=room)
    db.commit()
    large = {q: measure(q) for q in small}
    assert large == small
    # Whatever the filter: the same few statements (a filter that rules out room approvals,
    # e.g. kind=issue, skips their query and so costs one fewer).
    assert max(small.values()) <= 13 and min(small.values()) >= max(small.values()) - 1, small

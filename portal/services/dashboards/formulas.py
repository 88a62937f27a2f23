"""The published formula of every KPI: the one text behind the info buttons and in docs/kpis.md."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Formula:
    id: str
    dashboard: str  # the dashboard's title, a heading in docs/kpis.md
    name: str
    text: str  # one paragraph of Markdown-free prose: shown as is on the page and in the docs


DEFINITIONS = """\
All figures are per local calendar day of each site (a day in Berlin is midnight to midnight in
Europe/Berlin, 23 or 25 hours long on the days the clocks change). A period is a range of such days,
first and last day included; its comparison is the period of the same number of days just before
it. A booking belongs to the local day its start falls on. Cancelled and declined bookings are never
counted as booked. "All my sites" adds up the sites' figures; percentages are then computed from the
added-up counts, not averaged."""

FORMULAS: tuple[Formula, ...] = (
    # Desks
    Formula(
        "desk_utilisation",
        "Desks",
        "Desk utilisation",
        "Checked-in desk-days ÷ available desk-days. A checked-in desk-day is a desk with at least "
        "one checked-in booking that day (checked in, or checked in and ended early). Available "
        "desk-days are, for each open day of the period, the desks that are in use (not taken out "
        "of service) and not covered by a blackout for that desk or the whole site. Open days are "
        "the site's opening weekdays; a day on which a site-wide blackout overlaps the opening "
        "hours is not an open day. Desks taken out of service are left out of every day of the "
        "period, because Foyer does not keep the date they went out of service.",
    ),
    Formula(
        "desk_booked",
        "Desks",
        "Booked desk-days",
        "Desks with at least one booking that day that was not cancelled or declined (waiting for "
        "approval, confirmed, checked in, ended early, or released as a no-show), added up over "
        "the days of the period. A desk booked in the morning and again in the afternoon is one "
        "desk-day.",
    ),
    Formula(
        "desk_checked_in",
        "Desks",
        "Checked-in desk-days",
        "Desks with at least one booking that day that was checked in (from My day, the QR code "
        "on the desk, the kiosk or a badge), added up over the days of the period.",
    ),
    Formula(
        "desk_no_shows",
        "Desks",
        "No-shows",
        "Desk bookings released because nobody checked in before the check-in window closed "
        "(status released). No-show rate = no-shows ÷ booked desk bookings.",
    ),
    Formula(
        "desk_peak",
        "Desks",
        "Peak day",
        "The open day of the period with the most checked-in desk-days, with its utilisation "
        "(checked-in desk-days that day ÷ available desk-days that day).",
    ),
    Formula(
        "desk_assigned_unused",
        "Desks",
        "Assigned desks unused",
        "Desks assigned to one person (in use) with no checked-in booking in the N days up to the "
        "last day of the period (N is chosen on the page: 14, 30 or 60), with the day of their "
        "last check-in if there was one in the last year.",
    ),
    # Rooms
    Formula(
        "room_occupancy",
        "Rooms",
        "Room occupancy",
        "Booked hours ÷ available hours. Booked hours are the planned length of room bookings "
        "that were not cancelled or declined (including ghost meetings, whose room stood empty, "
        "and bookings that ended early, counted until they ended). Available hours are, for each "
        "open day, each room in use (not taken out of service, not covered by a blackout for the "
        "room or the site) times the site's opening hours that day.",
    ),
    Formula(
        "room_booked_hours",
        "Rooms",
        "Booked hours",
        "The sum of end minus start of every room booking that was not cancelled or declined, in "
        "hours.",
    ),
    Formula(
        "room_ghosts",
        "Rooms",
        "Ghost meetings",
        "Room bookings released because nobody checked in before the check-in window closed "
        "(status released): the room was held and stood empty. Ghost rate = ghost meetings ÷ "
        "booked room bookings.",
    ),
    Formula(
        "room_released",
        "Rooms",
        "Bookings released early",
        "Room bookings given back by people: cancelled (before or after the start), or checked in "
        "and ended early. Ghost meetings released by Foyer are counted separately.",
    ),
    Formula(
        "room_capacity_fit",
        "Rooms",
        "Capacity fit",
        "Booked hours by the size of the room booked (2-4, 5-8, 9-12, 13 and more seats). Foyer "
        "does not record how many people attend a booking, so it cannot compare attendees with "
        "seats; this shows where the booked hours go by room size instead.",
    ),
    Formula(
        "room_heatmap",
        "Rooms",
        "Busy hours",
        "For each weekday and local hour of the opening hours: booked room minutes in that hour "
        "(a booking from 9:30 to 11:00 adds 30 minutes to 9:00 and 60 to 10:00) ÷ (rooms in use × "
        "60 minutes × the number of those weekdays that were open days in the period).",
    ),
    Formula(
        "room_busiest",
        "Rooms",
        "Busiest rooms",
        "The ten rooms with the most booked hours in the period, with their occupancy (booked "
        "hours ÷ the room's available hours).",
    ),
)

BY_ID = {formula.id: formula for formula in FORMULAS}


def formula(formula_id: str) -> Formula:
    return BY_ID[formula_id]


def kpis_markdown() -> str:
    """docs/kpis.md, generated from FORMULAS (tests/test_dashboards.py keeps the file equal)."""
    lines = [
        "# Dashboard KPIs",
        "",
        "<!-- Generated from portal/services/dashboards/formulas.py: edit there, then run",
        "     .venv/bin/python -m portal.services.dashboards.formulas > docs/kpis.md -->",
        "",
        "The formula behind every number on Foyer's dashboards. The same text is shown behind the",
        "info button (ⓘ) beside each figure.",
        "",
        "## How days and periods are counted",
        "",
        DEFINITIONS.replace("\n", " "),
    ]
    dashboard = ""
    for item in FORMULAS:
        if item.dashboard != dashboard:
            dashboard = item.dashboard
            lines += ["", f"## {dashboard}"]
        lines += ["", f"### {item.name}", "", f'<a id="{item.id}"></a>{item.text}']
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(kpis_markdown(), end="")

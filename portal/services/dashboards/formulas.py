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
    # Spend and stock
    Formula(
        "spend_fulfilled",
        "Spend and stock",
        "Fulfilled spend",
        "The sum of quantity × unit price (the price recorded when the item was requested) of "
        "every request line handed over (fulfilled) in the period's calendar months, by the local "
        "month of its hand-over at the site. Spend is counted in whole calendar months, because "
        "budgets are monthly: a period touching any day of a month counts that whole month. The "
        "comparison is the same number of months just before. Declined, cancelled and not yet "
        "handed-over lines are not spend.",
    ),
    Formula(
        "spend_budget",
        "Spend and stock",
        "Budget and variance",
        "Budget is the sum of the monthly budgets set for the site and catalog category in the "
        "months counted. Variance = budget − fulfilled spend: negative means over budget. A "
        "category is over budget in a month when its spend in that month is more than its budget "
        'for that month; spend in a category with no budget that month is shown as "no budget", '
        "never as over.",
    ),
    Formula(
        "spend_top_items",
        "Spend and stock",
        "Top items",
        "The ten catalog items with the most fulfilled spend in the months counted, with the "
        "quantity handed over.",
    ),
    Formula(
        "stock_value",
        "Spend and stock",
        "Stock value",
        "Items on the shelf now × their current catalog price, summed over the site's stock "
        "levels (reserved items still count: they are on the shelf until handed over). It is a "
        "value today, not for the period, so it has no comparison.",
    ),
    Formula(
        "stock_below_reorder",
        "Spend and stock",
        "Items below reorder point",
        "Stock levels with a reorder point above zero whose available stock (on hand minus "
        "reserved, never below zero) is at or below the reorder point: the same rule as the "
        "inventory page. Counted today.",
    ),
    # Occupancy
    Formula(
        "occupancy_people",
        "Occupancy",
        "People badged in",
        "Distinct badge holders (employees and visitors, by the person the access-control "
        "system reports) with at least one entry (direction in) at the site's doors on a local "
        "day, added up over the days of the period; the average is over the days with any "
        "entry. Only sites whose access-control integration is set up (door events by webhook "
        "or CSV import) are counted; other sites have no door data and are named, not shown as "
        "zero.",
    ),
    Formula(
        "occupancy_peak_hour",
        "Occupancy",
        "Peak hour",
        "Entries (direction in, every badge read counted) by local hour of the day over the "
        "period; the peak hour is the hour with the most entries.",
    ),
    Formula(
        "occupancy_desk_ratio",
        "Occupancy",
        "Badge-ins vs desk check-ins",
        "Per day: people badged in against checked-in desk-days (desks with at least one "
        "checked-in booking that day) at the sites with door data. Desk check-ins per person "
        "badged in = checked-in desk-days ÷ people-days badged in: below 100% means people came "
        "in without checking in at a desk (or sat elsewhere).",
    ),
    # Visitors
    Formula(
        "visitor_visits",
        "Visitors",
        "Visits",
        "Visits that arrived (checked in at the kiosk or by reception, whether checked out since "
        "or not) on a local day of the period, by the visit's day at its site. Pre-registered "
        "visits were invited by a host beforehand; walk-ins registered at the kiosk. Invitations "
        "nobody came for, cancelled invitations and deny-list stops are not visits. Visits whose "
        "personal data the retention job erased still count.",
    ),
    Formula(
        "visitor_length",
        "Visitors",
        "Average visit length",
        "Checked-out time minus checked-in time, averaged over the visits of the period that have "
        "both (visitors still in the building are left out). It is elapsed time, so a visit over "
        "a night the clocks change is an hour shorter or longer on the clock than in reality. "
        "Visits checked out automatically at the site's closing time count until then.",
    ),
    Formula(
        "visitor_pre_registered",
        "Visitors",
        "Pre-registered share",
        "Pre-registered visits ÷ all visits (pre-registered + walk-in) of the period.",
    ),
    Formula(
        "visitor_deny_stops",
        "Visitors",
        "Deny-list stops",
        "Kiosk check-ins stopped because the visitor matched an active deny-list entry (by name or "
        "e-mail, ignoring case, accents and spacing): visits with status denied on a local day of "
        "the period. The visit row records the stop (and which entry matched); the audit trail "
        "holds the same event as visit.denied.",
    ),
    Formula(
        "visitor_departments",
        "Visitors",
        "Visits by host department",
        "Visits of the period by the department of the host they came to see, as the host's "
        "profile says today (people who changed department count under the new one). The "
        "twelve departments with the most visits are shown; the rest are added up.",
    ),
    # Service desk
    Formula(
        "ticket_opened",
        "Service desk",
        "Opened",
        "Requests, facility issues and return tasks created in the period (from local midnight "
        "of its first day to local midnight after its last day, at each ticket's site), by "
        "category and site, whatever happened to them since.",
    ),
    Formula(
        "ticket_closed",
        "Service desk",
        "Closed",
        "Tickets finished in the period: resolved, delivered, declined, closed or cancelled, at "
        "the time they were first finished (resolved, else closed). A ticket reopened and not "
        "finished again is not counted.",
    ),
    Formula(
        "ticket_first_response_sla",
        "Service desk",
        "First-response SLA attainment",
        "Met ÷ (met + missed), over the tickets whose first-response deadline fell in the period. "
        "Met: staff first answered (a comment, a status change or an assignment the requester "
        "sees) at or before the deadline. Missed: the first answer came after the deadline, or "
        "none came and the deadline has passed. A ticket withdrawn unanswered before its "
        "deadline is neither. Deadlines count in the site's business hours and move on while "
        "the ticket waits on the requester.",
    ),
    Formula(
        "ticket_resolution_sla",
        "Service desk",
        "Resolution SLA attainment",
        "Met ÷ (met + missed), over the tickets whose resolution deadline fell in the period. "
        "Met: resolved, delivered, declined or closed at or before the deadline. Missed: finished "
        "(cancellations included) after the deadline, or still open with the deadline passed. A "
        "ticket waiting on the requester (its clock paused) and one cancelled before its "
        "deadline are neither.",
    ),
    Formula(
        "ticket_sla_missed",
        "Service desk",
        "Tickets that missed an SLA",
        "Tickets that missed their first-response deadline or their resolution deadline (as "
        "defined above) falling in the period, each ticket counted once.",
    ),
    Formula(
        "ticket_backlog",
        "Service desk",
        "Backlog by age",
        "Tickets open at the end of the period's last day (created before then and not finished "
        "by then), by their age at that moment: under 1 day, 1-3 days, 3-7 days, 1-2 weeks, "
        "2-4 weeks, 4 weeks or more. The comparison is the backlog at the end of the previous "
        "period. A ticket reopened later and finished again counts by its last finish.",
    ),
    Formula(
        "ticket_locations",
        "Service desk",
        "Top problem locations",
        "Facility issues reported in the period by the room or desk given (or the floor alone), "
        "the ten places with the most, with how many of them were still open at the period's end.",
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

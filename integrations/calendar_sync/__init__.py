"""Two-way sync between a Foyer room (or desk pool) and a calendar elsewhere: CalDAV, Microsoft 365
(Graph) or Google Workspace. Each adapter implements `base.RemoteCalendar`; the sync engine knows
only that contract."""

"""Cells for CSV exports that a spreadsheet opens safely."""

from __future__ import annotations

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """A cell a spreadsheet shows as text, never runs: a leading formula character gets a '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text

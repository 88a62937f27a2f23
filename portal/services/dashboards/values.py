"""What a dashboard hands to the page and the downloads: KPI tiles, charts and their tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from portal.services.dashboards.formulas import Formula, formula

Unit = Literal["count", "percent", "hours", "desk-days", "money"]  # money: currency units
ChartKind = Literal["bar", "stacked", "line", "heatmap"]
# How the key-figures download names each unit ("Change" is in points for percentages).
UNIT_NAMES = {
    "count": "count",
    "percent": "percent",
    "hours": "hours",
    "desk-days": "desk-days",
    "money": "currency",
}


@dataclass(frozen=True)
class Kpi:
    """One tile: a value for the period, the same for the previous period, and how it changed."""

    key: str
    label: str
    value: float | None  # None: not defined (e.g. a rate with nothing to divide by)
    previous: float | None
    unit: Unit
    formula_id: str
    higher_is_better: bool = True
    detail: str = ""  # a line under the value, e.g. "of 1,240 available"

    @property
    def formula(self) -> Formula:
        return formula(self.formula_id)

    @property
    def change(self) -> float | None:
        """Percentage points for percentages, otherwise the relative change in percent."""
        if self.value is None or self.previous is None:
            return None
        if self.unit == "percent":
            return self.value - self.previous
        if self.previous == 0:
            return None
        return (self.value - self.previous) / self.previous * 100

    @property
    def trend(self) -> str:
        """ "up", "down" or "flat", and whether that is good: for the arrow and its words."""
        change = self.change
        if change is None or abs(change) < 0.05:
            return "flat"
        return "up" if change > 0 else "down"

    @property
    def good(self) -> bool | None:
        if self.trend == "flat":
            return None
        return (self.trend == "up") == self.higher_is_better


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]
    pattern: int = 0  # 0 solid, 1 hatched, 2 dotted, 3 cross-hatched: never colour alone
    unit: Unit | None = None  # when it differs from the chart's (e.g. a count beside hours)


@dataclass(frozen=True)
class Chart:
    """A chart and the table of its numbers (the same numbers the downloads carry)."""

    key: str
    title: str
    kind: ChartKind
    categories: list[str]  # x axis (bar, stacked, line) or rows (heatmap)
    series: list[Series]  # heatmap: one series per column
    unit: Unit = "count"
    formula_id: str = ""
    note: str = ""  # shown under the chart (what it cannot show, and why)
    category_label: str = ""  # the table's first column heading
    links: list[str | None] = field(default_factory=list)  # per category: a filter link, if any

    @property
    def table(self) -> Table:
        columns = [self.category_label or "", *(s.name for s in self.series)]
        rows = [
            [category, *(s.values[i] for s in self.series)]
            for i, category in enumerate(self.categories)
        ]
        units = ["text", *(s.unit or self.unit for s in self.series)]
        return Table(self.key, self.title, columns, rows, self.unit, self.links, units)

    @property
    def empty(self) -> bool:
        return not any(v for s in self.series for v in s.values)


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    unit: Unit = "count"
    links: list[str | None] = field(default_factory=list)  # per row: the first cell's link
    units: list[str] = field(default_factory=list)  # per column ("text", "count", "percent", ...)
    marks: list[str] = field(default_factory=list)  # per row: a state to flag, e.g. "over"

    def unit_of(self, column: int) -> str:
        if column < len(self.units):
            return self.units[column]
        return "text" if column == 0 else self.unit


@dataclass
class DashboardData:
    kpis: list[Kpi]
    charts: list[Chart]
    tables: list[Table] = field(default_factory=list)  # lists that are not charts
    notice: str = ""  # what the page cannot show and why (e.g. a site without door data)

    def all_tables(self) -> list[Table]:
        """What the downloads carry: the key figures, then every chart's numbers and list."""
        return [self.key_figures(), *(c.table for c in self.charts), *self.tables]

    def key_figures(self) -> Table:
        """The KPI tiles as a table: a figure per row, with its unit named (units differ)."""
        rows = [
            [k.label, UNIT_NAMES[k.unit], k.value, k.previous, _rounded(k.change)]
            for k in self.kpis
        ]
        columns = ["Figure", "Unit", "This period", "Previous period", "Change"]
        units = ["text", "text", "number", "number", "number"]
        return Table("key_figures", "Key figures", columns, rows, "count", [], units)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def ratio(numerator: float, denominator: float) -> float | None:
    """A percentage, or None when there is nothing to divide by."""
    return round(numerator / denominator * 100, 1) if denominator else None

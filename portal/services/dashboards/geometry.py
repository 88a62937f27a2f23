"""Chart geometry for server-rendered SVG: scales, ticks, bar rectangles, line points, heatmap cells.

Pure arithmetic on a chart's numbers; the templates in portal/templates/dashboards/_chart_*.html
only draw what this returns (no inline styles: the CSP forbids them, SVG attributes are fine)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from portal.services.dashboards.values import Chart

WIDTH = 720
HEIGHT = 260
LEFT = 52
RIGHT = 12
TOP = 14
BOTTOM = 46
# Phones get their own drawing, 360 units wide, so it is drawn near 1:1 on a 390 px screen and a
# 12-unit label is a 12 px label (a 720-unit chart shrunk to half made every label 6 px).
NARROW_WIDTH = 360
NARROW_HEIGHT = 240
NARROW_LEFT = 44
HORIZONTAL_MAX = 12  # up to this many categories, a phone shows horizontal bars, labels in full
CHAR_WIDTH = 6.6  # average advance of a 12-unit label character (system sans-serif)


@dataclass(frozen=True)
class Tick:
    value: float
    y: float
    label: str


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    series: int
    pattern: int
    value: float
    title: str  # the hover text and the accessible name of the shape


@dataclass(frozen=True)
class XLabel:
    x: float
    text: str
    y: float = 0.0  # horizontal bars: the line the label sits on


@dataclass(frozen=True)
class Line:
    points: str  # "x,y x,y ..." for <polyline>
    dots: list[tuple[float, float, str]]
    series: int
    pattern: int


@dataclass(frozen=True)
class Cell:
    x: float
    y: float
    width: float
    height: float
    level: int  # 0 (none) .. 5 (highest): a shade and, for print, a pattern density
    label: str


@dataclass(frozen=True)
class Plot:
    width: int
    height: int
    left: int
    top: int
    plot_width: float
    plot_height: float
    ticks: list[Tick]
    x_labels: list[XLabel]
    rects: list[Rect]
    lines: list[Line]
    cells: list[Cell]
    row_labels: list[tuple[float, str]]
    horizontal: bool = False  # bars grow to the right, each under its full label
    narrow: bool = False


def nice_ceiling(value: float) -> float:
    """The next 'round' number at or above value: 1, 2, 2.5, 5 or 10 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-9:
            return step * power
    return 10 * power


def ticks_for(maximum: float, count: int = 4) -> list[float]:
    """Evenly spaced round ticks from 0 that cover maximum."""
    top = nice_ceiling(maximum if maximum > 0 else 1)
    step = nice_ceiling(top / count)
    ticks, value = [0.0], 0.0
    while value < maximum - 1e-9 or len(ticks) < 2:
        value += step
        ticks.append(round(value, 6))
    return ticks


def format_number(value: float, unit: str = "count") -> str:
    if unit == "percent":
        return f"{value:.0f}%" if value == int(value) else f"{value:.1f}%"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"


def fit(text: str, characters: int) -> str:
    """A label cut to the room it has, with an ellipsis (the full text is in the table)."""
    return text if len(text) <= characters else text[: characters - 1].rstrip() + "…"


def _label_every(labels: list[str], band: float) -> int:
    """Label every n-th category so that neighbouring labels never touch."""
    longest = max((len(label) for label in labels), default=1)
    return max(1, math.ceil((longest * CHAR_WIDTH + 10) / max(band, 1)))


def layout(chart: Chart, narrow: bool = False) -> Plot:
    """The wide drawing (720 units), or with `narrow` the phone drawing (360 units)."""
    if chart.kind == "heatmap":
        return _heatmap_narrow(chart) if narrow else _heatmap(chart)
    if narrow and chart.kind in ("bar", "stacked") and len(chart.categories) <= HORIZONTAL_MAX:
        return _horizontal(chart)
    width, height = (NARROW_WIDTH, NARROW_HEIGHT) if narrow else (WIDTH, HEIGHT)
    left = NARROW_LEFT if narrow else LEFT
    plot_w = width - left - RIGHT
    plot_h = height - TOP - BOTTOM
    n = max(len(chart.categories), 1)
    if chart.kind == "stacked":
        totals = [sum(s.values[i] or 0 for s in chart.series) for i in range(len(chart.categories))]
        maximum = max(totals, default=0)
    else:
        maximum = max((v or 0 for s in chart.series for v in s.values), default=0)
    if chart.unit == "percent":
        maximum = max(maximum, 100 if maximum > 60 else maximum)
    values = ticks_for(maximum)
    top_value = values[-1] or 1

    def y_of(value: float) -> float:
        return round(TOP + plot_h - value / top_value * plot_h, 1)

    ticks = [Tick(v, y_of(v), format_number(v, chart.unit)) for v in values]
    band = plot_w / n
    # Day labels ("Mon 3 Nov") are short; long ones (zones) are cut to fit one band group,
    # then spaced so that neighbours never overlap (the table has every label in full).
    labels = [fit(label, 16) for label in chart.categories]
    every = _label_every(labels, band)
    x_labels = [
        XLabel(round(left + band * (i + 0.5), 1), label)
        for i, label in enumerate(labels)
        if i % every == 0
    ]
    rects: list[Rect] = []
    lines: list[Line] = []
    if chart.kind == "line":
        for s_index, series in enumerate(chart.series):
            points = [
                (
                    round(left + band * (i + 0.5), 1),
                    y_of(v),
                    f"{chart.categories[i]}: {format_number(v, chart.unit)}",
                )
                for i, v in enumerate(series.values)
                if v is not None
            ]
            lines.append(
                Line(" ".join(f"{x},{y}" for x, y, _ in points), points, s_index, series.pattern)
            )
    elif chart.kind == "stacked":
        bar_w = band * 0.7
        for i, category in enumerate(chart.categories):
            base = 0.0
            for s_index, series in enumerate(chart.series):
                value = series.values[i] or 0
                if value:
                    top, bottom = y_of(base + value), y_of(base)
                    rects.append(
                        Rect(
                            round(left + band * i + (band - bar_w) / 2, 1),
                            top,
                            round(bar_w, 1),
                            round(bottom - top, 1),
                            s_index,
                            series.pattern,
                            value,
                            f"{category} · {series.name}: {format_number(value, chart.unit)}",
                        )
                    )
                base += value
    else:
        group = min(band * 0.78, (40.0 if narrow else 64.0) * len(chart.series))
        bar_w = group / max(len(chart.series), 1)
        for i, category in enumerate(chart.categories):
            for s_index, series in enumerate(chart.series):
                value = series.values[i] or 0
                top = y_of(value)
                rects.append(
                    Rect(
                        round(left + band * i + (band - group) / 2 + bar_w * s_index, 1),
                        top,
                        round(max(bar_w - 1, 1), 1),
                        round(TOP + plot_h - top, 1),
                        s_index,
                        series.pattern,
                        value,
                        f"{category} · {series.name}: {format_number(value, chart.unit)}",
                    )
                )
    return Plot(
        width,
        height,
        left,
        TOP,
        plot_w,
        plot_h,
        ticks,
        x_labels,
        rects,
        lines,
        [],
        [],
        False,
        narrow,
    )


def heat_level(value: float | None, maximum: float) -> int:
    """0 for nothing, else 1-5 by share of the maximum."""
    if not value or maximum <= 0:
        return 0
    return min(5, max(1, math.ceil(value / maximum * 5)))


def _heatmap(chart: Chart) -> Plot:
    rows = len(chart.categories)
    cols = max(len(chart.series), 1)
    left, top, cell_h = 48, 24, 30
    cell_w = (WIDTH - left - RIGHT) / cols
    height = top + rows * cell_h + 8
    maximum = max((v or 0 for s in chart.series for v in s.values), default=0)
    cells = []
    for c, series in enumerate(chart.series):
        for r, value in enumerate(series.values):
            cells.append(
                Cell(
                    round(left + c * cell_w, 1),
                    top + r * cell_h,
                    round(cell_w - 2, 1),
                    cell_h - 2,
                    heat_level(value, maximum),
                    f"{chart.categories[r]} {series.name}: {format_number(value or 0, chart.unit)}",
                )
            )
    x_labels = [
        XLabel(round(left + (c + 0.5) * cell_w, 1), s.name) for c, s in enumerate(chart.series)
    ]
    row_labels = [
        (top + r * cell_h + cell_h / 2, label) for r, label in enumerate(chart.categories)
    ]
    return Plot(
        WIDTH,
        height,
        left,
        top,
        WIDTH - left - RIGHT,
        rows * cell_h,
        [],
        x_labels,
        [],
        [],
        cells,
        row_labels,
    )


def _horizontal(chart: Chart) -> Plot:
    """Phone drawing of a few categories: one block per category, its full label on a line of
    its own, then a bar per series growing to the right with its value at the end."""
    left, right, label_h, bar_h, gap = 4, 64, 18, 14, 12
    plot_w = NARROW_WIDTH - left - right
    series_count = 1 if chart.kind == "stacked" else max(len(chart.series), 1)
    block = label_h + series_count * (bar_h + 2) + gap
    if chart.kind == "stacked":
        totals = [sum(s.values[i] or 0 for s in chart.series) for i in range(len(chart.categories))]
        maximum = max(totals, default=0)
    else:
        maximum = max((v or 0 for s in chart.series for v in s.values), default=0)
    if chart.unit == "percent":
        maximum = max(maximum, 100 if maximum > 60 else maximum)
    top_value = ticks_for(maximum)[-1] or 1
    rects: list[Rect] = []
    labels: list[XLabel] = []
    for i, category in enumerate(chart.categories):
        y0 = TOP + i * block
        labels.append(XLabel(left, fit(category, int(NARROW_WIDTH / CHAR_WIDTH) - 2), y0 + 12))
        base = 0.0
        for s_index, series in enumerate(chart.series):
            value = series.values[i] or 0
            row = 0 if chart.kind == "stacked" else s_index
            x = left + (base / top_value * plot_w if chart.kind == "stacked" else 0)
            width = value / top_value * plot_w
            rects.append(
                Rect(
                    round(x, 1),
                    y0 + label_h + row * (bar_h + 2),
                    round(max(width, 1.5 if value else 0), 1),
                    bar_h,
                    s_index,
                    series.pattern,
                    value,
                    f"{category} · {series.name}: {format_number(value, chart.unit)}",
                )
            )
            if chart.kind == "stacked":
                base += value
    height = TOP + len(chart.categories) * block + 4
    return Plot(
        NARROW_WIDTH,
        height,
        left,
        TOP,
        plot_w,
        height - TOP,
        [],
        labels,
        rects,
        [],
        [],
        [],
        True,
        True,
    )


def _heatmap_narrow(chart: Chart) -> Plot:
    """Phone drawing of the heatmap, turned a quarter: hours down the side, weekdays across."""
    columns = max(len(chart.categories), 1)
    rows = len(chart.series)
    left, top, cell_h = 52, 24, 28
    cell_w = (NARROW_WIDTH - left - 4) / columns
    maximum = max((v or 0 for s in chart.series for v in s.values), default=0)
    cells = [
        Cell(
            round(left + c * cell_w, 1),
            top + r * cell_h,
            round(cell_w - 2, 1),
            cell_h - 2,
            heat_level(value, maximum),
            f"{chart.categories[c]} {series.name}: {format_number(value or 0, chart.unit)}",
        )
        for r, series in enumerate(chart.series)
        for c, value in enumerate(series.values)
    ]
    x_labels = [
        XLabel(round(left + (c + 0.5) * cell_w, 1), label)
        for c, label in enumerate(chart.categories)
    ]
    row_labels = [(top + r * cell_h + cell_h / 2, s.name) for r, s in enumerate(chart.series)]
    return Plot(
        NARROW_WIDTH,
        top + rows * cell_h + 8,
        left,
        top,
        NARROW_WIDTH - left - 4,
        rows * cell_h,
        [],
        x_labels,
        [],
        [],
        cells,
        row_labels,
        False,
        True,
    )

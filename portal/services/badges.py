"""Visitor badge labels: one HTML layout (templates/badges/label.html + label.css) rendered to a PDF
sized exactly to the label stock, for a label printer or a sheet of paper.

The layout never depends on the browser or printer driver: WeasyPrint lays the page out on the
server with the fonts installed on the machine (DejaVu Sans for Latin, Greek, Cyrillic and Arabic;
Noto Sans CJK; Noto Color Emoji), so a tablet can print silently to a network printer. The same HTML
works in a browser for a print-dialog fallback: pass `stylesheet_href` so the page links the CSS
instead of inlining it (the portal's Content-Security-Policy refuses inline styles).

No Flask here. WeasyPrint is imported only when a PDF is asked for, so the portal starts (and the
HTML fallback keeps working) on a machine without Pango; `render_label_pdf` then raises
`LabelUnavailable` with the packages to install."""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import jinja2
import segno

from portal.errors import DomainError

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STYLESHEET = TEMPLATES / "badges" / "label.css"

# Fonts come from fontconfig by family name, never from files or URLs. Arabic is in DejaVu Sans.
FONT_PACKAGES = "fonts-dejavu-core fonts-noto-cjk fonts-noto-color-emoji"
PANGO_PACKAGES = "libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0"


class LabelUnavailable(DomainError):
    """Labels cannot be rendered to PDF on this machine (WeasyPrint or Pango is missing)."""

    status = 503


@dataclass(frozen=True)
class BadgeContent:
    """What a badge says. Everything is plain text (escaped when rendered); `visit_date` is already
    formatted for people, `checkout_code` is the value the QR code carries."""

    visitor_name: str
    company: str
    host_name: str
    site_name: str
    visit_date: str
    checkout_code: str
    kind_label: str = "Visitor"


@dataclass(frozen=True)
class LabelStock:
    """A label or sheet the badge is printed on. Labels are portrait, width x height in the
    direction the printer feeds them, so nothing needs rotating; on a sheet the badge is a card of
    `badge_*_mm` centred at the top, framed by a dashed cut line."""

    key: str
    title: str
    page_width_mm: float
    page_height_mm: float
    badge_width_mm: float
    badge_height_mm: float

    @property
    def is_sheet(self) -> bool:
        return (self.page_width_mm, self.page_height_mm) != (
            self.badge_width_mm,
            self.badge_height_mm,
        )


# A portrait card of 76 x 102 mm (3 x 4 in) slides into the common vertical badge holders.
_CARD = (76.0, 102.0)

LABEL_STOCKS: MappingProxyType[str, LabelStock] = MappingProxyType(
    {
        stock.key: stock
        for stock in (
            LabelStock("62x100", "Brother QL label, 62 × 100 mm", 62.0, 100.0, 62.0, 100.0),
            LabelStock("57x102", "Dymo 30857 badge label, 57 × 102 mm", 57.0, 102.0, 57.0, 102.0),
            LabelStock("a4", "A4 paper (cut out the badge)", 210.0, 297.0, *_CARD),
            LabelStock("letter", "US Letter paper (cut out the badge)", 215.9, 279.4, *_CARD),
        )
    }
)

SCAN_CAPTION = "Scan to check out"
HOST_LABEL = "Host"
CUT_HINT = "Cut along the dashed line and slide the badge into a holder."

# The space left and right of the name (label.css `.who`), to know how wide the name may be.
_SIDE_PADDING_MM = 4.0
_PT_PER_MM = 72 / 25.4

# Name sizes, largest first: (CSS class, font size in pt, most lines at that size). label.css
# defines the classes; a name takes the largest size at which it fits, so a short name is big
# and a long one wraps onto two or three lines in a smaller size. Longer still, it is shortened.
NAME_SIZES: tuple[tuple[str, float, int], ...] = (
    ("name-xl", 26.0, 2),
    ("name-l", 22.0, 2),
    ("name-m", 18.0, 3),
    ("name-s", 15.0, 3),
    ("name-xs", 12.5, 3),
    ("name-xxs", 10.5, 3),
)

# Longest texts shown for the smaller lines; label.css also clamps each to its line count. A name
# is measured only up to _MAX_NAME_CHARS (no label shows more), so a huge one costs no time.
_MAX_NAME_CHARS = 300
_MAX_CHARS = {"company": 70, "host_name": 60, "site_name": 60, "visit_date": 40, "kind_label": 24}

# The QR code must stay scannable at the size it is printed (22 mm): version 10 is 57 modules,
# 0.39 mm each, between four and five dots of a 300 dpi thermal printer.
MAX_QR_VERSION = 10

# Advance widths of DejaVu Sans Bold in em, to estimate how wide a name is set. Only used to pick
# a size class; the CSS clamps the name box too, so an estimate that is off never overflows.
_ADVANCE_EM = dict(
    zip(
        "abcdefghijklmnopqrstuvwxyz",
        (0.67, 0.72, 0.59, 0.72, 0.68, 0.44, 0.72, 0.71, 0.34, 0.34, 0.67, 0.34, 1.04)
        + (0.71, 0.69, 0.72, 0.72, 0.49, 0.60, 0.48, 0.71, 0.65, 0.92, 0.65, 0.65, 0.58),
        strict=True,
    )
)
_ADVANCE_EM |= dict(
    zip(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        (0.77, 0.76, 0.73, 0.83, 0.68, 0.68, 0.82, 0.84, 0.37, 0.37, 0.77, 0.64, 1.00)
        + (0.84, 0.85, 0.73, 0.85, 0.77, 0.72, 0.68, 0.81, 0.77, 1.10, 0.77, 0.72, 0.73),
        strict=True,
    )
)
_ADVANCE_EM |= {" ": 0.35, ".": 0.38, ",": 0.38, "'": 0.31, "’": 0.38, "-": 0.42, "‐": 0.42}
_ADVANCE_EM |= {"(": 0.46, ")": 0.46, "&": 0.87} | dict.fromkeys("0123456789", 0.70)
_DEFAULT_ADVANCE_EM = 0.74  # other scripts (Arabic averages 0.71 in DejaVu Sans Bold)
_WIDE_ADVANCE_EM = 1.0  # CJK ideographs and kana: square
_EMOJI_ADVANCE_EM = 1.25  # Noto Color Emoji is wider than an em
_SAFETY = 0.92  # fill at most 92 % of the line, for kerning and rounding

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s+")

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,  # names are whatever visitors type: `<b>` prints as `<b>`
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


# ---------------------------------------------------------------------------------------------
# Public API


def render_label_html(
    content: BadgeContent, stock: str, *, stylesheet_href: str | None = None
) -> str:
    """The badge as a complete HTML document for `stock` (a key of LABEL_STOCKS). The stylesheet
    is inlined, unless `stylesheet_href` names where a browser can load label_stylesheet()."""
    label_stock = _stock(stock)
    name = _one_line(content.visitor_name[: _MAX_NAME_CHARS * 2])[:_MAX_NAME_CHARS] or "—"
    name, name_class = _fit_name(name, label_stock.badge_width_mm - 2 * _SIDE_PADDING_MM)
    context: dict[str, Any] = {
        "stock": label_stock,
        "name": name,
        "name_class": name_class,
        "company": _clip(content.company, _MAX_CHARS["company"]),
        "host_name": _clip(content.host_name, _MAX_CHARS["host_name"]),
        "site_name": _clip(content.site_name, _MAX_CHARS["site_name"]),
        "visit_date": _clip(content.visit_date, _MAX_CHARS["visit_date"]),
        "kind_label": _clip(content.kind_label, _MAX_CHARS["kind_label"]) or "Visitor",
        "qr_data_uri": _qr_data_uri(content.checkout_code),
        "scan_caption": SCAN_CAPTION,
        "host_label": HOST_LABEL,
        "cut_hint": CUT_HINT,
        "stylesheet_href": stylesheet_href,
        "stylesheet": None if stylesheet_href else label_stylesheet(),
    }
    return _templates.get_template("badges/label.html").render(context)


def render_label_pdf(content: BadgeContent, stock: str) -> bytes:
    """The badge as a one-page PDF exactly the size of `stock`.

    Raises LabelUnavailable where WeasyPrint cannot load (Pango missing), ValueError for an
    unknown stock or a checkout code too long to scan."""
    return pdf_from_html(render_label_html(content, stock))


def label_stylesheet() -> str:
    """label.css, for a browser-print page that serves it at its own address."""
    return _stylesheet_text()


def warm_up() -> None:
    """Render one label and throw it away: the first render loads WeasyPrint, scans fontconfig's
    fonts and opens the CJK and emoji fonts (about a second); later ones take about 0.1 s.
    Call it once at start-up in processes that print; it is harmless where Pango is missing."""
    sample = BadgeContent(
        visitor_name="Ada 王 محمد 👋",
        company="Warm-up",
        host_name="Foyer",
        site_name="Foyer",
        visit_date="Today",
        checkout_code="FOYER-OUT:warm-up",
    )
    with suppress(LabelUnavailable):
        render_label_pdf(sample, "62x100")


# ---------------------------------------------------------------------------------------------
# Fitting the name


def _fit_name(name: str, width_mm: float) -> tuple[str, str]:
    """(the name as shown, its size class). The largest size at which the name wraps onto at
    most that size's number of lines without breaking inside a word; failing that, the largest
    at which it fits at all (a very long word is then broken, as CSS overflow-wrap does); failing
    that, the smallest size with the name shortened to an ellipsis."""
    width_em_at_1pt = width_mm * _PT_PER_MM * _SAFETY
    fits = [
        (css_class, *_wrap(name, width_em_at_1pt / size_pt), max_lines)
        for css_class, size_pt, max_lines in NAME_SIZES
    ]
    for css_class, lines, broke_word, max_lines in fits:
        if lines <= max_lines and not broke_word:
            return name, css_class
    for css_class, lines, _broke_word, max_lines in fits:
        if lines <= max_lines:
            return name, css_class
    css_class, size_pt, max_lines = NAME_SIZES[-1]
    return _shorten(name, width_em_at_1pt / size_pt, max_lines), css_class


def _char_em(char: str) -> float:
    if char in _ADVANCE_EM:
        return _ADVANCE_EM[char]
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0.0  # accents, Arabic vowel marks, joiners and variation selectors add no width
    base = unicodedata.normalize("NFD", char)[0]
    if base in _ADVANCE_EM:
        return _ADVANCE_EM[base]  # é is as wide as e
    if unicodedata.category(char) == "So" and ord(char) >= 0x2190:
        return _EMOJI_ADVANCE_EM
    if _is_wide(char):
        return _WIDE_ADVANCE_EM
    return _DEFAULT_ADVANCE_EM


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _text_em(text: str) -> float:
    return sum(_char_em(char) for char in text)


_AFTER_HYPHEN = re.compile(r"(?<=[-‐])")


def _wrap(text: str, line_em: float) -> tuple[int, bool]:
    """(lines, whether a word had to be broken) when `text` wraps into lines `line_em` wide, at
    spaces and after hyphens as browsers and Pango do. A piece wider than a line is broken
    between characters: normal for Chinese or Japanese, ugly for any other word."""
    lines, used, broke_word = 1, 0.0, False
    for word in text.split(" "):
        for index, piece in enumerate(_AFTER_HYPHEN.split(word)):
            gap = _ADVANCE_EM[" "] if index == 0 and used else 0.0
            width = _text_em(piece)
            if used + gap + width <= line_em:
                used += gap + width
                continue
            if used:
                lines, used = lines + 1, 0.0
            if width > line_em:
                broke_word = broke_word or not any(_is_wide(char) for char in piece)
                spill = math.ceil(width / line_em) - 1
                lines, width = lines + spill, width - spill * line_em
            used = width
    return lines, broke_word


def _shorten(text: str, line_em: float, max_lines: int) -> str:
    """The longest start of `text` that wraps onto `max_lines` lines with an ellipsis after it,
    cut after a word where that keeps most of it."""
    budget, used, shown = line_em * max_lines - _char_em("…"), 0.0, text
    for index, char in enumerate(text):
        used += _char_em(char)
        if used > budget:
            shown = text[:index]
            break
    while shown:
        at_space = shown.rfind(" ")
        candidate = shown[:at_space] if at_space > len(shown) * 0.6 else shown
        candidate = candidate.rstrip(" ,.-–‐") + "…"
        if _wrap(candidate, line_em)[0] <= max_lines:
            return candidate
        shown = shown[:at_space] if at_space > 0 else shown[:-1]
    return "…"


def _one_line(text: str) -> str:
    """Printable text on one line: control characters and line breaks become spaces."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", unicodedata.normalize("NFC", text or ""))).strip()


def _clip(text: str, max_chars: int) -> str:
    text = _one_line(text)
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 1].rstrip(" ,.-–") + "…"


# ---------------------------------------------------------------------------------------------
# Rendering


def _stock(key: str) -> LabelStock:
    try:
        return LABEL_STOCKS[key]
    except KeyError:
        known = ", ".join(LABEL_STOCKS)
        raise ValueError(f"Unknown label stock {key!r}; choose one of {known}.") from None


def _qr_data_uri(checkout_code: str) -> str:
    """The QR code as an SVG data URI: vector, so it is crisp at any printer resolution, and
    inline, so rendering never fetches anything. No quiet zone in the image: the layout keeps
    white space around it (label.css `.qr`)."""
    if not checkout_code:
        raise ValueError("A badge needs a checkout code for its QR code.")
    # make_qr: never a Micro QR code (segno's choice for short data), which phones cannot read.
    qr = segno.make_qr(checkout_code, error="m")
    if int(qr.version) > MAX_QR_VERSION:
        raise ValueError(
            f"The checkout code is too long ({len(checkout_code)} characters) for a QR code "
            "that can be scanned at badge size."
        )
    return qr.svg_data_uri(border=0, dark="#000", omitsize=True)


@cache
def _stylesheet_text() -> str:
    return STYLESHEET.read_text(encoding="utf-8")


@cache
def _weasyprint() -> ModuleType:
    try:
        import weasyprint  # imported on first use: it needs Pango
    except (ImportError, OSError) as exc:
        raise LabelUnavailable(
            "Badge labels cannot be made into PDFs on this server: WeasyPrint could not load "
            f"({exc}). Install the Debian packages {PANGO_PACKAGES} {FONT_PACKAGES}, or print "
            "from the browser instead."
        ) from exc
    return weasyprint


@cache
def _url_fetcher_class() -> type:
    weasyprint = _weasyprint()

    class InlineOnlyFetcher(weasyprint.URLFetcher):  # type: ignore[misc, name-defined]
        """Everything a label shows is inline (data: URIs). Refuse any other address, so text a
        visitor typed can never make the server fetch a URL or read a file."""

        def __init__(self) -> None:
            super().__init__(allowed_protocols=("data",), allow_redirects=False, timeout=1)

    return InlineOnlyFetcher


_render_lock = threading.Lock()


def pdf_from_html(html: str) -> bytes:
    """A PDF of self-contained HTML (badge labels, purchase orders): nothing is fetched."""
    weasyprint = _weasyprint()
    # WeasyPrint does not promise thread safety (Pango, fontconfig and HarfBuzz sit underneath);
    # one label at a time is safe in a threaded server, and a label takes about 0.1 s.
    with _render_lock:
        document = weasyprint.HTML(string=html, url_fetcher=_url_fetcher_class()())
        return document.write_pdf()  # type: ignore[no-any-return]

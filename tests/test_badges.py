"""Visitor badge labels, checked the way a person at the printer would: each stock is a page of
exactly its size, the QR code printed on it scans back to the checkout code (rendered at 300 dpi by
poppler and read by zbar, two programs that know nothing of how the label was made), names in any
script print as real text, and nothing a visitor types can break the layout or reach the network."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from portal.services import badges
from portal.services.badges import (
    LABEL_STOCKS,
    BadgeContent,
    LabelUnavailable,
    render_label_html,
    render_label_pdf,
)
from tests.conftest import missing_service

MM = 72 / 25.4  # PDF points per millimetre
BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def a_badge(**changes: str) -> BadgeContent:
    content = BadgeContent(
        visitor_name="Katharina Oyelaran-Schmidt",
        company="Northwind Logistics GmbH",
        host_name="Jonas Weber",
        site_name="Berlin HQ",
        visit_date="Mon 30 Nov 2026",
        checkout_code=f"FOYER-OUT:{secrets.token_hex(16)}",
    )
    return replace(content, **changes)


def poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        missing_service("poppler-utils", f"{tool} not found (apt-get install poppler-utils)")
    return path  # type: ignore[return-value]


def run(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout


def pdf_of(content: BadgeContent, stock: str, tmp_path: Path) -> Path:
    try:
        pdf = render_label_pdf(content, stock)
    except LabelUnavailable as exc:
        missing_service("WeasyPrint (Pango)", exc.message)
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / f"badge-{stock}.pdf"
    path.write_bytes(pdf)
    return path


def pdf_facts(path: Path) -> dict[str, str]:
    lines = run(poppler("pdfinfo"), str(path)).splitlines()
    return {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in lines)}


def scanned_qr_codes(pdf: Path) -> list[str]:
    """Rasterise the page at 300 dpi, as a label printer would, and read every QR code on it."""
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        missing_service("zbar-tools", "zbarimg not found (apt-get install zbar-tools)")
    png = pdf.with_suffix("")
    run(poppler("pdftoppm"), "-r", "300", "-png", "-singlefile", str(pdf), str(png))
    result = subprocess.run(
        [zbarimg, "--raw", "-q", f"{png}.png"], capture_output=True, text=True, timeout=60
    )
    return result.stdout.splitlines()


def text_of(pdf: Path) -> str:
    """The PDF's text as a reader or a search sees it, with bidi controls and line breaks gone."""
    text = BIDI_CONTROLS.sub("", run(poppler("pdftotext"), str(pdf), "-"))
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# Stocks


@pytest.mark.parametrize("stock", list(LABEL_STOCKS))
def test_each_stock_prints_one_page_of_its_size_whose_qr_code_scans_back(stock, tmp_path):
    content = a_badge()
    pdf = pdf_of(content, stock, tmp_path)

    facts = pdf_facts(pdf)
    assert facts["Pages"] == "1"
    width, height = map(float, re.findall(r"[\d.]+", facts["Page size"])[:2])
    expected = LABEL_STOCKS[stock]
    assert width == pytest.approx(expected.page_width_mm * MM, abs=0.5)
    assert height == pytest.approx(expected.page_height_mm * MM, abs=0.5)

    assert scanned_qr_codes(pdf) == [content.checkout_code]
    assert "Katharina" in text_of(pdf)


def test_the_stocks_have_titles_for_the_admin_and_known_sizes():
    assert {key: (s.page_width_mm, s.page_height_mm) for key, s in LABEL_STOCKS.items()} == {
        "62x100": (62.0, 100.0),
        "57x102": (57.0, 102.0),
        "a4": (210.0, 297.0),
        "letter": (215.9, 279.4),
    }
    assert "Brother" in LABEL_STOCKS["62x100"].title
    assert "Dymo 30857" in LABEL_STOCKS["57x102"].title
    assert all(stock.title for stock in LABEL_STOCKS.values())
    assert [key for key, stock in LABEL_STOCKS.items() if stock.is_sheet] == ["a4", "letter"]


def test_paper_stocks_draw_a_dashed_cut_line_around_the_badge():
    html = render_label_html(a_badge(), "a4")
    assert 'class="cut-line"' in html
    assert "Cut along the dashed line" in html
    assert "cut-line" not in render_label_html(a_badge(), "62x100").split("</style>")[1]


def test_an_unknown_stock_is_refused_by_name():
    with pytest.raises(ValueError, match="62x100"):
        render_label_html(a_badge(), "62x29")


# ---------------------------------------------------------------------------------------------
# Names in any script


@pytest.mark.parametrize(
    ("name", "company", "host"),
    [
        ("محمد عبد الرحمن", "شركة النور للتجارة", "فاطمة الزهراء"),
        ("王小明", "北京科技有限公司", "张伟"),
        ("Siobhán O'Brien", "D'Angelo & Partners", "Zoë Müller"),
    ],
    ids=["arabic", "chinese", "apostrophes"],
)
def test_names_in_any_script_print_as_text_and_the_code_still_scans(name, company, host, tmp_path):
    content = a_badge(visitor_name=name, company=company, host_name=host)
    pdf = pdf_of(content, "62x100", tmp_path)

    text = text_of(pdf)
    for word in f"{name} {company} {host}".split():
        assert word in text
    assert scanned_qr_codes(pdf) == [content.checkout_code]


def test_the_name_is_marked_for_either_writing_direction():
    html = render_label_html(a_badge(visitor_name="محمد عبد الرحمن"), "62x100")
    assert re.search(r'<h1 class="name [\w-]+" dir="auto">محمد عبد الرحمن</h1>', html)


def test_emoji_come_from_the_emoji_font_and_digits_do_not(tmp_path):
    content = a_badge(visitor_name="Zoë 👋🏽 Okafor 🎉")
    pdf = pdf_of(content, "62x100", tmp_path)

    assert "Zoë" in text_of(pdf)
    fonts = run(poppler("pdffonts"), str(pdf))
    assert "Noto-Color-Emoji" in fonts
    # The date's digits come from DejaVu Sans, not the emoji font (which has digits for keycaps).
    no_emoji = pdf_of(a_badge(), "57x102", tmp_path)
    assert "Emoji" not in run(poppler("pdffonts"), str(no_emoji))


def test_a_ten_thousand_character_name_is_shortened_to_fit_the_label(tmp_path):
    words = " ".join(["Bartholomew", "Featherstonehaugh"] * 500)[:10_000]
    content = a_badge(visitor_name=words, company="C" * 5000, host_name="H" * 5000)
    html = render_label_html(content, "62x100")
    shown = re.search(r'<h1 class="name ([\w-]+)" dir="auto">([^<]*)</h1>', html)
    assert shown is not None
    assert shown.group(1) == badges.NAME_SIZES[-1][0]
    assert shown.group(2).endswith("…")
    assert len(shown.group(2)) < 120

    pdf = pdf_of(content, "62x100", tmp_path)
    assert pdf_facts(pdf)["Pages"] == "1"
    assert "Bartholomew Featherstonehaugh" in text_of(pdf)
    assert scanned_qr_codes(pdf) == [content.checkout_code]


def test_a_ten_thousand_character_word_is_shortened_too(tmp_path):
    content = a_badge(visitor_name="W" * 10_000)
    pdf = pdf_of(content, "57x102", tmp_path)
    assert pdf_facts(pdf)["Pages"] == "1"
    assert "WWWWWWWWWW" in text_of(pdf)
    assert scanned_qr_codes(pdf) == [content.checkout_code]


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("Li Na", "name-xl"),
        ("王小明", "name-xl"),
        ("Katharina Oyelaran-Schmidt", "name-m"),
        ("Wolfeschlegelsteinhausenbergerdorff", "name-m"),
        ("Pablo Diego José Francisco de Paula Juan Nepomuceno María", "name-xxs"),
    ],
)
def test_short_names_are_big_and_long_ones_smaller(name, size):
    html = render_label_html(a_badge(visitor_name=name), "62x100")
    assert f'<h1 class="name {size}" dir="auto">{name}</h1>' in html


def test_line_breaks_and_control_characters_in_a_name_become_spaces():
    html = render_label_html(a_badge(visitor_name="Ada\n\tLovelace\x00\x1b"), "62x100")
    assert 'dir="auto">Ada Lovelace</h1>' in html


# ---------------------------------------------------------------------------------------------
# Nothing a visitor types is markup, and rendering never touches the network


def test_html_in_what_visitors_type_is_printed_as_text(tmp_path):
    content = a_badge(
        visitor_name="<b>Mallory</b> <script>alert(1)</script>",
        company='<img src="http://127.0.0.1:9/x.png">',
        host_name="</h1><h1>Host",
    )
    html = render_label_html(content, "62x100")
    assert "<b>" not in html and "<script>" not in html and '<img src="http' not in html
    assert "&lt;b&gt;Mallory&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;/h1&gt;&lt;h1&gt;Host" in html

    assert "<b>Mallory</b>" in text_of(pdf_of(content, "62x100", tmp_path))


@pytest.fixture
def web_server() -> Iterator[tuple[str, list[str]]]:
    """A local web server that records every request it gets."""
    requests: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_rendering_refuses_to_fetch_anything_from_the_network(web_server):
    url, requests = web_server
    html = (
        render_label_html(a_badge(), "62x100")
        .replace(
            "</head>",
            f'<link rel="stylesheet" href="{url}/evil.css"></head>',
        )
        .replace("</body>", f'<img src="{url}/tracker.png"></body>')
    )
    try:
        pdf = badges.pdf_from_html(html)
    except LabelUnavailable as exc:
        missing_service("WeasyPrint (Pango)", exc.message)
    assert pdf.startswith(b"%PDF-")
    assert requests == []


# ---------------------------------------------------------------------------------------------
# QR code, browser page, missing Pango


def test_a_checkout_code_too_long_to_scan_at_badge_size_is_refused():
    with pytest.raises(ValueError, match="too long"):
        render_label_html(a_badge(checkout_code="FOYER-OUT:" + "x" * 400), "62x100")
    with pytest.raises(ValueError, match="checkout code"):
        render_label_html(a_badge(checkout_code=""), "62x100")


def test_a_browser_page_can_link_the_stylesheet_instead_of_inlining_it():
    """The portal's Content-Security-Policy refuses inline styles; the QR code is a data: image,
    which it allows."""
    html = render_label_html(a_badge(), "62x100", stylesheet_href="/badges/label.css")
    assert '<link rel="stylesheet" href="/badges/label.css">' in html
    assert "<style>" not in html and "style=" not in html
    assert 'src="data:image/svg+xml' in html
    assert "@page label-62x100" in badges.label_stylesheet()


def test_without_pango_the_pdf_says_what_to_install_and_the_html_still_works(monkeypatch):
    badges._weasyprint.cache_clear()
    badges._url_fetcher_class.cache_clear()
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # `import weasyprint` now fails
    try:
        with pytest.raises(LabelUnavailable, match="libpango-1.0-0") as raised:
            render_label_pdf(a_badge(), "62x100")
        assert raised.value.status == 503
        assert "Katharina" in render_label_html(a_badge(), "62x100")
        badges.warm_up()  # harmless
    finally:
        badges._weasyprint.cache_clear()
        badges._url_fetcher_class.cache_clear()

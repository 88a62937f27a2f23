"""Sending a label to a printer: a raw TCP listener receives exactly the PDF; CUPS's reference IPP
printer (`ippeveprinter`, Debian cups-ipp-utils) accepts our hand-encoded Print-Job and spools the
document; and every way a printer can fail - refused, silent, the wrong path, an IPP error - comes
back as PrinterUnavailable with a message that says what happened."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from integrations import printing
from integrations.printing import (
    PrinterAddress,
    PrinterUnavailable,
    decode_ipp,
    parse_printer_uri,
    send_to_printer,
)
from tests.conftest import missing_service

# A one-page PDF (62 x 100 mm) small enough to read; printers and ippeveprinter take it as it is.
LABEL_PDF = (
    b"%PDF-1.4\n"
    b"1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
    b"2 0 obj <</Type /Pages /Kids [3 0 R] /Count 1>> endobj\n"
    b"3 0 obj <</Type /Page /Parent 2 0 R /MediaBox [0 0 175.75 283.46]>> endobj\n"
    b"trailer <</Root 1 0 R>>\n%%EOF\n"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"waited {seconds} s for {what}")


# ---------------------------------------------------------------------------------------------
# Addresses as an admin types them


@pytest.mark.parametrize(
    ("uri", "address"),
    [
        ("socket://10.0.0.5:9100", PrinterAddress("socket", "10.0.0.5", 9100)),
        ("socket://10.0.0.5", PrinterAddress("socket", "10.0.0.5", 9100)),
        (
            "  SOCKET://Label-Printer.local:9101/ ",
            PrinterAddress("socket", "label-printer.local", 9101),
        ),  # fmt: skip
        ("ipp://10.0.0.5/ipp/print", PrinterAddress("ipp", "10.0.0.5", 631, "/ipp/print")),
        (
            "ipp://printer.example.com",
            PrinterAddress("ipp", "printer.example.com", 631, "/ipp/print"),
        ),  # fmt: skip
        ("ipp://cups:631/printers/Badges", PrinterAddress("ipp", "cups", 631, "/printers/Badges")),
        ("ipps://10.0.0.5:443/ipp/print", PrinterAddress("ipps", "10.0.0.5", 443, "/ipp/print")),
        ("ipp://[fd00::5]/ipp/print", PrinterAddress("ipp", "fd00::5", 631, "/ipp/print")),
    ],
)
def test_printer_addresses_are_read_with_their_default_ports(uri, address):
    assert parse_printer_uri(uri) == address


def test_a_printer_address_is_written_out_for_ipp_and_messages():
    assert parse_printer_uri("ipp://10.0.0.5").uri == "ipp://10.0.0.5:631/ipp/print"
    assert parse_printer_uri("ipp://[fd00::5]:8631/x").host_port == "[fd00::5]:8631"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("", "Enter the printer's address"),
        ("10.0.0.5:9100", "Start the address with socket://, ipp:// or ipps://"),
        (
            "http://10.0.0.5:631/ipp/print",
            "cannot print to http:// addresses (for IPP over HTTP, write ipp://)",
        ),  # fmt: skip
        ("lpd://10.0.0.5/queue", "cannot print to lpd:// addresses"),
        ("socket://", "no printer host name or IP address"),
        ("ipp://:631/ipp/print", "no printer host name or IP address"),
        ("socket://10.0.0.5:printer", "The port 'printer' must be a number from 1 to 65535"),
        ("socket://10.0.0.5:0", "The port '0' must be a number from 1 to 65535"),
        ("socket://10.0.0.5:70000", "The port '70000' must be a number from 1 to 65535"),
        ("socket://10.0.0.5:9100/raw", "remove the path"),
        ("ipp://bad_host!/ipp/print", "'bad_host!' is not a valid host name or IP address"),
        ("ipp://[fd00::zz]/ipp/print", "is not a valid host name or IP address"),
        ("ipp://fd00::5/ipp/print", "Write an IPv6 address in brackets"),
        ("socket://10.0.0.256", "'10.0.0.256' is not a valid host name or IP address"),
        ("ipp://cups/printers/Empfang Drucker", "may not contain spaces"),
        ("ipp://cups/printers/Empfang-Drücker", "outside ASCII"),
        ("ipp://admin:secret@10.0.0.5/ipp/print", "Leave the user name and password out"),
        ("ipp://10.0.0.5/ipp/print?x=1", "no ?query or #fragment"),
    ],
)
def test_an_address_that_cannot_work_is_refused_with_a_message_for_the_form(uri, message):
    with pytest.raises(ValueError) as raised:
        parse_printer_uri(uri)
    assert message in str(raised.value)


def test_send_to_printer_checks_the_address_first():
    with pytest.raises(ValueError, match="cannot print to ftp://"):
        send_to_printer("ftp://10.0.0.5/", LABEL_PDF, job_name="Badge")


# ---------------------------------------------------------------------------------------------
# Raw TCP (JetDirect)


@dataclass
class RawPrinter:
    port: int
    received: list[bytes]
    close_after_job: bool = True


@pytest.fixture
def raw_printer() -> Iterator[RawPrinter]:
    """A printer's port 9100 in a thread: it reads one job to the end and keeps the bytes."""
    server = socket.create_server(("127.0.0.1", 0))
    printer = RawPrinter(server.getsockname()[1], [])

    def serve() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
                printer.received.append(b"".join(chunks))
                if not printer.close_after_job:
                    time.sleep(1.5)  # some printers never close their side

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield printer
    thread.join(5)


def test_a_raw_printer_receives_exactly_the_pdf(raw_printer):
    label = LABEL_PDF + os.urandom(400_000)  # bigger than a socket buffer: sent in many pieces
    send_to_printer(f"socket://127.0.0.1:{raw_printer.port}", label, job_name="Badge")
    wait_until(lambda: raw_printer.received, 5, "the job")
    assert raw_printer.received == [label]


def test_a_raw_printer_that_never_closes_still_gets_the_job_without_a_long_wait(raw_printer):
    raw_printer.close_after_job = False
    started = time.monotonic()
    send_to_printer(f"socket://127.0.0.1:{raw_printer.port}", LABEL_PDF, job_name="Badge")
    assert time.monotonic() - started < 2
    wait_until(lambda: raw_printer.received, 5, "the job")
    assert raw_printer.received == [LABEL_PDF]


@pytest.mark.parametrize("scheme", ["socket", "ipp"])
def test_a_printer_that_is_off_is_reported_quickly(scheme):
    port = free_port()  # nothing listens here any more
    started = time.monotonic()
    with pytest.raises(PrinterUnavailable) as raised:
        send_to_printer(f"{scheme}://127.0.0.1:{port}", LABEL_PDF, job_name="Badge", timeout=2)
    assert time.monotonic() - started < 2 + 1
    assert str(raised.value) == (
        f"The printer at 127.0.0.1:{port} refused the connection: is it switched on, "
        f"and is the port {port} right?"
    )
    assert raised.value.status == 503


def test_a_host_name_that_does_not_resolve_says_so():
    with pytest.raises(
        PrinterUnavailable, match="Cannot find the printer 'no-such-printer.invalid'"
    ):
        send_to_printer("socket://no-such-printer.invalid", LABEL_PDF, job_name="Badge")


# ---------------------------------------------------------------------------------------------
# IPP against a scripted server: what we send, and how errors come back


def ipp_attribute(tag: int, name: str, value: bytes) -> bytes:
    return (
        struct.pack(">BH", tag, len(name)) + name.encode() + struct.pack(">H", len(value)) + value
    )


def ipp_response(status: int, request_id: int, *extra: bytes, message: str = "") -> bytes:
    """An IPP response built by hand, as a printer would send it."""
    operation = [
        ipp_attribute(0x47, "attributes-charset", b"utf-8"),
        ipp_attribute(0x48, "attributes-natural-language", b"en"),
    ]
    if message:
        operation.append(ipp_attribute(0x41, "status-message", message.encode()))
    return b"".join(
        [struct.pack(">BBHI", 1, 1, status, request_id), b"\x01", *operation, *extra, b"\x03"]
    )


@dataclass
class ScriptedPrinter:
    url: str
    requests: list[tuple[str, dict[str, str], bytes]]
    answer: Callable[[bytes], tuple[int, bytes]]


@pytest.fixture
def scripted_printer() -> Iterator[ScriptedPrinter]:
    """An HTTP server that records each request and answers what the test scripts."""
    printer = ScriptedPrinter(
        "", [], lambda body: (200, ipp_response(0, decode_ipp(body).request_id))
    )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            printer.requests.append((self.path, dict(self.headers), body))
            status, payload = printer.answer(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/ipp")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    printer.url = f"ipp://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield printer
    server.shutdown()
    server.server_close()


def test_a_print_job_is_a_well_formed_ipp_request_followed_by_the_pdf(scripted_printer):
    send_to_printer(f"{scripted_printer.url}/ipp/print", LABEL_PDF, job_name="Visitor badge: Zoë")

    [(path, headers, body)] = scripted_printer.requests
    assert path == "/ipp/print"
    assert headers["Content-Type"] == "application/ipp"
    request = decode_ipp(body)
    assert request.version == (1, 1)
    assert request.code == 0x0002  # Print-Job
    assert 1 <= request.request_id < 2**31
    [(group, attributes)] = request.groups
    assert group == 0x01  # operation attributes
    assert list(attributes) == [  # charset and language first, in this order (RFC 8011 4.1.4)
        "attributes-charset",
        "attributes-natural-language",
        "printer-uri",
        "requesting-user-name",
        "job-name",
        "document-format",
    ]
    assert attributes["printer-uri"] == [f"{scripted_printer.url}/ipp/print"]
    assert attributes["job-name"] == ["Visitor badge: Zoë"]
    assert attributes["document-format"] == ["application/pdf"]
    assert request.data == LABEL_PDF


def test_a_long_job_name_is_cut_to_255_bytes_between_characters(scripted_printer):
    send_to_printer(f"{scripted_printer.url}/ipp/print", LABEL_PDF, job_name="Zoë " * 100)
    [job_name] = decode_ipp(scripted_printer.requests[0][2]).groups[0][1]["job-name"]
    assert len(job_name.encode()) <= 255
    assert job_name.startswith("Zoë Zoë")


def test_an_ipp_error_comes_back_with_the_printers_own_words(scripted_printer):
    scripted_printer.answer = lambda body: (
        200,
        ipp_response(0x0507, decode_ipp(body).request_id, message="Out of labels."),
    )
    with pytest.raises(PrinterUnavailable) as raised:
        send_to_printer(f"{scripted_printer.url}/ipp/print", LABEL_PDF, job_name="Badge")
    port = scripted_printer.url.rsplit(":", 1)[1]
    assert str(raised.value) == (
        f"The printer at 127.0.0.1:{port} refused the label: Out of labels (server-error-busy)."
    )


def test_an_ipp_error_without_a_message_names_the_status(scripted_printer):
    scripted_printer.answer = lambda body: (200, ipp_response(0x040A, 7))
    with pytest.raises(PrinterUnavailable, match=r"client-error-document-format-not-supported"):
        send_to_printer(f"{scripted_printer.url}/ipp/print", LABEL_PDF, job_name="Badge")


def test_success_with_substituted_attributes_is_success(scripted_printer):
    scripted_printer.answer = lambda body: (200, ipp_response(0x0001, 7))
    send_to_printer(f"{scripted_printer.url}/ipp/print", LABEL_PDF, job_name="Badge")


@pytest.mark.parametrize(
    ("http_status", "message"),
    [
        (401, "asks for a user name and password (HTTP 401 Unauthorized)"),
        (404, "has no printer at /ipp/print (HTTP 404 Not Found); check the path"),
        (426, "accepts only encrypted jobs (HTTP 426 Upgrade Required): use ipps://"),
        (500, "answered HTTP 500 Internal Server Error instead of accepting the label"),
    ],
)
def test_http_errors_say_what_to_change(scripted_printer, http_status, message):
    scripted_printer.answer = lambda body: (http_status, b"")
    with pytest.raises(PrinterUnavailable, match=message.replace("(", r"\(").replace(")", r"\)")):
        send_to_printer(f"{scripted_printer.url}/ipp/print", LABEL_PDF, job_name="Badge")


def test_an_answer_that_is_not_ipp_is_reported(scripted_printer):
    scripted_printer.answer = lambda body: (200, b"<html>Printer status page</html>")
    with pytest.raises(PrinterUnavailable, match="answered, but not in IPP"):
        send_to_printer(f"{scripted_printer.url}/ipp/print", LABEL_PDF, job_name="Badge")


def test_ipps_to_a_port_without_tls_fails_clearly(scripted_printer):
    url = scripted_printer.url.replace("ipp://", "ipps://")
    with pytest.raises(PrinterUnavailable, match="The encrypted connection to the printer at"):
        send_to_printer(f"{url}/ipp/print", LABEL_PDF, job_name="Badge", timeout=2)


def test_a_printer_that_accepts_but_never_answers_times_out():
    server = socket.create_server(("127.0.0.1", 0))  # listens, but nobody ever reads or answers
    port = server.getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(PrinterUnavailable) as raised:
            send_to_printer(f"ipp://127.0.0.1:{port}/ipp/print", LABEL_PDF, job_name="B", timeout=1)
        assert time.monotonic() - started < 1 + 1
        assert str(raised.value) == f"The printer at 127.0.0.1:{port} did not answer within 1 s."
    finally:
        server.close()


def test_the_decoder_reads_collections_extra_values_and_out_of_band_values():
    collection = b"".join(
        [
            ipp_attribute(0x34, "media-col", b""),
            ipp_attribute(0x4A, "", b"media-size"),
            ipp_attribute(0x34, "", b""),
            ipp_attribute(0x4A, "", b"x-dimension"),
            ipp_attribute(0x21, "", struct.pack(">i", 6200)),
            ipp_attribute(0x37, "", b""),
            ipp_attribute(0x4A, "", b"media-type"),
            ipp_attribute(0x44, "", b"labels"),
            ipp_attribute(0x37, "", b""),
        ]
    )
    job = b"".join(
        [
            b"\x02",  # job attributes group
            ipp_attribute(0x21, "job-id", struct.pack(">i", 42)),
            ipp_attribute(0x23, "job-state", struct.pack(">i", 3)),
            ipp_attribute(0x44, "job-state-reasons", b"job-incoming"),
            ipp_attribute(0x44, "", b"job-data-insufficient"),
            ipp_attribute(0x35, "job-state-message", b"\x00\x02de\x00\x08Gedruckt"),
            ipp_attribute(0x13, "job-printer-state-message", b""),  # no-value
            collection,
        ]
    )
    message = decode_ipp(ipp_response(0, 9, job) + b"document bytes")
    assert message.is_success and message.status_name == "successful-ok"
    assert message.attribute("job-id") == 42
    assert message.attribute("job-state", group=0x02) == 3
    jobs = message.groups[1][1]
    assert jobs["job-state-reasons"] == ["job-incoming", "job-data-insufficient"]
    assert jobs["job-state-message"] == ["Gedruckt"]
    assert jobs["job-printer-state-message"] == [None]
    assert jobs["media-col"] == [
        {"media-size": [{"x-dimension": [6200]}], "media-type": ["labels"]}
    ]
    assert message.data == b"document bytes"


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x01\x00",
        ipp_response(0, 1)[:-1],
        ipp_response(0, 1)[:20],
        b"\x01\x01\x00\x00\x00\x00\x00\x01\x21\x00",
    ],
    ids=["no-header", "no-end-tag", "cut-in-attribute", "attribute-outside-group"],
)
def test_the_decoder_refuses_malformed_messages(data):
    with pytest.raises(printing.IppFormatError):
        decode_ipp(data)


# ---------------------------------------------------------------------------------------------
# IPP against CUPS's reference printer


def system_program(name: str, package: str) -> str:
    path = shutil.which(name) or next(
        (f"{d}/{name}" for d in ("/usr/sbin", "/usr/bin") if os.access(f"{d}/{name}", os.X_OK)),
        None,
    )
    if path is None:
        missing_service("ippeveprinter", f"{name} not found (apt-get install {package})")
    return path  # type: ignore[return-value]


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@dataclass
class IppEvePrinter:
    uri: str
    spool: Path


@pytest.fixture
def ipp_everywhere_printer(tmp_path: Path) -> Iterator[IppEvePrinter]:
    """`ippeveprinter` on a free port of the loopback interface only (-n localhost), keeping each
    job's document in a spool folder (-k -d), not advertised (-r off). It will not start without
    a D-Bus system bus to look for Avahi on, so it gets a private bus of its own: nothing reaches
    the machine's real one, and no Avahi daemon is needed."""
    ippeveprinter = system_program("ippeveprinter", "cups-ipp-utils")
    dbus_daemon = system_program("dbus-daemon", "dbus-daemon")
    bus = tmp_path / "bus"
    dbus = subprocess.Popen(
        [dbus_daemon, "--session", f"--address=unix:path={bus}", "--nofork", "--nopidfile"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    spool = tmp_path / "spool"
    spool.mkdir()
    log_path = tmp_path / "ippeveprinter.log"
    printer = None
    try:
        wait_until(bus.exists, 10, "the private D-Bus")
        port = free_port()
        with log_path.open("wb") as log:
            printer = subprocess.Popen(
                [ippeveprinter, "-p", str(port), "-n", "localhost", "-r", "off"]
                + ["-f", "application/pdf", "-k", "-d", str(spool), "Foyer Test"],
                cwd=tmp_path,
                env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={bus}"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def listening() -> bool:
            if printer.poll() is not None:
                missing_service("ippeveprinter", f"it exited: {log_path.read_text().strip()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                return False
            return True

        wait_until(listening, 15, "ippeveprinter to listen")
        yield IppEvePrinter(f"ipp://localhost:{port}/ipp/print", spool)
    finally:
        if printer is not None:
            stop(printer)
        stop(dbus)


def test_a_real_ipp_printer_accepts_the_job_and_spools_the_pdf(ipp_everywhere_printer):
    label = LABEL_PDF + b"%" + os.urandom(50_000).hex().encode() + b"\n"
    send_to_printer(ipp_everywhere_printer.uri, label, job_name="Visitor badge: Katharina")

    def spooled() -> list[Path]:
        return [p for p in ipp_everywhere_printer.spool.iterdir() if p.read_bytes() == label]

    [document] = wait_until(spooled, 10, "the document in the spool folder")
    assert document.suffix == ".pdf"
    assert "visitor_badge_katharina" in document.name.lower()


def test_a_real_ipp_printer_refuses_a_path_it_does_not_have(ipp_everywhere_printer):
    wrong = ipp_everywhere_printer.uri.replace("/ipp/print", "/ipp/badges")
    with pytest.raises(PrinterUnavailable) as raised:
        send_to_printer(wrong, LABEL_PDF, job_name="Badge")
    assert "refused the label" in str(raised.value)
    assert "not found (client-error-not-found)" in str(raised.value)
    assert list(ipp_everywhere_printer.spool.iterdir()) == []

"""Sending a finished label (a PDF) to a printer on the network, by one of two protocols:

- `socket://host:port` - raw TCP, "JetDirect" (port 9100 unless given): the PDF's bytes, as is. For
  printers that understand PDF themselves, and print servers that accept it on a raw port.
- `ipp://host:port/path`, `ipps://...` - IPP/1.1 Print-Job over HTTP (or HTTPS), port 631 and path
  /ipp/print unless given, the common address of IPP Everywhere printers. The IPP message is encoded
  here by hand (RFC 8010): one request and one response, no library needed.

Every failure - no answer, refused, an HTTP or IPP error - raises PrinterUnavailable with a message
the person at the kiosk or the admin can act on. No Flask here."""

from __future__ import annotations

import http.client
import re
import secrets
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from portal.errors import DomainError

RAW_PORT = 9100
IPP_PORT = 631
IPP_DEFAULT_PATH = "/ipp/print"
SCHEMES = ("socket", "ipp", "ipps")
REQUESTING_USER = "foyer"
MAX_RESPONSE_BYTES = 1024 * 1024  # a Print-Job answer is a few hundred bytes


class PrinterUnavailable(DomainError):
    """The label did not reach the printer, or the printer refused it. The message says why."""

    status = 503


@dataclass(frozen=True)
class PrinterAddress:
    """A checked printer address (see parse_printer_uri)."""

    scheme: str  # "socket", "ipp" or "ipps"
    host: str  # a name or an IP address; IPv6 without brackets
    port: int
    path: str = ""  # IPP only: the printer's resource path, starting with "/"

    @property
    def host_port(self) -> str:
        """For messages: `10.0.0.5:9100`, `[fd00::5]:631`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def uri(self) -> str:
        """The address written out in full, with its defaults; IPP's `printer-uri`."""
        return f"{self.scheme}://{self.host_port}{self.path}"


# A host name (RFC 1123 labels) or an IPv4 address; IPv6 comes in brackets and is checked apart.
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")  # fmt: skip
_IPV4_LIKE = re.compile(r"^[0-9.]+$")
_EXAMPLES = "socket://10.0.0.5:9100 or ipp://10.0.0.5/ipp/print"


def parse_printer_uri(uri: str) -> PrinterAddress:
    """Check a printer address as an admin typed it, filling in the default port (and path).
    Raises ValueError with a message to show beside the form field."""
    text = (uri or "").strip()
    if not text:
        raise ValueError(f"Enter the printer's address, for example {_EXAMPLES}.")
    if "://" not in text:
        raise ValueError(
            f"Start the address with socket://, ipp:// or ipps://, for example {_EXAMPLES}."
        )
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
    except ValueError as exc:  # a bracketed IPv6 address that is not one
        raise ValueError(
            f"The host in {text!r} is not a valid host name or IP address ({exc})."
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        hint = " (for IPP over HTTP, write ipp://)" if scheme in ("http", "https") else ""
        raise ValueError(
            f"Foyer cannot print to {scheme or 'this kind of'}:// addresses{hint}. "
            f"Use socket:// for a raw printer port or ipp:// / ipps:// for IPP, "
            f"for example {_EXAMPLES}."
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "Leave the user name and password out of the printer's address; Foyer prints "
            "to printers that accept jobs without signing in."
        )
    if not host:
        raise ValueError(f"The address has no printer host name or IP address: {_EXAMPLES}.")
    bracketed = parts.netloc.startswith("[")
    if not bracketed and parts.netloc.count(":") > 1:
        raise ValueError(f"Write an IPv6 address in brackets, for example {scheme}://[fd00::5]/.")
    if not _valid_host(host, bracketed=bracketed):
        raise ValueError(f"{host!r} is not a valid host name or IP address.")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        port_text = parts.netloc.rsplit(":", 1)[-1]
        raise ValueError(f"The port {port_text!r} must be a number from 1 to 65535.")
    if parts.query or parts.fragment:
        raise ValueError("A printer address has no ?query or #fragment; remove it.")
    if scheme == "socket":
        if parts.path not in ("", "/"):
            raise ValueError(
                "A socket:// address is only a host and a port, for example "
                "socket://10.0.0.5:9100; remove the path."
            )
        return PrinterAddress("socket", host, port or RAW_PORT)
    path = parts.path if parts.path not in ("", "/") else IPP_DEFAULT_PATH
    if not path.isascii() or any(char.isspace() for char in path):
        raise ValueError(
            "The printer's path may not contain spaces or letters outside ASCII; write them "
            "%-encoded (a space is %20)."
        )
    return PrinterAddress(scheme, host, port or IPP_PORT, path)


def _valid_host(host: str, *, bracketed: bool) -> bool:
    if bracketed:  # urlsplit has removed the brackets
        try:
            socket.inet_pton(socket.AF_INET6, host)
        except OSError:
            return False
        return True
    if _IPV4_LIKE.match(host):  # all digits and dots: must be a real IPv4 address
        try:
            socket.inet_pton(socket.AF_INET, host)
        except OSError:
            return False
        return True
    return bool(_HOST_NAME.match(host))


def send_to_printer(
    uri: str, pdf: bytes, *, job_name: str, timeout: float = 5.0, verify_tls: bool = True
) -> None:
    """Send `pdf` to the printer at `uri` as one job named `job_name`. Returns once the printer
    has accepted the job (IPP) or taken all the bytes (raw socket).

    `timeout` bounds each wait on the network (connecting, sending, the answer). `verify_tls`
    checks an ipps:// printer's certificate against the system's authorities; printers with their
    own self-signed certificate need it off (the label is then encrypted but the printer is not
    authenticated). Raises PrinterUnavailable, or ValueError for an address that is not valid."""
    address = parse_printer_uri(uri)
    if address.scheme == "socket":
        _send_raw(address, pdf, timeout)
    else:
        _send_ipp(address, pdf, job_name, timeout, verify_tls)


# ---------------------------------------------------------------------------------------------
# Network errors in words


def _seconds(timeout: float) -> str:
    return f"{timeout:g} s"


@contextmanager
def _network_errors(address: PrinterAddress, timeout: float, doing: str) -> Iterator[None]:
    """Turn what the network raises into PrinterUnavailable with a message a person can act on."""
    where = f"the printer at {address.host_port}"
    where_cap = f"The printer at {address.host_port}"
    try:
        yield
    except PrinterUnavailable:
        raise
    except TimeoutError as exc:  # socket.timeout is TimeoutError
        raise PrinterUnavailable(f"{where_cap} did not answer within {_seconds(timeout)}.") from exc
    except socket.gaierror as exc:
        raise PrinterUnavailable(
            f"Cannot find the printer {address.host!r}: the name does not resolve "
            f"({exc.strerror}). Check the printer's address."
        ) from exc
    except ConnectionRefusedError as exc:
        raise PrinterUnavailable(
            f"{where_cap} refused the connection: is it switched on, and is the port "
            f"{address.port} right?"
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise PrinterUnavailable(
            f"{where_cap} has a TLS certificate this server does not trust "
            f"({exc.verify_message}). Give the printer a trusted certificate, or turn off "
            "certificate checks for it."
        ) from exc
    except ssl.SSLError as exc:
        raise PrinterUnavailable(
            f"The encrypted connection to {where} failed ({exc.reason or exc}). "
            "Does the printer speak ipps:// on this port?"
        ) from exc
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected) as exc:
        raise PrinterUnavailable(f"{where_cap} closed the connection while {doing}.") from exc
    except http.client.HTTPException as exc:
        raise PrinterUnavailable(
            f"{where_cap} answered with something that is not HTTP "
            f"({type(exc).__name__}); is this the printer's IPP port?"
        ) from exc
    except OSError as exc:  # no route to host, network down, ...
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise PrinterUnavailable(f"Cannot reach {where}: {reason}.") from exc


# ---------------------------------------------------------------------------------------------
# Raw TCP (JetDirect, port 9100)

# After sending, wait this long at most for the printer to close its side: closing first while the
# printer still has something to say would reset the connection, and may drop the end of the job.
_RAW_LINGER_SECONDS = 1.0


def _send_raw(address: PrinterAddress, pdf: bytes, timeout: float) -> None:
    with (
        _network_errors(address, timeout, "receiving the label"),
        socket.create_connection((address.host, address.port), timeout=timeout) as conn,
    ):
        conn.sendall(pdf)  # the timeout bounds the whole send (Python >= 3.5)
        conn.shutdown(socket.SHUT_WR)  # end of job
        deadline = time.monotonic() + min(timeout, _RAW_LINGER_SECONDS)
        # It has taken all the bytes; some printers never close or answer, so time out quietly.
        with suppress(TimeoutError, ConnectionResetError):
            while (left := deadline - time.monotonic()) > 0:
                conn.settimeout(left)
                if not conn.recv(4096):  # the printer closed: it has everything
                    break


# ---------------------------------------------------------------------------------------------
# IPP/1.1 (RFC 8011 semantics, RFC 8010 encoding)
#
# A message is: version (2 bytes: major, minor), operation-id in requests or status-code in
# responses (2 bytes), request-id (4 bytes), then attribute groups, each opened by a one-byte
# delimiter tag, then the end-of-attributes tag (0x03), then the document data. Each attribute is
#     value-tag (1) | name-length (2) | name | value-length (2) | value
# and a further value of the same attribute repeats it with name-length 0. Integers are signed,
# big-endian ("network order").

IPP_VERSION = (1, 1)
OP_PRINT_JOB = 0x0002

# Delimiter tags (RFC 8010 3.5.1)
TAG_OPERATION_ATTRIBUTES = 0x01
TAG_JOB_ATTRIBUTES = 0x02
TAG_END_OF_ATTRIBUTES = 0x03
TAG_PRINTER_ATTRIBUTES = 0x04
TAG_UNSUPPORTED_ATTRIBUTES = 0x05

# Value tags (RFC 8010 3.5.2); 0x10-0x1f are "out of band" (unsupported, unknown, no-value)
TAG_INTEGER = 0x21
TAG_BOOLEAN = 0x22
TAG_ENUM = 0x23
TAG_OCTET_STRING = 0x30
TAG_DATETIME = 0x31
TAG_RESOLUTION = 0x32
TAG_RANGE_OF_INTEGER = 0x33
TAG_BEGIN_COLLECTION = 0x34
TAG_TEXT_WITH_LANGUAGE = 0x35
TAG_NAME_WITH_LANGUAGE = 0x36
TAG_END_COLLECTION = 0x37
TAG_TEXT = 0x41
TAG_NAME = 0x42
TAG_KEYWORD = 0x44
TAG_URI = 0x45
TAG_CHARSET = 0x47
TAG_NATURAL_LANGUAGE = 0x48
TAG_MIME_MEDIA_TYPE = 0x49
TAG_MEMBER_ATTR_NAME = 0x4A
_STRING_TAGS = range(0x40, 0x50)  # text, name, keyword, uri, charset, language, mime type ...

# Status codes (RFC 8011 4.1.6, and the PWG registry). 0x0000-0x00ff mean success.
STATUS_NAMES = {
    0x0000: "successful-ok",
    0x0001: "successful-ok-ignored-or-substituted-attributes",
    0x0002: "successful-ok-conflicting-attributes",
    0x0400: "client-error-bad-request",
    0x0401: "client-error-forbidden",
    0x0402: "client-error-not-authenticated",
    0x0403: "client-error-not-authorized",
    0x0404: "client-error-not-possible",
    0x0405: "client-error-timeout",
    0x0406: "client-error-not-found",
    0x0407: "client-error-gone",
    0x0408: "client-error-request-entity-too-large",
    0x0409: "client-error-request-value-too-long",
    0x040A: "client-error-document-format-not-supported",
    0x040B: "client-error-attributes-or-values-not-supported",
    0x040C: "client-error-uri-scheme-not-supported",
    0x040D: "client-error-charset-not-supported",
    0x040E: "client-error-conflicting-attributes",
    0x040F: "client-error-compression-not-supported",
    0x0410: "client-error-compression-error",
    0x0411: "client-error-document-format-error",
    0x0412: "client-error-document-access-error",
    0x0500: "server-error-internal-error",
    0x0501: "server-error-operation-not-supported",
    0x0502: "server-error-service-unavailable",
    0x0503: "server-error-version-not-supported",
    0x0504: "server-error-device-error",
    0x0505: "server-error-temporary-error",
    0x0506: "server-error-not-accepting-jobs",
    0x0507: "server-error-busy",
    0x0508: "server-error-job-canceled",
    0x0509: "server-error-multiple-document-jobs-not-supported",
}


class IppFormatError(ValueError):
    """Bytes that are not a well-formed IPP message."""


@dataclass
class IppMessage:
    """A decoded IPP message. `code` is the operation-id of a request or the status-code of a
    response; `groups` lists (delimiter tag, {attribute name: [values]}) in order."""

    version: tuple[int, int]
    code: int
    request_id: int
    groups: list[tuple[int, dict[str, list[Any]]]] = field(default_factory=list)
    data: bytes = b""

    def attribute(self, name: str, group: int | None = None) -> Any:
        """The first value of the first attribute called `name` (in `group`, if given)."""
        for tag, attributes in self.groups:
            if (group is None or tag == group) and attributes.get(name):
                return attributes[name][0]
        return None

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.code, f"status 0x{self.code:04x}")

    @property
    def is_success(self) -> bool:
        return self.code < 0x0100


def _attribute(tag: int, name: str, value: bytes) -> bytes:
    encoded_name = name.encode("ascii")
    return (
        struct.pack(">BH", tag, len(encoded_name))
        + encoded_name
        + struct.pack(">H", len(value))
        + value
    )


def _name_value(text: str, limit: int = 255) -> bytes:
    """A `name` value: UTF-8, at most 255 octets (RFC 8011 5.1.3), cut between characters."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore").encode("utf-8")


def encode_print_job(printer_uri: str, job_name: str, request_id: int) -> bytes:
    """The IPP part of a Print-Job request, to be followed by the document's bytes. Operation
    attributes go in the order RFC 8011 4.1.4 requires: charset, natural language, target."""
    return b"".join(
        (
            struct.pack(">BBHI", *IPP_VERSION, OP_PRINT_JOB, request_id),
            bytes([TAG_OPERATION_ATTRIBUTES]),
            _attribute(TAG_CHARSET, "attributes-charset", b"utf-8"),
            _attribute(TAG_NATURAL_LANGUAGE, "attributes-natural-language", b"en"),
            _attribute(TAG_URI, "printer-uri", printer_uri.encode("ascii")),
            _attribute(TAG_NAME, "requesting-user-name", REQUESTING_USER.encode("ascii")),
            _attribute(TAG_NAME, "job-name", _name_value(job_name or "Foyer label")),
            _attribute(TAG_MIME_MEDIA_TYPE, "document-format", b"application/pdf"),
            bytes([TAG_END_OF_ATTRIBUTES]),
        )
    )


class _Reader:
    """Reads big-endian fields from a message, refusing to run past its end."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise IppFormatError("the IPP message ends in the middle of an attribute")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def unsigned(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def peek(self) -> int | None:
        return self.data[self.offset] if self.offset < len(self.data) else None


def _decode_value(tag: int, value: bytes) -> Any:
    if 0x10 <= tag <= 0x1F:
        return None  # out of band: unsupported, unknown, no-value
    if tag in (TAG_INTEGER, TAG_ENUM) and len(value) == 4:
        return struct.unpack(">i", value)[0]
    if tag == TAG_BOOLEAN and len(value) == 1:
        return value != b"\x00"
    if tag == TAG_RANGE_OF_INTEGER and len(value) == 8:
        return struct.unpack(">ii", value)
    if tag == TAG_RESOLUTION and len(value) == 9:
        return struct.unpack(">iib", value)
    if tag in (TAG_TEXT_WITH_LANGUAGE, TAG_NAME_WITH_LANGUAGE):
        reader = _Reader(value)  # language length, language, text length, text
        reader.take(reader.unsigned(2))
        return reader.take(reader.unsigned(2)).decode("utf-8", "replace")
    if tag in _STRING_TAGS:
        return value.decode("utf-8", "replace")
    return value  # octetString, dateTime and anything newer: the raw bytes


def _read_attribute(reader: _Reader) -> tuple[int, str, bytes]:
    tag = reader.unsigned(1)
    name = reader.take(reader.unsigned(2)).decode("utf-8", "replace")
    value = reader.take(reader.unsigned(2))
    return tag, name, value


def _read_collection(reader: _Reader) -> dict[str, list[Any]]:
    """The members of a collection (RFC 8010 3.1.6), after its begCollection attribute: pairs of
    memberAttrName + value, nested collections included, up to endCollection."""
    members: dict[str, list[Any]] = {}
    member = ""
    while True:
        tag, _name, value = _read_attribute(reader)
        if tag == TAG_END_COLLECTION:
            return members
        if tag == TAG_MEMBER_ATTR_NAME:
            member = value.decode("utf-8", "replace")
            members.setdefault(member, [])
        elif tag == TAG_BEGIN_COLLECTION:
            members.setdefault(member, []).append(_read_collection(reader))
        else:
            members.setdefault(member, []).append(_decode_value(tag, value))


def decode_ipp(data: bytes) -> IppMessage:
    """Decode an IPP request or response. Raises IppFormatError for malformed bytes."""
    reader = _Reader(data)
    major, minor, code, request_id = struct.unpack(">BBHI", reader.take(8))
    message = IppMessage((major, minor), code, request_id)
    attributes: dict[str, list[Any]] | None = None
    current = ""
    while True:
        tag = reader.peek()
        if tag is None:
            raise IppFormatError("the IPP message has no end-of-attributes tag")
        if tag < 0x10:  # a delimiter: the end, or the start of a group
            reader.take(1)
            if tag == TAG_END_OF_ATTRIBUTES:
                message.data = data[reader.offset :]
                return message
            attributes = {}
            message.groups.append((tag, attributes))
            continue
        if attributes is None:
            raise IppFormatError("the IPP message has an attribute outside any group")
        tag, name, value = _read_attribute(reader)
        if name:
            current = name
            attributes.setdefault(current, [])
        elif not current:
            raise IppFormatError("the IPP message adds a value to no attribute")
        decoded = _read_collection(reader) if tag == TAG_BEGIN_COLLECTION else None
        attributes[current].append(decoded if decoded is not None else _decode_value(tag, value))


def _send_ipp(
    address: PrinterAddress, pdf: bytes, job_name: str, timeout: float, verify_tls: bool
) -> None:
    printer_uri = address.uri
    request_id = secrets.randbelow(2**31 - 2) + 1  # 1 .. 2**31-1 (RFC 8011 4.1.1)
    body = encode_print_job(printer_uri, job_name, request_id) + pdf
    connection: http.client.HTTPConnection
    if address.scheme == "ipps":
        context = ssl.create_default_context()
        if not verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(
            address.host, address.port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(address.host, address.port, timeout=timeout)
    where = f"The printer at {address.host_port}"
    try:
        with _network_errors(address, timeout, "receiving the label"):
            connection.request(
                "POST",
                address.path,
                body=body,
                headers={"Content-Type": "application/ipp", "Accept": "application/ipp"},
            )
            response = connection.getresponse()
            payload = response.read(MAX_RESPONSE_BYTES)
    finally:
        connection.close()
    if response.status != 200:
        raise PrinterUnavailable(_http_problem(where, address, response.status, response.reason))
    try:
        answer = decode_ipp(payload)
    except (IppFormatError, struct.error) as exc:
        raise PrinterUnavailable(
            f"{where} answered, but not in IPP ({exc}). Is {address.path} its IPP path?"
        ) from exc
    if not answer.is_success:
        message = (answer.attribute("status-message", TAG_OPERATION_ATTRIBUTES) or "").strip()
        message = message.rstrip(".")  # it ends our sentence, which has its own full stop
        detail = f"{message} ({answer.status_name})" if message else answer.status_name
        raise PrinterUnavailable(f"{where} refused the label: {detail}.")


def _http_problem(where: str, address: PrinterAddress, status: int, reason: str) -> str:
    answered = f"HTTP {status} {reason}".strip()
    if status in (401, 403):
        return (
            f"{where} asks for a user name and password ({answered}). Foyer prints only to "
            "printers that accept jobs without signing in."
        )
    if status == 404:
        return f"{where} has no printer at {address.path} ({answered}); check the path."
    if status == 426:
        return f"{where} accepts only encrypted jobs ({answered}): use ipps:// instead of ipp://."
    return f"{where} answered {answered} instead of accepting the label."

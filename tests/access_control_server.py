"""A reference access-control server for the tests: real HTTP on loopback, in a thread, speaking
the REST contract of integrations/access_control/rest.py (the contract a vendor bridge implements),
with faults the tests inject: answer 429 with Retry-After, answer 5xx, or be down altogether."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "reference-api-key"
DOOR_GROUPS = {"Lobby", "Lobby and 3rd floor"}


@dataclass
class Fault:
    status: int
    times: int
    retry_after: str | None = None


@dataclass
class ReferenceState:
    credentials: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> body
    by_reference: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _gate(self) -> bool:
        """Record the request, apply an injected fault or refuse a wrong key; True to go on."""
        state = self.server.state
        with state.lock:
            state.requests.append((self.command, self.path))
            fault = state.faults[0] if state.faults else None
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    state.faults.pop(0)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._answer(fault.status, {"error": "injected fault"}, headers)
            return False
        if self.headers.get("X-Api-Key") != API_KEY:
            self._answer(401, {"error": "unknown API key"})
            return False
        return True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not self._gate():
            return
        if self.path != "/api/credentials":
            self._answer(404, {"error": "no such endpoint"})
            return
        try:
            body = json.loads(raw)
            reference = body["reference"]
            door_group = body["door_group"]
            body["valid_from"], body["valid_until"]  # noqa: B018 - required fields
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "malformed credential request"})
            return
        if door_group not in DOOR_GROUPS:
            self._answer(422, {"error": f"unknown door group {door_group!r}"})
            return
        state = self.server.state
        with state.lock:
            existing = state.by_reference.get(reference)
            if existing is not None and existing in state.credentials:
                self._answer(200, {"id": existing})
                return
            credential_id = f"cred-{len(state.by_reference) + 1:04d}"
            state.by_reference[reference] = credential_id
            state.credentials[credential_id] = body
        self._answer(201, {"id": credential_id})

    def do_DELETE(self) -> None:
        if not self._gate():
            return
        prefix = "/api/credentials/"
        if not self.path.startswith(prefix):
            self._answer(404, {"error": "no such endpoint"})
            return
        with self.server.state.lock:
            gone = self.server.state.credentials.pop(self.path[len(prefix) :], None)
        self._answer(204 if gone is not None else 404)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ReferenceState


class ReferenceAccessServer:
    """`with ReferenceAccessServer() as server:` ... `server.base_url` ends in /api."""

    def __init__(self) -> None:
        self.state = ReferenceState()
        self._server: _Server | None = None
        self.port = 0

    def start(self) -> ReferenceAccessServer:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.state = self.state
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(
            target=server.serve_forever, args=(0.05,), name="access-reference", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        """Down: the port refuses connections until start() again (on the same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def fail_next(self, status: int, times: int = 1, retry_after: str | None = None) -> None:
        with self.state.lock:
            self.state.faults.append(Fault(status, times, retry_after))

    def __enter__(self) -> ReferenceAccessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

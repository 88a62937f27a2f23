"""Foyer as the scanners see it: the real app, rate limits off, served on a free loopback port.

Run by security/scan.py as `python -m security.scan_server LOG_FILE` with FOYER_DATABASE_URL and
FOYER_INSTANCE_PATH pointing at a throwaway database. It prints the port on its first line, then
serves until killed, appending "METHOD PATH STATUS" per request to LOG_FILE so the scan can count
the requests each tool sent and every 5xx answer.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import make_server

from portal import create_app


class RequestLog:
    """WSGI middleware: one line per answered request, written as the status line goes out."""

    def __init__(self, app: Callable[..., Iterable[bytes]], path: str) -> None:
        self.app = app
        self.handle = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives with the server
        self.lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "-")
        path = environ.get("PATH_INFO", "-")

        def logging_start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            with self.lock:
                self.handle.write(f"{method} {path} {status.split(' ', 1)[0]}\n")
            return start_response(status, headers, exc_info)

        return self.app(environ, logging_start_response)


def main() -> None:
    log_path = sys.argv[1]
    # The sign-in limit (10 a minute) would lock the scanners out after a few form attacks.
    app = create_app({"RATELIMIT_ENABLED": False})
    app.wsgi_app = RequestLog(app.wsgi_app, log_path)  # type: ignore[method-assign]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

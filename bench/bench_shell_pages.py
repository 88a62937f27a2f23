"""Shell pages (My day, People) against a bare route serving the same bytes, on the demo data.

Runs in-process through the WSGI test client, so the figures are the app's own CPU cost per page."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from flask import Response
from sqlalchemy import event

from bench.harness import measure, report
from portal import create_app
from portal.schema import upgrade
from portal.services import demo_company


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"instance_path": Path(tmp), "RATELIMIT_ENABLED": False})
        engine = app.extensions["foyer.engine"]
        upgrade(engine)
        bodies: dict[str, bytes] = {}

        @app.get("/__baseline/<int:index>")
        def baseline(index: int) -> Response:
            # The floor: Flask serving the same bytes with no template and no database.
            return Response(bodies[str(index)], mimetype="text/html")

        _reader, writer = app.extensions["foyer.sessions"]
        with writer() as session, session.begin():
            demo_company.seed_demo(session)

        client = app.test_client()
        page = client.get("/sign-in").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        client.post(
            "/sign-in",
            data={
                "csrf_token": token,
                "email": "amara.okafor@example.com",
                "password": demo_company.DEMO_PASSWORD,
            },
        )

        queries = {"n": 0}
        event.listen(
            engine, "before_cursor_execute", lambda *a: queries.__setitem__("n", queries["n"] + 1)
        )

        timings = []
        for path in ("/my-day", "/admin/people/", "/admin/people/?q=fischer", "/admin/audit/"):
            body = client.get(path).get_data()
            queries["n"] = 0
            client.get(path)
            per_page = queries["n"]
            timing = measure(f"{path} ({per_page} SQL)", lambda p=path: client.get(p))
            bodies[str(len(timings))] = body
            timings.append((timing, f"/__baseline/{len(timings)}", len(body)))

        for timing, route, size in timings:
            base = measure(f"baseline, same {size // 1024} kB", lambda r=route: client.get(r))
            report(base, [timing])

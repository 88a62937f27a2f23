"""The only module that reads or writes HX-* headers: page versus fragment, redirects, events."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, make_response, redirect, render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def wants_fragment() -> bool:
    """A fragment only for an htmx request that is neither boosted nor a history restore."""
    return (
        is_htmx()
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render(page: str, fragment: str | None = None, status: int = 200, **context: Any) -> Response:
    """Render the page, or only its fragment (a template the page includes) for htmx requests."""
    template = fragment if fragment and wants_fragment() else page
    return make_response(render_template(template, **context), status)


def redirect_to(url: str) -> Response:
    """After a successful POST: HX-Redirect for htmx, 303 See Other for plain forms."""
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)


def refresh(status: int = 204) -> Response:
    response = make_response("", status)
    response.headers["HX-Refresh"] = "true"
    return response


def trigger(response: Response, event: str, detail: Any = None) -> Response:
    existing = json.loads(response.headers.get("HX-Trigger", "{}") or "{}")
    existing[event] = detail if detail is not None else True
    response.headers["HX-Trigger"] = json.dumps(existing)
    return response


def add_vary(response: Response) -> Response:
    response.vary.add("HX-Request")
    return response


def retarget(response: Response, selector: str, swap: str = "innerHTML") -> Response:
    """Send this answer somewhere other than the element that asked (e.g. a refusal to the panel)."""
    if is_htmx():
        response.headers["HX-Retarget"] = selector
        response.headers["HX-Reswap"] = swap
    return response


def push_url(response: Response, url: str) -> Response:
    response.headers["HX-Push-Url"] = url
    return response

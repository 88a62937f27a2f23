"""Read the forms of a page as a browser would submit them: action, method and default values."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (name, value) of submits


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.current: Form | None = None
        self.select: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.current = Form(a.get("action", ""), a.get("method", "get").lower())
            self.forms.append(self.current)
            return
        form = self.current
        if form is None:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    form.fields[name] = a.get("value", "on")
                elif kind == "radio":
                    form.fields.setdefault(name, a.get("value", "on"))
            elif kind == "submit":
                form.buttons.append((name, a.get("value", "")))
            elif kind not in ("file", "image", "reset", "button"):
                form.fields[name] = a.get("value", "")
        elif tag == "button" and name and a.get("type", "submit") == "submit":
            form.buttons.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self.select = name
        elif tag == "option" and self.select:
            value = a.get("value", "")
            if "selected" in a or self.select not in form.fields:
                form.fields[self.select] = value
        elif tag == "textarea" and name:
            self.textarea = name
            form.fields[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.current = None
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data: str) -> None:
        if self.current is not None and self.textarea:
            self.current.fields[self.textarea] += data


def forms_of(page: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(page)
    return parser.forms


def form_posting_to(page: str, action_part: str) -> Form | None:
    """The first POST form whose action contains `action_part`."""
    for form in forms_of(page):
        if form.method == "post" and action_part in html.unescape(form.action):
            return form
    return None

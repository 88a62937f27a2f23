"""Single sign-on in a real browser, against a real OpenID Connect provider (pytest-iam's Canaille).

Foyer runs on 127.0.0.1 and the provider on localhost, each on its own port: two sites, as in
production. The person clicks "Sign in with Acme ID", types their username and password into the
provider's own pages, grants consent there, and comes back signed in; signing out of Foyer also
ends the session at the provider, whose end-session redirect brings them back to Foyer."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from portal import create_app
from portal.schema import upgrade
from tests.browser import sso_provider
from tests.browser.conftest import LiveServer, ServerErrors
from tests.browser.live import serve
from tests.browser.sso_provider import new_credentials, provider_person, register_foyer

pytestmark = pytest.mark.browser

PROVIDER_NAME = "Acme ID"
iam_server = sso_provider.iam_server  # the provider, for this module only


@pytest.fixture
def live_server(
    request: pytest.FixtureRequest, tmp_path: Any, iam_server: Any
) -> Iterator[LiveServer]:
    """Overrides the demo company's server: an empty Foyer set up for single sign-on with the
    provider. Indirect parameters are extra settings, e.g. {"password_login": False}."""
    credentials = new_credentials()
    app = create_app(
        {
            "TESTING": True,
            "database_url": f"sqlite:///{tmp_path / 'foyer.sqlite3'}",
            "instance_path": tmp_path / "instance",
            "secret_key": "browser-" + secrets.token_hex(16),
            "RATELIMIT_ENABLED": False,
            "oidc_discovery_url": iam_server.url + ".well-known/openid-configuration",
            "oidc_client_id": credentials.client_id,
            "oidc_client_secret": credentials.client_secret,
            "oidc_scopes": "openid email profile groups",
            "oidc_provider_name": PROVIDER_NAME,
            **getattr(request, "param", {}),
        }
    )
    upgrade(app.extensions["foyer.engine"])
    errors = ServerErrors()
    portal_log = logging.getLogger("portal")
    portal_log.addHandler(errors)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    url, server = serve(app)
    # A registration per Foyer: its URL has a fresh port (and see foyer_at_provider in test_sso.py).
    register_foyer(iam_server, url, credentials)
    yield LiveServer(url, errors)
    server.shutdown()
    server.server_close()
    portal_log.removeHandler(errors)
    app.extensions["foyer.engine"].dispose()


def at_foyer(live_server: LiveServer, path: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(live_server.url + path) + r"(\?.*)?$")


def overlook_the_providers_missing_assets(page: Any, watchdog: Any, provider: str) -> None:
    """Canaille's wheel lacks the Lato fonts its stylesheet names (fomanticui/.../fonts/LatoLatin-*);
    Chromium reports each 404 as a console error, whenever a font load starts before the next
    navigation. Those are the provider's files, not Foyer's: only they are let pass."""
    page.remove_listener("console", watchdog.on_console)

    def on_console(message: Any) -> None:
        if not (message.location or {}).get("url", "").startswith(f"{provider}/static/"):
            watchdog.on_console(message)

    page.on("console", on_console)


def test_signing_in_and_out_through_the_providers_own_pages(
    page, live_server, iam_server, watchdog
):
    person = provider_person(iam_server, "Sam Sso")
    provider = iam_server.url.rstrip("/")
    overlook_the_providers_missing_assets(page, watchdog, provider)

    page.goto("/sign-in")
    sso_button = page.get_by_role("link", name=f"Sign in with {PROVIDER_NAME}")
    expect(sso_button).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()  # password sign-in is offered too
    sso_button.click()

    # The provider's login page, two steps: who, then the password.
    page.wait_for_url(f"{provider}/login**")
    page.get_by_label("Login").fill(person.user_name)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{provider}/auth/password**")
    page.get_by_label("Password", exact=True).fill(person.password)
    page.get_by_role("button", name="Sign in").click()

    # First time with Foyer: the provider asks for consent.
    page.wait_for_url(f"{provider}/oauth/authorize**")
    expect(page.get_by_text("The application Foyer is requesting access to:")).to_be_visible()
    page.get_by_role("button", name="Accept").click()

    page.wait_for_url(at_foyer(live_server, "/my-day"))
    expect(page).to_have_title("My day · Foyer")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Good \w+, Sam$"))
    menu = page.locator("details.usermenu > summary")
    expect(menu).to_have_accessible_name(re.compile("Sam Sso"))

    # Signing out goes through the provider's end-session endpoint and back to Foyer.
    navigations: list[str] = []
    page.on("request", lambda r: navigations.append(r.url) if r.is_navigation_request() else None)
    menu.click()
    page.get_by_role("button", name="Sign out").click()
    try:
        page.wait_for_url(at_foyer(live_server, "/sign-in"))
        came_back = True
    except PlaywrightTimeoutError:
        came_back = False
    if not came_back:
        pytest.fail(
            f"signing out did not come back to Foyer's sign-in page (still at {page.url}): "
            + "; ".join(watchdog.take()),
            pytrace=False,
        )
    end_session = [u for u in navigations if u.startswith(f"{provider}/oauth/end_session?")]
    assert len(end_session) == 1, navigations
    asked = parse_qs(urlsplit(end_session[0]).query)
    assert asked["post_logout_redirect_uri"] == [f"{live_server.url}/sign-in"]
    assert asked["id_token_hint"][0].count(".") == 2
    expect(page.get_by_role("status")).to_contain_text("You have signed out.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.goto("/my-day")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/my-day$"))

    # Signed out at the provider too: starting again asks for the username once more.
    page.get_by_role("link", name=f"Sign in with {PROVIDER_NAME}").click()
    page.wait_for_url(f"{provider}/login**")
    expect(page.get_by_label("Login")).to_be_visible()


@pytest.mark.parametrize("live_server", [{"password_login": False}], indirect=True)
def test_with_password_sign_in_off_only_the_sso_button_is_shown(page, live_server):
    page.goto("/sign-in")

    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_role("link", name=f"Sign in with {PROVIDER_NAME}")).to_be_visible()
    expect(page.locator("#sign-in input:not([type=hidden])")).to_have_count(0)
    expect(page.locator("#sign-in form")).to_have_count(0)
    expect(page.get_by_role("button")).to_have_count(0)
    expect(page.get_by_text("or with a password")).to_have_count(0)

"""Single sign-on against a real OpenID Connect provider: pytest-iam's Canaille, over loopback HTTP.

The browser's side of the flow is played by `requests` against the provider's real port and by the
Flask test client against Foyer; Foyer itself fetches discovery, the token and the JWKS from the
provider over HTTP. To change a token in transit, a small forwarding proxy sits between Foyer and
the provider and edits the token endpoint's answer; nothing inside Authlib is mocked."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from canaille import create_app as create_provider_app
from canaille.backends import Backend
from joserfc import jwk, jwt
from pytest_iam import Server
from sqlalchemy import func, select

from integrations.oidc import LINK_USED, NOT_VERIFIED, UNREACHABLE
from portal.models import AuditEvent, ExternalIdentity, LoginSession, Role, RoleGrant, User
from portal.services import accounts
from portal.services.audit import Actor
from tests import factories

FOYER = "http://localhost"  # the Flask test client's host
REDIRECT_URI = f"{FOYER}/sso/callback"
SIGNED_OUT_URI = f"{FOYER}/sign-in"
ADMINS, BERLIN_FACILITIES = "foyer-admins", "facilities-berlin"
GROUP_ROLES = f"{ADMINS}=admin; {BERLIN_FACILITIES}=coordinator@berlin"
CANCELLED = "Sign-in was cancelled, or the provider refused access to this account."


# --- the provider ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iam_server(iam_configuration: dict[str, Any], iam_server_port: int) -> Iterator[Server]:
    """pytest-iam's provider, for this module only. The plugin's own fixture keeps Canaille's app
    context pushed until the session ends, so later tests' `current_app` (Flask CLI commands, for
    one) became Canaille instead of Foyer. Its AUTHLIB_INSECURE_TRANSPORT is dropped too: Authlib
    allows plain http to loopback anyway, so Foyer runs here with its production checks."""
    os.environ.pop("AUTHLIB_INSECURE_TRANSPORT", None)
    provider = create_provider_app(
        config=iam_configuration, env_file=".pytest-iam.env", env_prefix="PYTEST_IAM_"
    )
    server = Server(provider, iam_server_port, Backend.instance)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    thread.join()


def register_client(iam_server: Any, audience: Any = None) -> Any:
    """A confidential client at the provider, as an administrator would register Foyer."""
    with iam_server.app.app_context():
        client = iam_server.models.Client(
            client_id=f"foyer-{secrets.token_hex(4)}",
            client_secret=secrets.token_urlsafe(32),
            client_name="Foyer",
            redirect_uris=[REDIRECT_URI],
            post_logout_redirect_uris=[SIGNED_OUT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="client_secret_basic",
            scope=["openid", "email", "profile", "groups"],
        )
        iam_server.backend.save(client)
        # Canaille puts the client's `audience` into the ID token's aud claim.
        client.audience = [audience or client]
        iam_server.backend.save(client)
    return client


@pytest.fixture
def foyer_at_provider(iam_server: Any) -> Any:
    # A registration per test: Canaille's in-memory backend ORs the filters of a query, so the token
    # endpoint could pick up a code another test left unredeemed for the same client.
    return register_client(iam_server)


@pytest.fixture(scope="module")
def provider_groups(iam_server: Any) -> dict[str, Any]:
    return {
        name: iam_server.random_group(display_name=name) for name in (ADMINS, BERLIN_FACILITIES)
    }


def provider_user(iam_server: Any, name: str = "Sam Sso", **fields: Any) -> Any:
    """A person at the provider who has consented to share their details with Foyer (with every
    registered client, so also with the variants that app_overrides registers)."""
    handle = f"sam-{secrets.token_hex(4)}"
    values: dict[str, Any] = {"emails": [f"{handle}@example.com"], **fields}
    user = iam_server.random_user(user_name=handle, formatted_name=name, **values)
    iam_server.consent(user)
    return user


def change_at_provider(iam_server: Any, user: Any, **fields: Any) -> None:
    with iam_server.app.app_context():
        iam_server.backend.update(user, **fields)
        iam_server.backend.save(user)


@pytest.fixture
def person(iam_server: Any, app_overrides: Any) -> Iterator[Any]:
    """Signed in at the provider, so the authorize endpoint answers at once. (After app_overrides,
    so that the consent covers whichever client registration the test's variant uses.)"""
    user = provider_user(iam_server)
    iam_server.login(user)
    yield user
    iam_server.logout()


def email_of(provider_person: Any) -> str:
    return provider_person.emails[0]


class TokenProxy:
    """Forwards Foyer's back-channel calls to the provider, over real HTTP. Its discovery document
    names the proxy as token endpoint, and `edit_id_token` may rewrite the ID token on the way."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.edit_id_token: Callable[[str], str] | None = None
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in {"authorization", "content-type", "accept"}
                }
                answer = requests.request(
                    self.command, proxy.upstream + self.path, data=body, headers=headers, timeout=10
                )
                content = proxy._edit(self.path, answer)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        return Handler

    def _edit(self, path: str, answer: requests.Response) -> bytes:
        if path.startswith("/.well-known/openid-configuration"):
            metadata = answer.json()
            token_path = urlsplit(metadata["token_endpoint"]).path
            metadata["token_endpoint"] = self.url + token_path
            return json.dumps(metadata).encode()
        if path.startswith("/oauth/token") and answer.ok and self.edit_id_token:
            token = answer.json()
            token["id_token"] = self.edit_id_token(token["id_token"])
            return json.dumps(token).encode()
        return answer.content

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def token_proxy(iam_server: Any) -> Iterator[TokenProxy]:
    proxy = TokenProxy(iam_server.url)
    yield proxy
    proxy.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- Foyer's settings, per test ----------------------------------------------------------------


def variant(name: str) -> pytest.MarkDecorator:
    """Runs a test against a variant of the OIDC settings (see app_overrides)."""
    return pytest.mark.parametrize("app_overrides", [name], indirect=True)


@pytest.fixture
def app_overrides(
    request: pytest.FixtureRequest, iam_server: Any, foyer_at_provider: Any, provider_groups: Any
) -> dict[str, Any]:
    variant = getattr(request, "param", "direct")
    client = foyer_at_provider
    discovery = iam_server.url + ".well-known/openid-configuration"
    overrides: dict[str, Any] = {"oidc_group_roles": GROUP_ROLES}
    if variant == "proxy":
        discovery = request.getfixturevalue("token_proxy").url + "/.well-known/openid-configuration"
    elif variant == "other-audience":
        # Foyer's own registration, but the provider issues its ID tokens for another application.
        client = register_client(iam_server, audience=register_client(iam_server))
    elif variant == "down":
        discovery = f"http://127.0.0.1:{closed_port()}/.well-known/openid-configuration"
    elif variant == "sso-only":
        overrides["password_login"] = False
    return {
        "oidc_discovery_url": discovery,
        "oidc_client_id": client.client_id,
        "oidc_client_secret": client.client_secret,
        "oidc_scopes": "openid email profile groups",
        "oidc_provider_name": "Acme ID",
        **overrides,
    }


# --- the browser -------------------------------------------------------------------------------


def start(browser: Any, next_path: str | None = None) -> str:
    """Foyer's redirect to the provider's authorize endpoint."""
    response = browser.get(
        "/sso/start" + (f"?{urlencode({'next': next_path})}" if next_path else "")
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response.headers["Location"]


def at_provider(authorize_url: str) -> str:
    """The browser at the provider (signed in there, consent given): the redirect back to Foyer."""
    answer = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text[:500]
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return location


def sign_in_via_sso(browser: Any, next_path: str | None = None) -> Any:
    return browser.get(at_provider(start(browser, next_path)))


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    return parts._replace(query=urlencode({**query(url), **changes})).geturl()


def signed_in(browser: Any) -> bool:
    return browser.get("/my-day").status_code == 200


def audit_actions(db: Any) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def assert_refused(response: Any, status: int, message: str, db: Any) -> None:
    """A clear message on the sign-in page, the right status, and an audit record."""
    page = response.get_data(as_text=True)
    assert response.status_code == status, page[:800]
    assert 'role="alert"' in page and html.escape(message) in page, page[:2000]
    assert "Sign in with Acme ID" in page  # the way to start again
    assert audit_actions(db)[-1] == "sso.failed"


def last_audit_detail(db: Any) -> str:
    after = db.scalar(select(AuditEvent.after).order_by(AuditEvent.id.desc()).limit(1))
    return str((after or {}).get("detail", ""))


def foyer_user(db: Any, email: str) -> User | None:
    db.expire_all()
    return db.scalar(select(User).where(User.email == email))


# --- ID tokens edited in transit ---------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def edited_claims(id_token: str, **changes: Any) -> str:
    """New claims under the provider's original signature."""
    header, _, signature = id_token.split(".")
    return f"{header}.{_b64({**_claims(id_token), **changes})}.{signature}"


def unsigned(id_token: str, **changes: Any) -> str:
    """alg "none", without the at_hash claim (which cannot be computed for "none")."""
    claims = {k: v for k, v in {**_claims(id_token), **changes}.items() if k != "at_hash"}
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def resigned_by_provider(iam_server: Any, id_token: str, **changes: Any) -> str:
    """Signed again with the provider's own private key: a genuine signature on changed claims."""
    key = jwk.import_key(iam_server.app.config["CANAILLE_OIDC"]["ACTIVE_JWKS"][0])
    key.ensure_kid()
    header = json.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "=="))
    alg = header["alg"]
    return jwt.encode({"alg": alg, "kid": key.kid}, {**_claims(id_token), **changes}, key, [alg])


# --- 1. accounts just in time ------------------------------------------------------------------


def test_first_sign_in_creates_the_account_just_in_time(client, db, person, iam_server):
    email = email_of(person)
    assert foyer_user(db, email) is None

    response = sign_in_via_sso(client)

    assert response.status_code == 303
    assert response.headers["Location"].endswith("/my-day")
    page = client.get("/my-day").get_data(as_text=True)
    assert "Sam" in page and "My bookings today" in page
    user = foyer_user(db, email)
    assert user is not None and user.name == "Sam Sso" and user.password_hash is None
    identity = db.scalar(select(ExternalIdentity).where(ExternalIdentity.user_id == user.id))
    assert (identity.issuer, identity.subject) == (iam_server.url.rstrip("/"), person.user_name)
    assert db.scalar(select(LoginSession.method).where(LoginSession.user_id == user.id)) == "sso"
    assert {"user.created", "sso.linked", "login.succeeded"} <= set(audit_actions(db))


def test_next_sign_in_takes_a_changed_name_from_the_provider(client, app, db, person, iam_server):
    assert sign_in_via_sso(client).status_code == 303
    change_at_provider(iam_server, person, formatted_name="Samantha Sso-Berg")

    next_day = app.test_client()
    assert sign_in_via_sso(next_day).status_code == 303

    user = foyer_user(db, email_of(person))
    assert user.name == "Samantha Sso-Berg"
    assert "Samantha" in next_day.get("/my-day").get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(User)) == 1
    assert "user.updated_from_sso" in audit_actions(db)


def test_a_changed_email_at_the_provider_keeps_one_account(client, app, db, person, iam_server):
    assert sign_in_via_sso(client).status_code == 303
    first = foyer_user(db, email_of(person))
    change_at_provider(iam_server, person, emails=["sam.new-address@example.com"])

    assert sign_in_via_sso(app.test_client()).status_code == 303

    db.expire_all()
    assert db.scalar(select(func.count()).select_from(User)) == 1
    assert db.scalar(select(func.count()).select_from(ExternalIdentity)) == 1
    assert db.get(User, first.id).email == "sam.new-address@example.com"


def test_a_very_long_name_at_the_provider_is_shortened_not_a_500(client, db, iam_server):
    long_named = provider_user(iam_server, name="Maximiliane " * 20)
    iam_server.login(long_named)
    try:
        assert sign_in_via_sso(client).status_code == 303
    finally:
        iam_server.logout()

    user = foyer_user(db, email_of(long_named))
    assert user.name.startswith("Maximiliane Maximiliane") and len(user.name) <= 120


def test_sign_in_returns_to_the_page_asked_for_and_never_off_site(client, app, db, person):
    assert sign_in_via_sso(client, next_path="/account/").headers["Location"].endswith("/account/")
    off_site = sign_in_via_sso(app.test_client(), next_path="//evil.example/phish")
    assert off_site.headers["Location"].endswith("/my-day")


# --- 2. groups to roles ------------------------------------------------------------------------


def grants(db: Any, user: User) -> set[tuple[str, str | None, str]]:
    db.expire_all()
    rows = db.execute(
        select(RoleGrant.role, RoleGrant.site_id, RoleGrant.source).where(
            RoleGrant.user_id == user.id
        )
    )
    slugs = {s.id: s.slug for s in (factories.site(db, "berlin"), factories.site(db, "munich"))}
    return {(role, slugs.get(site_id), source) for role, site_id, source in rows}


def test_provider_groups_grant_roles_and_removing_a_group_withdraws_only_that_role(
    client, app, db, person, iam_server, provider_groups
):
    factories.site(db, "berlin")
    munich = factories.site(db, "munich")
    db.commit()
    change_at_provider(iam_server, person, groups=list(provider_groups.values()))

    assert sign_in_via_sso(client).status_code == 303

    user = foyer_user(db, email_of(person))
    assert grants(db, user) == {("admin", None, "sso"), ("coordinator", "berlin", "sso")}
    assert client.get("/admin/people/").status_code == 200
    # An administrator also makes them coordinator in Munich, by hand.
    accounts.grant_role(db, Actor.system("tests"), user, Role.COORDINATOR, munich)
    db.commit()

    change_at_provider(iam_server, person, groups=[provider_groups[BERLIN_FACILITIES]])
    later = app.test_client()
    assert sign_in_via_sso(later).status_code == 303

    assert grants(db, user) == {
        ("coordinator", "berlin", "sso"),
        ("coordinator", "munich", "manual"),
    }
    assert later.get("/admin/people/").status_code in {403, 404}
    assert "role.revoked" in audit_actions(db)


def test_a_broken_group_mapping_stops_the_app_at_start(tmp_path):
    from tests.conftest import make_test_app

    with pytest.raises(ValueError, match="bad group-to-role mapping"):
        make_test_app(tmp_path, "sqlite://", oidc_group_roles=f"{ADMINS}=superuser")


# --- 3. PKCE, state and nonce ------------------------------------------------------------------


def _stored_flow(browser: Any, state: str) -> dict[str, Any]:
    with browser.session_transaction() as cookie_session:
        return dict(cookie_session[f"_state_sso_{state}"]["data"])


def test_the_authorize_redirect_carries_pkce_s256_state_and_nonce(
    client, iam_server, foyer_at_provider
):
    location = start(client)

    assert location.startswith(iam_server.url + "oauth/authorize?")
    params = query(location)
    assert params["response_type"] == "code"
    assert params["client_id"] == foyer_at_provider.client_id
    assert params["redirect_uri"] == REDIRECT_URI
    assert "openid" in params["scope"].split()
    assert params["code_challenge_method"] == "S256"
    assert len(params["state"]) >= 20 and len(params["nonce"]) >= 20
    # The challenge is the SHA-256 of a verifier that stays in this browser's session.
    flow = _stored_flow(client, params["state"])
    digest = hashlib.sha256(flow["code_verifier"].encode()).digest()
    assert params["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert flow["nonce"] == params["nonce"]
    again = query(start(client))
    assert {again["state"], again["nonce"], again["code_challenge"]}.isdisjoint(params.values())


def test_a_code_is_useless_without_the_pkce_verifier_of_the_browser_that_asked(client, db, person):
    location = start(client)
    state = query(location)["state"]
    with client.session_transaction() as cookie_session:
        flow = cookie_session[f"_state_sso_{state}"]
        flow["data"]["code_verifier"] = secrets.token_urlsafe(48)
        cookie_session[f"_state_sso_{state}"] = flow

    response = client.get(at_provider(location))

    assert_refused(response, 400, NOT_VERIFIED, db)
    assert not signed_in(client)
    assert foyer_user(db, email_of(person)) is None


# --- 4. bad input ------------------------------------------------------------------------------


def test_a_callback_with_a_state_this_browser_never_got_is_refused(client, app, db, person):
    callback = at_provider(start(client))

    forged = client.get(with_query(callback, state=secrets.token_urlsafe(30)))
    assert_refused(forged, 400, LINK_USED, db)
    assert not signed_in(client)
    # Someone else's genuine callback, opened in a browser that never started a sign-in
    # (login CSRF: being signed in to the attacker's account).
    victim = app.test_client()
    assert_refused(victim.get(callback), 400, LINK_USED, db)
    assert not signed_in(victim)
    assert foyer_user(db, email_of(person)) is None


def test_a_callback_url_used_twice_is_refused_the_second_time(client, app, db, person):
    callback = at_provider(start(client))
    cookie_before = client.get_cookie("foyer_session").value

    assert client.get(callback).status_code == 303
    assert_refused(client.get(callback), 400, LINK_USED, db)

    # Replayed together with the browser's cookie from before: the provider will not redeem its
    # authorization code twice.
    thief = app.test_client()
    thief.set_cookie("foyer_session", cookie_before)
    assert_refused(thief.get(callback), 400, NOT_VERIFIED, db)
    assert not signed_in(thief)


def the_boss(db: Any, iam_server: Any) -> User:
    """An administrator who signs in through the provider as subject "the-boss"."""
    boss = factories.user(db, email="boss@example.com", admin=True)
    db.add(ExternalIdentity(user=boss, issuer=iam_server.url.rstrip("/"), subject="the-boss"))
    db.commit()
    return boss


@variant("proxy")
def test_the_proxy_alone_changes_nothing(client, db, person, token_proxy):
    """The control for the tampering tests below: an untouched token through the proxy works."""
    assert sign_in_via_sso(client).status_code == 303
    assert foyer_user(db, email_of(person)) is not None


@variant("proxy")
def test_an_id_token_edited_in_transit_is_refused(client, db, person, token_proxy, iam_server):
    the_boss(db, iam_server)
    token_proxy.edit_id_token = lambda token: edited_claims(
        token, sub="the-boss", email="boss@example.com"
    )

    assert_refused(sign_in_via_sso(client), 400, NOT_VERIFIED, db)
    assert not signed_in(client)


@variant("proxy")
def test_an_unsigned_id_token_is_refused_although_the_provider_advertises_alg_none(
    client, db, person, token_proxy, iam_server
):
    discovery = requests.get(iam_server.url + ".well-known/openid-configuration", timeout=10)
    assert "none" in discovery.json()["id_token_signing_alg_values_supported"]
    the_boss(db, iam_server)
    token_proxy.edit_id_token = lambda token: unsigned(
        token, sub="the-boss", email="boss@example.com"
    )

    assert_refused(sign_in_via_sso(client), 400, NOT_VERIFIED, db)
    assert not signed_in(client)


@variant("proxy")
def test_an_expired_id_token_is_refused(client, db, person, token_proxy, iam_server):
    an_hour_ago = int(time.time()) - 3600
    token_proxy.edit_id_token = lambda token: resigned_by_provider(
        iam_server, token, iat=an_hour_ago - 3600, auth_time=an_hour_ago - 3600, exp=an_hour_ago
    )

    assert_refused(sign_in_via_sso(client), 400, NOT_VERIFIED, db)
    assert not signed_in(client)
    assert "ExpiredTokenError" in last_audit_detail(db)


@variant("other-audience")
def test_an_id_token_issued_for_another_application_is_refused(client, db, person):
    response = sign_in_via_sso(client)

    assert_refused(response, 400, NOT_VERIFIED, db)
    assert not signed_in(client)
    assert "aud" in str(last_audit_detail(db))


@variant("proxy")
def test_an_id_token_for_another_application_is_refused_even_naming_foyer_as_its_party(
    client, db, person, token_proxy, iam_server, foyer_at_provider
):
    # OIDC Core 3.1.3.7: the aud claim must contain Foyer's client_id; azp does not make up for it.
    token_proxy.edit_id_token = lambda token: resigned_by_provider(
        iam_server, token, aud=["payroll"], azp=foyer_at_provider.client_id
    )

    assert_refused(sign_in_via_sso(client), 400, NOT_VERIFIED, db)
    assert not signed_in(client)


@variant("down")
def test_a_provider_that_is_down_gets_a_clear_503(client, db):
    response = client.get("/sso/start")

    assert_refused(response, 503, UNREACHABLE, db)


@variant("proxy")
def test_a_provider_that_goes_down_during_sign_in_gets_a_clear_503(client, db, person, token_proxy):
    callback = at_provider(start(client))
    token_proxy.close()

    assert_refused(client.get(callback), 503, UNREACHABLE, db)
    assert not signed_in(client)


def test_declining_at_the_provider_is_explained(client, db, iam_server):
    stranger = provider_user(iam_server)
    iam_server.login(stranger)
    try:
        # The consent page at the provider, answered "deny".
        answer = requests.post(start(client), data={"answer": "deny"}, allow_redirects=False)
    finally:
        iam_server.logout()
    callback = answer.headers["Location"]
    assert callback.startswith(REDIRECT_URI) and query(callback)["error"] == "access_denied"

    assert_refused(client.get(callback), 403, CANCELLED, db)
    assert not signed_in(client)


# --- 5. who may not sign in --------------------------------------------------------------------


def test_a_deactivated_person_is_refused_at_sso_sign_in(client, app, db, person):
    assert sign_in_via_sso(client).status_code == 303
    user = foyer_user(db, email_of(person))
    accounts.deactivate_user(db, Actor.system("tests"), user)
    db.commit()
    assert not signed_in(client)  # their open session ended with the deactivation

    response = sign_in_via_sso(app.test_client())

    assert_refused(response, 403, "This account is deactivated.", db)
    assert "login.refused_inactive" in audit_actions(db)


def test_an_existing_account_is_not_linked_by_an_unconfirmed_email(client, db, person):
    factories.user(db, email=email_of(person), name="Local Lee")
    db.commit()

    response = sign_in_via_sso(client)

    assert_refused(response, 403, "the provider did not confirm the address", db)
    assert "sso.link_refused" in audit_actions(db)
    assert db.scalar(select(func.count()).select_from(ExternalIdentity)) == 0
    assert not signed_in(client)


def test_a_provider_account_without_an_email_is_refused(client, db, iam_server):
    nameless = provider_user(iam_server, emails=[])
    iam_server.login(nameless)
    try:
        response = sign_in_via_sso(client)
    finally:
        iam_server.logout()

    assert_refused(response, 403, "sent no valid e-mail address", db)
    assert db.scalar(select(func.count()).select_from(User)) == 0


# --- 6. signing out ----------------------------------------------------------------------------


def test_sso_sign_out_also_ends_the_session_at_the_provider(
    client, db, person, iam_server, foyer_at_provider
):
    assert sign_in_via_sso(client).status_code == 303
    id_token = db.scalar(select(LoginSession.sso_id_token).where(LoginSession.method == "sso"))
    assert id_token

    response = client.submit("/sign-out")

    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(iam_server.url + "oauth/end_session?")
    params = query(location)
    assert params["id_token_hint"] == id_token
    assert params["post_logout_redirect_uri"] == SIGNED_OUT_URI
    assert params["client_id"] == foyer_at_provider.client_id
    assert not signed_in(client)
    # The provider accepts the hint and sends the browser back to Foyer's sign-in page.
    answer = requests.get(location, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text[:500]
    assert answer.headers["Location"].startswith(SIGNED_OUT_URI)


def test_password_sign_out_stays_local(client, employee):
    client.sign_in("erin@example.com")

    response = client.submit("/sign-out")

    assert response.status_code in {302, 303}
    assert urlsplit(response.headers["Location"]).path == "/sign-in"
    assert not signed_in(client)


# --- 7. the sign-in page -----------------------------------------------------------------------


def test_the_sign_in_page_offers_single_sign_on_beside_the_password(client):
    page = client.get("/sign-in").get_data(as_text=True)

    assert "Sign in with Acme ID" in page
    assert 'type="password"' in page


@variant("sso-only")
def test_with_password_sign_in_off_the_page_offers_only_single_sign_on(client, employee):
    page = client.get("/sign-in").get_data(as_text=True)

    assert "Sign in with Acme ID" in page
    assert 'type="password"' not in page and 'name="email"' not in page
    refused = client.submit(
        "/sign-in", {"email": "erin@example.com", "password": factories.PASSWORD}
    )
    assert refused.status_code == 403
    assert "Password sign-in is turned off here. Use single sign-on." in refused.get_data(
        as_text=True
    )
    assert not signed_in(client)


def test_two_first_sso_sign_ins_of_one_person_make_one_account(fresh_engine):
    """Two tabs finish the provider's flow at the same moment: one account, no error."""
    import threading

    from sqlalchemy import func, select

    from portal.db import session_factories
    from portal.models import ExternalIdentity, User
    from portal.services import sso
    from portal.services.audit import Actor

    _reader, writer = session_factories(fresh_engine)
    claims = {"sub": "abc-123", "email": "twin@example.com", "name": "Tara Twin"}
    barrier = threading.Barrier(2)
    errors: list[str] = []

    def sign_in() -> None:
        barrier.wait()
        try:
            with writer() as session, session.begin():
                sso.sign_in_from_claims(
                    session,
                    Actor.system("race"),
                    issuer="https://id.example",
                    claims=claims,
                    group_roles=[],
                )
        except Exception as exc:  # noqa: BLE001 - any error is the failure we look for
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=sign_in) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with writer() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1
        assert session.scalar(select(func.count()).select_from(ExternalIdentity)) == 1

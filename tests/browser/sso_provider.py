"""pytest-iam's Canaille as the OpenID Connect provider for the browser tests, on loopback HTTP.

The same approach as tests/test_sso.py: a module-scoped provider that does not keep Canaille's app
context pushed (the plugin's own `iam_server` fixture does, and then `current_app` is Canaille in
every later test). Unlike the non-browser tests, nobody is signed in at the provider beforehand:
people get a password and type it into the provider's own login form."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from canaille import create_app as create_provider_app
from canaille.backends import Backend
from pytest_iam import Server


@pytest.fixture(scope="module")
def iam_server(iam_configuration: dict[str, Any], iam_server_port: int) -> Iterator[Server]:
    """The provider for one test module, served from a daemon thread (see tests/test_sso.py)."""
    os.environ.pop("AUTHLIB_INSECURE_TRANSPORT", None)
    provider = create_provider_app(
        config=iam_configuration, env_file=".pytest-iam.env", env_prefix="PYTEST_IAM_"
    )
    server = Server(provider, iam_server_port, Backend.instance)
    thread = threading.Thread(target=server.httpd.serve_forever, name="iam-live", daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    thread.join()


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str


def new_credentials() -> ClientCredentials:
    """Credentials chosen up front: Foyer needs them at start, the provider its URL, known later."""
    return ClientCredentials(f"foyer-{secrets.token_hex(4)}", secrets.token_urlsafe(32))


def register_foyer(iam_server: Server, foyer_url: str, credentials: ClientCredentials) -> Any:
    """A confidential client at the provider, as an administrator would register Foyer at
    `foyer_url`: the callback and the page to come back to after signing out."""
    with iam_server.app.app_context():
        client = iam_server.models.Client(
            client_id=credentials.client_id,
            client_secret=credentials.client_secret,
            client_name="Foyer",
            redirect_uris=[f"{foyer_url}/sso/callback"],
            post_logout_redirect_uris=[f"{foyer_url}/sign-in"],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="client_secret_basic",
            scope=["openid", "email", "profile", "groups"],
        )
        iam_server.backend.save(client)
        # Canaille puts the client's `audience` into the ID token's aud claim.
        client.audience = [client]
        iam_server.backend.save(client)
    return client


@dataclass(frozen=True)
class ProviderPerson:
    user_name: str
    password: str
    name: str
    email: str


def provider_person(iam_server: Server, name: str) -> ProviderPerson:
    """Someone with an account and a password at the provider, who has not yet consented to share
    anything with Foyer and is not signed in there."""
    handle = f"sam-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    email = f"{handle}@example.com"
    # random_user draws a random preferred language, which the provider's pages then speak
    iam_server.random_user(
        user_name=handle,
        formatted_name=name,
        emails=[email],
        password=password,
        preferred_language="en",
    )
    return ProviderPerson(handle, password, name, email)

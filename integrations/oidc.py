"""OpenID Connect sign-in through Authlib: discovery, authorization code with PKCE (S256), state and
nonce, ID-token signature checked against the provider's JWKS, and RP-initiated sign-out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Flask, Response
from joserfc.errors import JoseError

log = logging.getLogger("portal.sso")
oauth = OAuth()
CLIENT_NAME = "sso"


class SsoError(Exception):
    """Sign-in could not complete; `message` is safe to show, `status` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class SsoResult:
    issuer: str
    claims: dict[str, Any]
    id_token: str


def configure_oidc(app: Flask) -> None:
    settings = app.extensions["foyer.settings"]
    oauth.init_app(app)
    if settings.oidc_enabled:
        oauth.register(
            CLIENT_NAME,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret or None,
            server_metadata_url=settings.oidc_discovery_url,
            client_kwargs={
                "scope": settings.oidc_scopes,
                "code_challenge_method": "S256",
                "timeout": 10,
            },
        )


def _client() -> Any:
    client = oauth.create_client(CLIENT_NAME)
    if client is None:
        raise SsoError("Single sign-on is not configured here.", 404)
    return client


def start_sign_in(redirect_uri: str) -> Response:
    """Redirects to the provider; state, nonce and the PKCE verifier go into the session."""
    try:
        return _client().authorize_redirect(redirect_uri)
    except requests.RequestException as exc:
        raise SsoError(
            "The sign-in provider cannot be reached right now. Try again in a minute, or tell IT.",
            503,
            str(exc),
        ) from exc


def finish_sign_in() -> SsoResult:
    """Exchanges the code and verifies the ID token; every failure becomes an SsoError."""
    client = _client()
    try:
        token = client.authorize_access_token()
    except requests.RequestException as exc:
        raise SsoError(
            "The sign-in provider cannot be reached right now. Try again in a minute, or tell IT.",
            503,
            str(exc),
        ) from exc
    except (AuthlibBaseError, JoseError, ValueError, KeyError, RuntimeError) as exc:
        log.warning("SSO callback refused: %s", exc)
        raise SsoError(
            "That sign-in could not be verified, so it was refused. Please start again.",
            400,
            f"{type(exc).__name__}: {exc}",
        ) from exc
    userinfo = token.get("userinfo")
    id_token = token.get("id_token")
    if not userinfo or not id_token:
        raise SsoError("The provider sent no ID token; sign-in refused.", 400, "no id_token")
    return SsoResult(issuer=str(userinfo.get("iss", "")), claims=dict(userinfo), id_token=id_token)


def end_session_url(id_token: str | None, post_logout_redirect_uri: str) -> str | None:
    """The provider's sign-out URL when it supports RP-initiated logout, else None."""
    if oauth.create_client(CLIENT_NAME) is None:
        return None
    try:
        result = _client().create_logout_url(
            post_logout_redirect_uri=post_logout_redirect_uri,
            id_token_hint=id_token,
            client_id=_client().client_id,
        )
    except (requests.RequestException, RuntimeError) as exc:
        log.info("provider sign-out skipped: %s", exc)
        return None
    return result["url"] if isinstance(result, dict) else str(result)

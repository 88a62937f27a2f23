"""OpenID Connect sign-in through Authlib: discovery, authorization code with PKCE (S256), state and
nonce, ID-token signature checked against the provider's JWKS, and RP-initiated sign-out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError
from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from flask import Flask, Response, current_app, request
from joserfc.errors import JoseError

log = logging.getLogger("portal.sso")
CLIENT_NAME = "sso"
EXTENSION = "foyer.oidc"

# Public-key signatures only. Discovery documents may advertise "none" (Canaille does), and Authlib
# would then accept an unsigned ID token; HMAC algorithms would need the client secret as the key.
ID_TOKEN_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA", "Ed25519", "Ed448",
)  # fmt: skip

UNREACHABLE = "The sign-in provider cannot be reached right now. Try again in a minute, or tell IT."
NOT_VERIFIED = "That sign-in could not be verified, so it was refused. Please start again."
LINK_USED = "This sign-in link was already used or has expired. Please start again."

# What the provider may send back instead of a code (RFC 6749 4.1.2.1, OIDC Core 3.1.2.6).
# Its error_description is not shown: anyone can put text into that URL.
PROVIDER_ERRORS: dict[str, tuple[str, int]] = {
    "access_denied": (
        "Sign-in was cancelled, or the provider refused access to this account.",
        403,
    ),
    "temporarily_unavailable": (UNREACHABLE, 503),
    "server_error": (UNREACHABLE, 503),
}
PROVIDER_REFUSED = (
    "The sign-in provider refused the request. Tell IT if this keeps happening.",
    400,
)


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


class ProviderApp(FlaskOAuth2App):
    """Authlib's Flask client, except that the ID-token algorithms are not taken on trust from the
    provider's discovery document."""

    def load_server_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = super().load_server_metadata()
        advertised = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        allowed = [alg for alg in advertised if alg in ID_TOKEN_ALGORITHMS]
        # An empty list would make joserfc fall back to its own defaults; RS256 is what OIDC requires.
        metadata["id_token_signing_alg_values_supported"] = allowed or ["RS256"]
        return metadata


def configure_oidc(app: Flask) -> None:
    # One registry per app: Authlib caches clients by name, so a module-level registry would hand a
    # second app (another test, another configuration) the first app's provider and credentials.
    settings = app.extensions["foyer.settings"]
    registry = OAuth(app)
    app.extensions[EXTENSION] = registry
    if settings.oidc_enabled:
        registry.register(
            CLIENT_NAME,
            client_cls=ProviderApp,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret or None,
            server_metadata_url=settings.oidc_discovery_url,
            client_kwargs={
                "scope": settings.oidc_scopes,
                "code_challenge_method": "S256",
                "timeout": 10,
            },
        )


def _client_or_none() -> Any:
    registry: OAuth | None = current_app.extensions.get(EXTENSION)
    return registry.create_client(CLIENT_NAME) if registry is not None else None


def _client() -> Any:
    client = _client_or_none()
    if client is None:
        raise SsoError("Single sign-on is not configured here.", 404)
    return client


def start_sign_in(redirect_uri: str) -> Response:
    """Redirects to the provider; state, nonce and the PKCE verifier go into the session."""
    try:
        return _client().authorize_redirect(redirect_uri)
    except requests.RequestException as exc:
        raise SsoError(UNREACHABLE, 503, str(exc)) from exc


def finish_sign_in() -> SsoResult:
    """Exchanges the code and verifies the ID token; every failure becomes an SsoError."""
    client = _client()
    error = request.args.get("error")
    if error:
        message, status = PROVIDER_ERRORS.get(error, PROVIDER_REFUSED)
        description = request.args.get("error_description", "")
        raise SsoError(message, status, f"provider error {error[:50]}: {description[:300]}")
    try:
        issuer = client.load_server_metadata()["issuer"]
        # Authlib checks aud only through azp; OIDC Core 3.1.3.7 wants our client_id in aud.
        token = client.authorize_access_token(
            claims_options={
                "iss": {"essential": True, "value": issuer},
                "aud": {"essential": True, "value": client.client_id},
            }
        )
    except requests.RequestException as exc:
        raise SsoError(UNREACHABLE, 503, str(exc)) from exc
    except MismatchingStateError as exc:
        # A state this browser never got, or one already used: a replay, a forged link, or the
        # back button after signing in.
        raise SsoError(LINK_USED, 400, "state not issued to this session") from exc
    except (AuthlibBaseError, JoseError, ValueError, KeyError, RuntimeError) as exc:
        log.warning("SSO callback refused: %s", exc)
        raise SsoError(NOT_VERIFIED, 400, f"{type(exc).__name__}: {exc}") from exc
    userinfo = token.get("userinfo")
    id_token = token.get("id_token")
    if not userinfo or not id_token:
        raise SsoError("The provider sent no ID token; sign-in refused.", 400, "no id_token")
    return SsoResult(issuer=str(userinfo.get("iss", "")), claims=dict(userinfo), id_token=id_token)


def end_session_url(id_token: str | None, post_logout_redirect_uri: str) -> str | None:
    """The provider's sign-out URL when it supports RP-initiated logout, else None."""
    client = _client_or_none()
    if client is None:
        return None
    try:
        result = client.create_logout_url(
            post_logout_redirect_uri=post_logout_redirect_uri,
            id_token_hint=id_token,
            client_id=client.client_id,
        )
    except (requests.RequestException, RuntimeError) as exc:
        log.info("provider sign-out skipped: %s", exc)
        return None
    return result["url"] if isinstance(result, dict) else str(result)

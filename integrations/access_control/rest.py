"""The generic REST adapter: Foyer's own small contract, which a vendor bridge implements (the
README shows it in full). JSON over HTTPS, the API key in a header:

    POST   {base}/credentials         {"reference", "person": {"name", "email", "kind"},
                                       "door_group", "valid_from", "valid_until"}
                                      -> 201 (or 200 for a reference it already has) {"id": "..."}
    DELETE {base}/credentials/{id}    -> 204 (404: already gone, also fine)

429 (with Retry-After), 5xx, timeouts and refused connections are transient and retried; any other
4xx is a configuration problem (wrong key, unknown door group) shown to the admin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from integrations.access_control.base import AccessError, CredentialRequest
from integrations.retry_after import retry_after_seconds

API_KEY_HEADER = "X-Api-Key"
TIMEOUT = (5, 15)  # connect, read (seconds): a job waits, never a visitor


def check_base_url(url: str) -> str:
    """The base URL as stored: http(s), a host, no query; ValueError with a message otherwise."""
    url = (url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("Start the address with https:// (or http:// on a private network).")
    if not parts.hostname:
        raise ValueError("The address has no host name.")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("Leave out ?query, #fragment and user names: the API key is separate.")
    return url


class RestAccessProvider:
    def __init__(
        self, base_url: str, api_key: str, *, session: requests.Session | None = None
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.api_key = api_key
        self.http = session or requests.Session()

    def create_credential(self, request: CredentialRequest) -> str:
        body = {
            "reference": request.reference,
            "person": {
                "name": request.person_name,
                "email": request.person_email,
                "kind": request.person_kind,
            },
            "door_group": request.door_group,
            "valid_from": _iso(request.valid_from),
            "valid_until": _iso(request.valid_until),
        }
        response = self._call("POST", "/credentials", body)
        if response.status_code not in (200, 201):
            raise AccessError(
                f"unexpected answer {response.status_code} to creating a credential",
                transient=False,
            )
        try:
            credential_id = response.json()["id"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AccessError("the answer carried no credential id", transient=False) from exc
        if not isinstance(credential_id, str | int) or not str(credential_id).strip():
            raise AccessError("the answer carried no credential id", transient=False)
        return str(credential_id)[:200]

    def revoke_credential(self, credential_id: str) -> None:
        response = self._call("DELETE", f"/credentials/{quote(credential_id, safe='')}", None)
        if response.status_code not in (200, 202, 204, 404):
            raise AccessError(
                f"unexpected answer {response.status_code} to revoking a credential",
                transient=False,
            )

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> requests.Response:
        try:
            response = self.http.request(
                method,
                self.base_url + path,
                json=body,
                headers={API_KEY_HEADER: self.api_key, "Accept": "application/json"},
                timeout=TIMEOUT,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise AccessError(
                "the access-control server did not answer in time", transient=True
            ) from exc
        except requests.ConnectionError as exc:
            raise AccessError(
                f"cannot reach the access-control server at {urlsplit(self.base_url).netloc}",
                transient=True,
            ) from exc
        except requests.RequestException as exc:
            raise AccessError(f"request failed: {type(exc).__name__}", transient=True) from exc
        status = response.status_code
        if status == 429:
            raise AccessError(
                "the access-control server asked us to slow down (429)",
                transient=True,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status >= 500:
            raise AccessError(f"the access-control server failed ({status})", transient=True)
        if status in (401, 403):
            raise AccessError(f"the API key was refused ({status})", transient=False)
        if status >= 400 and not (method == "DELETE" and status == 404):
            raise AccessError(
                f"the request was refused ({status}): {_detail(response)}", transient=False
            )
        return response


def _detail(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        return str(data.get("error") or data.get("message") or data)[:200]
    return str(data)[:200]


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

"""Logging people in. With `CONSOLE_IDENTITY_URL` set, the identity service checks the password and
returns a short-lived JWT that the console then sends to every service as `Authorization: Bearer`.
Without it (development only), a small list of demo users stands in and the services are called with
the service API key; everything else in the console is the same either way."""

import base64
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from console.roles import scopes_of
from console.settings import ConsoleSettings


@dataclass(frozen=True)
class Identity:
    user_id: str
    display_name: str
    role: str
    scopes: frozenset[str]
    access_token: str | None
    # When the console session ends (at most `session_hours` after login).
    expires_at: datetime
    # When the access token must be refreshed by (None: no token, the service API key is used).
    token_expires_at: datetime | None = None


class IdentityUnavailable(RuntimeError):
    pass


def _jwt_claims(token: str) -> dict:
    """The token's claims, read without checking the signature: the console got it straight from the
    identity service over its own connection, and every service verifies it on each call anyway."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


async def login(settings: ConsoleSettings, http: httpx.AsyncClient, username: str, password: str) -> Identity | None:
    now = datetime.now(UTC)
    if not settings.identity_url:
        return _demo_login(settings, username, password, now)
    answer = await _call_identity(settings, http, "/v1/auth/token", json={"username": username, "password": password})
    return None if answer is None else _identity_of(settings, answer, now)


async def refresh(settings: ConsoleSettings, http: httpx.AsyncClient, token: str) -> Identity | None:
    """A fresh token for the same login; None when identity refuses (account disabled, login too old)."""
    answer = await _call_identity(settings, http, "/v1/auth/refresh", headers={"Authorization": f"Bearer {token}"})
    return None if answer is None else _identity_of(settings, answer, datetime.now(UTC))


async def _call_identity(settings: ConsoleSettings, http: httpx.AsyncClient, path: str,
                         **kwargs: object) -> dict | None:
    try:
        response = await http.post(settings.identity_url.rstrip("/") + path, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        raise IdentityUnavailable(str(exc)) from exc
    if response.status_code in (400, 401, 403, 422):
        return None
    if response.status_code != 200:
        raise IdentityUnavailable(f"identity service answered {response.status_code}")
    return response.json()


def _identity_of(settings: ConsoleSettings, body: dict, now: datetime) -> Identity:
    token = body["access_token"]
    claims = _jwt_claims(token)
    user = body.get("user") or {}
    role = user.get("role") or claims.get("role") or "agent"
    scopes = user.get("scopes") or claims.get("scopes") or claims.get("scope") or sorted(scopes_of(role))
    if isinstance(scopes, str):
        scopes = scopes.split()
    expires_in = body.get("expires_in")
    token_expires_at = (now + timedelta(seconds=float(expires_in)) if expires_in
                        else datetime.fromtimestamp(claims["exp"], UTC) if "exp" in claims
                        else now + timedelta(hours=settings.session_hours))
    user_id = str(user.get("id") or claims.get("sub"))
    scopes = body.get("scopes") or scopes
    return Identity(user_id=user_id,
                    display_name=user.get("display_name") or user.get("name") or claims.get("name") or user_id,
                    role=role, scopes=frozenset(scopes), access_token=token,
                    expires_at=now + timedelta(hours=settings.session_hours), token_expires_at=token_expires_at)


def _demo_login(settings: ConsoleSettings, username: str, password: str, now: datetime) -> Identity | None:
    for entry in settings.demo_users:
        login_name, secret, role, *name = entry.split(":", 3)
        # Compare both in constant time so a wrong password takes as long as a wrong user.
        if hmac.compare_digest(login_name, username) & hmac.compare_digest(secret, password):
            return Identity(user_id=login_name, display_name=name[0] if name else login_name, role=role,
                            scopes=scopes_of(role), access_token=None,
                            expires_at=now + timedelta(hours=settings.session_hours))
    return None

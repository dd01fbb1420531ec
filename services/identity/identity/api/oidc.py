"""`GET /v1/auth/oidc/login` sends the browser to the identity provider; the provider sends it back to
`GET /v1/auth/oidc/callback`, which logs the person in (see identity.oidc)."""

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from closedloop.api import SessionDep, public_router
from closedloop.errors import ProblemError, field_problem
from identity import oidc
from identity.accounts import new_user, token_for
from identity.api.deps import SettingsDep
from identity.models import OidcLogin, User
from identity.schemas import TokenResponse
from identity.settings import IdentitySettings

public = public_router("auth", 400, 401, 403, 404, 502,
                       reason="the OpenID Connect redirects: the provider's signed id_token is the credential")
LOGIN_TTL = timedelta(minutes=10)


def _enabled(settings: IdentitySettings) -> IdentitySettings:
    if not oidc.enabled(settings):
        raise ProblemError(404, "Not Found", "OpenID Connect login is not configured (IDENTITY_OIDC_ISSUER).",
                           slug="oidc-not-configured")
    return settings


@public.get("/auth/oidc/login", status_code=302, response_class=RedirectResponse,
            summary="Start a login at the identity provider")
async def oidc_login(request: Request, session: SessionDep, settings: SettingsDep,
                     return_to: Annotated[str | None, Query(max_length=2000)] = None) -> RedirectResponse:
    """`return_to` (one of `IDENTITY_OIDC_ALLOWED_RETURN_URLS`, e.g. the console's page) gets the browser
    back with `?login_code=…`, which the console trades for a token at `POST /v1/auth/token`. Without
    it, the callback answers the token as JSON."""
    _enabled(settings)
    if return_to is not None and not any(return_to == url or return_to.startswith(url.rstrip("/") + "/")
                                         for url in settings.oidc_allowed_return_urls):
        raise field_problem("query.return_to", "not an allowed return address",
                            detail="return_to is not an allowed address.")
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier, challenge = oidc.pkce_pair()
    url = await oidc.authorization_url(settings, state, nonce, challenge)
    session.add(OidcLogin(state=state, code_verifier=verifier, nonce=nonce, return_to=return_to,
                          created_at=datetime.now(UTC)))
    await session.commit()
    return RedirectResponse(url, status_code=302)


async def _user_for(session: SessionDep, settings, claims: dict, role: str, now: datetime) -> User:  # type: ignore[no-untyped-def]
    user = await session.scalar(select(User).where(User.oidc_issuer == settings.oidc_issuer,
                                                   User.oidc_subject == str(claims["sub"])))
    name = str(claims.get("name") or claims.get("preferred_username") or claims["sub"])[:200]
    if user is None:
        wanted = re.sub(r"[^A-Za-z0-9._@+-]", "-", str(claims.get("preferred_username") or claims["sub"]))[:180]
        user_id = wanted if await session.get(User, wanted) is None else f"{wanted}-{secrets.token_hex(3)}"
        user = new_user(user_id, name, role, now, email=claims.get("email"), source="oidc")
        user.oidc_issuer, user.oidc_subject = settings.oidc_issuer, str(claims["sub"])
        session.add(user)
    else:
        # The provider is the truth for people who log in through it: role and name follow it each login.
        user.role, user.display_name, user.updated_at = role, name, now
        user.email = claims.get("email") or user.email
    if user.disabled:
        raise oidc.OidcError(403, "This account is disabled in Closedloop.", "account-disabled")
    user.last_login_at = now
    return user


@public.get("/auth/oidc/callback", response_model=TokenResponse, responses={303: {"description": "To return_to"}},
            summary="Where the identity provider sends the browser back")
async def oidc_callback(request: Request, session: SessionDep, settings: SettingsDep,
                        state: Annotated[str, Query(min_length=1, max_length=200)],
                        code: Annotated[str | None, Query(min_length=1, max_length=4000)] = None,
                        error: Annotated[str | None, Query(max_length=200)] = None):  # type: ignore[no-untyped-def]
    _enabled(settings)
    now = datetime.now(UTC)
    login = await session.get(OidcLogin, state)
    if login is None or login.login_code_hash is not None or login.created_at < now - LOGIN_TTL:
        raise oidc.OidcError(400, "Unknown or expired login; start again.", "oidc-state-invalid")
    try:
        if error or not code:
            raise oidc.OidcError(401, f"The identity provider answered {error or 'without a code'}.")
        id_token = await oidc.exchange_code(settings, code, login.code_verifier)
        claims = await oidc.verify_id_token(settings, id_token, login.nonce)
        user = await _user_for(session, settings, claims, oidc.map_role(settings, claims), now)
    except oidc.OidcError:
        # A state is good for one callback: after a failure the person starts again (and a stolen state
        # cannot be tried with other codes).
        await session.rollback()
        spent = await session.get(OidcLogin, state)
        if spent is not None:
            await session.delete(spent)
            await session.commit()
        raise
    one_time = secrets.token_urlsafe(32)
    login.login_code_hash = hashlib.sha256(one_time.encode()).hexdigest()
    login.user_id = user.id
    if login.return_to:
        await session.commit()
        separator = "&" if "?" in login.return_to else "?"
        return RedirectResponse(f"{login.return_to}{separator}{urlencode({'login_code': one_time})}",
                                status_code=303)
    login.used_at = now  # answered directly: the code is never handed out
    answer = await token_for(session, settings, user, now, auth_time=now)
    await session.commit()
    return answer

"""Logging people in through OpenID Connect: a login starts with a state row and ends at the callback,
which finds or creates the account (the provider is the truth for its people) and answers a token or a
one-time code for the console. The protocol itself (PKCE, code exchange, id_token checks) is in oidc.py.

Both use cases open their own transaction (ADR 0014)."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.errors import field_problem
from identity import oidc
from identity.accounts import new_user, token_for
from identity.models import OidcLogin, User
from identity.schemas.auth import TokenResponse
from identity.settings import IdentitySettings

LOGIN_TTL = timedelta(minutes=10)


@dataclass
class FinishedLogin:
    """Where to send the browser (with the one-time code), or the token when the login asked for none."""

    redirect_to: str | None = None
    token: TokenResponse | None = None


class _StaleState(oidc.OidcError):
    """The state is unknown, used or expired: nothing to spend."""


async def start_login(session: AsyncSession, settings: IdentitySettings, return_to: str | None,
                      now: datetime) -> str:
    """The provider's authorization address for a new login; `return_to` must be an allowed address."""
    if return_to is not None and not any(return_to == url or return_to.startswith(url.rstrip("/") + "/")
                                         for url in settings.oidc_allowed_return_urls):
        raise field_problem("query.return_to", "not an allowed return address",
                            detail="return_to is not an allowed address.")
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier, challenge = oidc.pkce_pair()
    url = await oidc.authorization_url(settings, state, nonce, challenge)
    async with session.begin():
        session.add(OidcLogin(state=state, code_verifier=verifier, nonce=nonce, return_to=return_to,
                              created_at=now))
    return url


async def finish_login(session: AsyncSession, settings: IdentitySettings, state: str, code: str | None,
                       error: str | None, now: datetime) -> FinishedLogin:
    try:
        async with session.begin():
            login = await session.get(OidcLogin, state)
            if login is None or login.login_code_hash is not None or login.created_at < now - LOGIN_TTL:
                raise _StaleState(400, "Unknown or expired login; start again.", "oidc-state-invalid")
            if error or not code:
                raise oidc.OidcError(401, f"The identity provider answered {error or 'without a code'}.")
            id_token = await oidc.exchange_code(settings, code, login.code_verifier)
            claims = await oidc.verify_id_token(settings, id_token, login.nonce)
            user = await _user_for(session, settings, claims, oidc.map_role(settings, claims), now)
            one_time = secrets.token_urlsafe(32)
            login.login_code_hash = hashlib.sha256(one_time.encode()).hexdigest()
            login.user_id = user.id
            if login.return_to:
                separator = "&" if "?" in login.return_to else "?"
                return FinishedLogin(redirect_to=f"{login.return_to}{separator}{urlencode({'login_code': one_time})}")
            login.used_at = now  # answered directly: the code is never handed out
            return FinishedLogin(token=await token_for(session, settings, user, now, auth_time=now))
    except _StaleState:
        raise
    except oidc.OidcError:
        # A state is good for one callback: after a failure the person starts again (and a stolen state
        # cannot be tried with other codes).
        async with session.begin():
            spent = await session.get(OidcLogin, state)
            if spent is not None:
                await session.delete(spent)
        raise


async def _user_for(session: AsyncSession, settings: IdentitySettings, claims: dict[str, Any], role: str,
                    now: datetime) -> User:
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

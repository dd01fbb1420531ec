"""People's accounts, logging them in and giving them tokens (local accounts here; OpenID Connect in
oidc_logins.py). Each use case called from a route opens its own transaction (ADR 0014)."""

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import get_or_404
from closedloop.auth import Principal, scopes_for_role
from closedloop.errors import ProblemError, conflict, field_problem
from closedloop.pagination import KeysetPage, keyset_page
from identity.models import OidcLogin, User
from identity.passwords import hash_password, needs_rehash, verify_password
from identity.schemas.auth import TokenIn, TokenResponse
from identity.schemas.users import UserIn, UserPatchIn, UserPublic
from identity.settings import IdentitySettings
from identity.signing import issue_token

# Demo accounts of `make run` (development mode only), the same the console offers when it runs alone:
# role -> (login, display name, password). The agent is also an agent of ticketing (scripts/run_local.py).
DEMO_USERS = {
    "agent": ("agent@example.com", "Alex Agent", "agent"),
    "lead": ("lead@example.com", "Lee Lead", "lead"),
    "analyst": ("analyst@example.com", "Ann Analyst", "analyst"),
    "admin": ("admin@example.com", "Adi Admin", "admin"),
}

LOGIN_FAILED = ProblemError(401, "Unauthorized", "Unknown user, wrong password or disabled account.",
                            slug="login-failed")


def new_user(user_id: str, display_name: str, role: str, now: datetime, *, password: str | None = None,
             email: str | None = None, source: str = "local") -> User:
    return User(id=user_id, display_name=display_name, role=role, email=email, source=source, disabled=False,
                password_hash=hash_password(password) if password else None, created_at=now, updated_at=now)


async def seed_users(session: AsyncSession, settings: IdentitySettings) -> list[str]:
    """Demo accounts (development) and the bootstrap admin (when no user exists); returns who was created."""
    now = datetime.now(UTC)
    created = []
    async with session.begin():
        if settings.seed_demo_users and settings.environment == "development":
            for role, (user_id, name, password) in DEMO_USERS.items():
                if await session.get(User, user_id) is None:
                    session.add(new_user(user_id, name, role, now, password=password))
                    created.append(user_id)
        if settings.bootstrap_admin_username and settings.bootstrap_admin_password \
                and await session.scalar(select(User.id).limit(1)) is None:
            session.add(new_user(settings.bootstrap_admin_username, settings.bootstrap_admin_username, "admin",
                                 now, password=settings.bootstrap_admin_password))
            created.append(settings.bootstrap_admin_username)
    return created


async def token_for(session: AsyncSession, settings: IdentitySettings, user: User, now: datetime,
                    auth_time: datetime) -> TokenResponse:
    token, ttl = await issue_token(session, settings, user, now, auth_time)
    return TokenResponse(access_token=token, expires_in=ttl, user=UserPublic.model_validate(user),
                         scopes=sorted(scopes_for_role(user.role)))


async def password_login(session: AsyncSession, username: str, password: str, now: datetime) -> User:
    user = await session.get(User, username)
    # verify_password runs also for an unknown user, so the answer takes as long either way.
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or user.disabled:
        raise LOGIN_FAILED
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    return user


async def code_login(session: AsyncSession, code: str, now: datetime) -> User:
    """The one-time code from the OIDC callback: valid once, for two minutes."""
    digest = hashlib.sha256(code.encode()).hexdigest()
    login = await session.scalar(select(OidcLogin).where(OidcLogin.login_code_hash == digest))
    if login is None or login.used_at is not None or login.user_id is None \
            or login.created_at < now - timedelta(minutes=10):
        raise LOGIN_FAILED
    login.used_at = now
    user = await session.get(User, login.user_id)
    if user is None or user.disabled:
        raise LOGIN_FAILED
    return user


async def log_in(session: AsyncSession, settings: IdentitySettings, body: TokenIn, now: datetime) -> TokenResponse:
    """With a username and password, or with the one-time code of an OpenID Connect callback."""
    async with session.begin():
        if body.login_code:
            user = await code_login(session, body.login_code, now)
        elif body.username and body.password:
            user = await password_login(session, body.username, body.password, now)
        else:
            raise field_problem("body.username", "username and password, or login_code",
                                detail="Send username and password, or login_code.")
        return await token_for(session, settings, user, now, auth_time=now)


async def refresh_token(session: AsyncSession, settings: IdentitySettings, principal: Principal,
                        now: datetime) -> TokenResponse:
    """A new token while the account is enabled and the login is younger than the session's maximum."""
    async with session.begin():
        auth_time = principal.extra.get("auth_time")
        user = await session.get(User, principal.id) if principal.kind == "user" else None
        if user is None or user.disabled or not isinstance(auth_time, int) \
                or now.timestamp() - auth_time > settings.session_max_seconds:
            raise LOGIN_FAILED
        return await token_for(session, settings, user, now, datetime.fromtimestamp(auth_time, UTC))


async def create_user(session: AsyncSession, body: UserIn, now: datetime) -> User:
    async with session.begin():
        if await session.get(User, body.id) is not None:
            raise conflict(f"A user {body.id!r} exists already.", slug="user-exists")
        user = new_user(body.id, body.display_name, body.role, now, password=body.password, email=body.email)
        session.add(user)
    return user


async def users_page(session: AsyncSession, limit: int, cursor: str | None) -> KeysetPage[User]:
    return await keyset_page(session, select(User), order=(User.id,), limit=limit, cursor=cursor, descending=False)


async def update_user(session: AsyncSession, user_id: str, body: UserPatchIn, now: datetime) -> User:
    async with session.begin():
        user = await get_or_404(session, User, user_id, "User")
        for name in ("display_name", "email", "role", "disabled"):
            if name in body.model_fields_set and getattr(body, name) is not None:
                setattr(user, name, getattr(body, name))
        if body.password:
            user.password_hash = hash_password(body.password)
        user.updated_at = now
    return user


async def delete_user(session: AsyncSession, user_id: str) -> None:
    async with session.begin():
        await session.delete(await get_or_404(session, User, user_id, "User"))

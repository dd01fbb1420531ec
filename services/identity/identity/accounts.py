"""Logging people in and giving them tokens (local accounts here; OpenID Connect in oidc.py)."""

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.auth import scopes_for_role
from closedloop.errors import ProblemError
from identity.models import OidcLogin, User
from identity.passwords import hash_password, needs_rehash, verify_password
from identity.schemas import TokenResponse, UserPublic
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
    await session.commit()
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

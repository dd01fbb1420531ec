"""The identity application: `uvicorn --factory identity.main:create_app`."""

import logging
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import create_service_app
from closedloop.retention import BATCH, RetentionRule
from closedloop.runtime import ServiceRuntime
from closedloop.secretbox import Keyring
from identity.accounts import seed_users
from identity.api import api_keys, auth, oidc, users
from identity.models import InboxMessage, OidcLogin, outbox
from identity.publisher import CredentialPublisher
from identity.settings import IdentitySettings
from identity.signing import reseal_keys

SERVICE_DIR = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)


async def delete_old_logins(session: AsyncSession, cutoff: datetime) -> int:
    states = select(OidcLogin.state).where(OidcLogin.created_at < cutoff).limit(BATCH)
    result = cast(CursorResult[Any], await session.execute(delete(OidcLogin).where(OidcLogin.state.in_(states))))
    return result.rowcount or 0


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()
    # Seals the token signing keys (identity.signing); production without IDENTITY_SECRET_KEYS stops here.
    keyring = Keyring.from_settings(settings)
    runtime = ServiceRuntime(settings, SERVICE_DIR, outbox, InboxMessage)
    # Logins in flight live 10 minutes; their rows (PKCE verifier, nonce, one-time code hash) go after a day.
    runtime.retention.add(RetentionRule("OpenID Connect logins", 1.0, delete_old_logins))

    async def setup(runtime: ServiceRuntime, app: FastAPI) -> None:
        if settings.run_migrations:
            await runtime.migrate()
        async with runtime.sessions() as session, session.begin():
            resealed = await reseal_keys(session, keyring)
        if resealed:
            log.info("signing keys re-sealed under the first secret key", extra={"count": resealed})
        async with runtime.sessions() as session:
            created = await seed_users(session, settings)
        if created:
            log.info("accounts created", extra={"users": created})
        publisher = CredentialPublisher(settings, runtime.sessions, runtime.broker, app.state.authenticator.store)
        await publisher.changed()  # signing key ready and this service's own copy loaded before the first request
        app.state.publisher = publisher
        runtime.add_worker(publisher)

    return create_service_app(
        runtime, title="Closedloop identity",
        description="Who may do what. People log in (local accounts, or OpenID Connect against your identity "
                    "provider) and get a short-lived EdDSA-signed token carrying their role; machines get API keys "
                    "with scopes and optional channel allow-lists, stored as hashes. Both are published to every "
                    "service (JetStream key-value bucket `IDENTITY`), which verify them offline.",
        routers=[auth.login_router, auth.jwks_router, auth.router, oidc.public, users.router, api_keys.router],
        setup=setup,
    )

"""Webhook endpoints: registering one (its signing secret sealed), listing them with their circuit
breakers, removing one. Use cases that own their transactions (ADR 0014)."""

import secrets
from datetime import UTC, datetime
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.api import get_or_404
from closedloop.errors import field_problem
from closedloop.outbound import OutboundPolicy, UnsafeTarget
from closedloop.secretbox import Keyring
from notify import circuit
from notify.models import CircuitBreaker, WebhookEndpoint
from notify.schemas.webhooks import WebhookIn
from notify.settings import NotifySettings


async def check_target(settings: NotifySettings, url: str, field: str) -> None:
    """422 naming `field` when the URL points at an address outbound calls may not reach."""
    try:
        await OutboundPolicy.from_settings(settings).check_registration(url)
    except UnsafeTarget as exc:
        raise field_problem(field, str(exc), slug="unsafe-target") from exc


async def create_endpoint(session: AsyncSession, keyring: Keyring, name: str, url: str, event_types: list[str],
                    secret: str | None = None,
                    customer_channels: list[str] | None = None) -> tuple[WebhookEndpoint, str]:
    """The endpoint added to the caller's transaction (its secret stored sealed, notify.sealed) and the
    secret in clear, to show once."""
    secret = secret or secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(id=str(uuid4()), name=name, url=url, event_types=event_types,
                               customer_channels=list(customer_channels or []),
                               secret=keyring.seal(secret), active=True, created_at=datetime.now(UTC))
    session.add(endpoint)
    return endpoint, secret


async def register_webhook(session: AsyncSession, settings: NotifySettings, keyring: Keyring,
                           body: WebhookIn) -> tuple[WebhookEndpoint, str]:
    # The address is resolved before the transaction begins: no database lock is held over a DNS lookup.
    await check_target(settings, str(body.url), "body.url")
    async with session.begin():
        return await create_endpoint(session, keyring, body.name, str(body.url), body.event_types, body.secret,
                               list(body.customer_channels))


async def seed_webhooks(sessions: async_sessionmaker[AsyncSession], keyring: Keyring, urls: list[str]) -> None:
    """At start-up: an endpoint for each configured URL not registered yet (NOTIFY_SEED_WEBHOOK_URLS)."""
    async with sessions() as session, session.begin():
        known = set(await session.scalars(select(WebhookEndpoint.url)))
        for url in urls:
            if url not in known:
                await create_endpoint(session, keyring, name=f"seeded {url}", url=url,
                                      event_types=["ticket.*", "alert.*"])


async def list_webhooks(session: AsyncSession) -> list[tuple[WebhookEndpoint, CircuitBreaker | None]]:
    """Every endpoint, oldest first, with its circuit breaker (None while it has none)."""
    endpoints = list(await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)))
    breakers = await circuit.load(session, {f"webhook:{e.id}" for e in endpoints})
    return [(e, breakers.get(f"webhook:{e.id}")) for e in endpoints]


async def delete_webhook(session: AsyncSession, endpoint_id: str) -> None:
    """The endpoint, its delivery history and its circuit breaker."""
    async with session.begin():
        endpoint = await get_or_404(session, WebhookEndpoint, endpoint_id, "Webhook")
        await session.delete(endpoint)
        breaker = await session.get(CircuitBreaker, f"webhook:{endpoint_id}")
        if breaker is not None:
            await session.delete(breaker)

"""Subscriptions: who hears about which events (by event type, team and priority), on which channel.
Use cases that own their transactions (ADR 0014)."""

from datetime import UTC, datetime
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import get_or_404
from closedloop.errors import field_problem
from closedloop.secretbox import Keyring
from notify.deliveries import matches
from notify.models import Subscription, WebhookEndpoint
from notify.schemas.subscriptions import SubscriptionIn
from notify.sealed import slack_name
from notify.settings import NotifySettings
from notify.webhooks import check_target as check_outbound


def store(subscription: Subscription, body: SubscriptionIn, keyring: Keyring) -> None:
    """A Slack hook URL is a credential: stored sealed, and the target (shown by the API, copied into
    deliveries) becomes the hook's name `slack-hook:<fingerprint>` (notify.sealed)."""
    for name, value in body.model_dump().items():
        setattr(subscription, name, value)
    subscription.target_sealed = None
    if body.channel == "slack":
        subscription.target_sealed = keyring.seal(body.target)
        subscription.target = slack_name(body.target)


async def check_slack_hook(settings: NotifySettings, body: SubscriptionIn) -> None:
    """A Slack hook URL must be one outbound calls may reach (it is resolved: no database involved)."""
    if body.channel == "slack":
        await check_outbound(settings, body.target, "body.target")


async def check_webhook_target(session: AsyncSession, body: SubscriptionIn) -> None:
    if body.channel == "webhook" and await session.get(WebhookEndpoint, body.target) is None:
        message = "no webhook endpoint with this id (register it with POST /v1/webhooks)"
        raise field_problem("body.target", message)


async def create_subscription(session: AsyncSession, settings: NotifySettings, keyring: Keyring,
                              body: SubscriptionIn) -> Subscription:
    await check_slack_hook(settings, body)  # before the transaction: no database lock over a DNS lookup
    async with session.begin():
        await check_webhook_target(session, body)
        subscription = Subscription(id=str(uuid4()), created_at=datetime.now(UTC))
        store(subscription, body, keyring)
        session.add(subscription)
    return subscription


async def list_subscriptions(session: AsyncSession, channel: str | None,
                             event_type: str | None) -> list[Subscription]:
    """Oldest first; `event_type` keeps the subscriptions whose patterns match it."""
    rows = await session.scalars(select(Subscription).order_by(Subscription.created_at, Subscription.id))
    return [s for s in rows if (channel is None or s.channel == channel)
            and (event_type is None or matches(s.event_types, event_type))]


async def replace_subscription(session: AsyncSession, settings: NotifySettings, keyring: Keyring,
                               subscription_id: str, body: SubscriptionIn) -> Subscription:
    async with session.begin():
        subscription = await get_or_404(session, Subscription, subscription_id, "Subscription")
        await check_slack_hook(settings, body)
        await check_webhook_target(session, body)
        store(subscription, body, keyring)
    return subscription


async def delete_subscription(session: AsyncSession, subscription_id: str) -> None:
    async with session.begin():
        await session.delete(await get_or_404(session, Subscription, subscription_id, "Subscription"))

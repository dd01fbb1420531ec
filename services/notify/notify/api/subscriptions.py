"""Subscriptions: who hears about which events (by event type, team and priority), on which channel."""

from datetime import UTC, datetime
from uuid import uuid4

from sqlalchemy import select

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import field_problem, problem_responses
from closedloop.secretbox import Keyring
from notify.api.deps import KeyringDep, SettingsDep
from notify.api.webhooks import check_target as check_outbound
from notify.models import Subscription, WebhookEndpoint
from notify.schemas import ChannelName, SubscriptionCreate, SubscriptionPublic
from notify.sealed import slack_name
from notify.settings import NotifySettings

router = api_router("subscriptions", 400)


def store(subscription: Subscription, body: SubscriptionCreate, keyring: Keyring) -> None:
    """A Slack hook URL is a credential: stored sealed, and the target (shown by the API, copied into
    deliveries) becomes the hook's name `slack-hook:<fingerprint>` (notify.sealed)."""
    for name, value in body.model_dump().items():
        setattr(subscription, name, value)
    subscription.target_sealed = None
    if body.channel == "slack":
        subscription.target_sealed = keyring.seal(body.target)
        subscription.target = slack_name(body.target)


def to_public(subscription: Subscription) -> SubscriptionPublic:
    return SubscriptionPublic.model_validate(subscription, from_attributes=True)


async def check_target(session: SessionDep, body: SubscriptionCreate, settings: NotifySettings) -> None:
    if body.channel == "slack":
        await check_outbound(settings, body.target, "body.target")
    if body.channel == "webhook" and await session.get(WebhookEndpoint, body.target) is None:
        message = "no webhook endpoint with this id (register it with POST /v1/webhooks)"
        raise field_problem("body.target", message)


@router.post("/subscriptions", dependencies=needs("config:write"), status_code=201, response_model=SubscriptionPublic,
             summary="Subscribe a recipient to events")
async def create_subscription(body: SubscriptionCreate, session: SessionDep, settings: SettingsDep,
                              keyring: KeyringDep) -> SubscriptionPublic:
    await check_target(session, body, settings)
    subscription = Subscription(id=str(uuid4()), created_at=datetime.now(UTC))
    store(subscription, body, keyring)
    session.add(subscription)
    await session.commit()
    return to_public(subscription)


@router.get("/subscriptions", dependencies=needs("config:write"),
            response_model=list[SubscriptionPublic], summary="List subscriptions")
async def list_subscriptions(session: SessionDep, channel: ChannelName | None = None,
                             event_type: str | None = None) -> list[SubscriptionPublic]:
    from notify.deliveries import matches

    rows = await session.scalars(select(Subscription).order_by(Subscription.created_at, Subscription.id))
    return [to_public(s) for s in rows if (channel is None or s.channel == channel)
            and (event_type is None or matches(s.event_types, event_type))]


@router.get("/subscriptions/{subscription_id}", dependencies=needs("config:write"),
            response_model=SubscriptionPublic, responses=problem_responses(404),
            summary="One subscription")
async def get_subscription(subscription_id: str, session: SessionDep) -> SubscriptionPublic:
    return to_public(await get_or_404(session, Subscription, subscription_id, "Subscription"))


@router.put("/subscriptions/{subscription_id}", dependencies=needs("config:write"),
            response_model=SubscriptionPublic, responses=problem_responses(404),
            summary="Replace a subscription")
async def replace_subscription(subscription_id: str, body: SubscriptionCreate, session: SessionDep,
                               settings: SettingsDep, keyring: KeyringDep) -> SubscriptionPublic:
    subscription = await get_or_404(session, Subscription, subscription_id, "Subscription")
    await check_target(session, body, settings)
    store(subscription, body, keyring)
    await session.commit()
    return to_public(subscription)


@router.delete("/subscriptions/{subscription_id}", dependencies=needs("config:write"),
               status_code=204, responses=problem_responses(404),
               summary="Remove a subscription")
async def delete_subscription(subscription_id: str, session: SessionDep) -> None:
    await session.delete(await get_or_404(session, Subscription, subscription_id, "Subscription"))
    await session.commit()

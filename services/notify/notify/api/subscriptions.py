"""Subscriptions over HTTP (the use cases are in notify.subscriptions)."""

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import problem_responses
from notify import subscriptions
from notify.api.deps import KeyringDep, SettingsDep
from notify.models import Subscription
from notify.schemas.deliveries import ChannelName
from notify.schemas.subscriptions import SubscriptionIn, SubscriptionPublic

router = api_router("subscriptions", 400)


def to_public(subscription: Subscription) -> SubscriptionPublic:
    return SubscriptionPublic.model_validate(subscription, from_attributes=True)


@router.post("/subscriptions", dependencies=needs("config:write"), status_code=201, response_model=SubscriptionPublic,
             summary="Subscribe a recipient to events")
async def create_subscription(body: SubscriptionIn, session: SessionDep, settings: SettingsDep,
                              keyring: KeyringDep) -> SubscriptionPublic:
    return to_public(await subscriptions.create_subscription(session, settings, keyring, body))


@router.get("/subscriptions", dependencies=needs("config:write"),
            response_model=list[SubscriptionPublic], summary="List subscriptions")
async def list_subscriptions(session: SessionDep, channel: ChannelName | None = None,
                             event_type: str | None = None) -> list[SubscriptionPublic]:
    return [to_public(s) for s in await subscriptions.list_subscriptions(session, channel, event_type)]


@router.get("/subscriptions/{subscription_id}", dependencies=needs("config:write"),
            response_model=SubscriptionPublic, responses=problem_responses(404),
            summary="One subscription")
async def get_subscription(subscription_id: str, session: SessionDep) -> SubscriptionPublic:
    return to_public(await get_or_404(session, Subscription, subscription_id, "Subscription"))


@router.put("/subscriptions/{subscription_id}", dependencies=needs("config:write"),
            response_model=SubscriptionPublic, responses=problem_responses(404),
            summary="Replace a subscription")
async def replace_subscription(subscription_id: str, body: SubscriptionIn, session: SessionDep,
                               settings: SettingsDep, keyring: KeyringDep) -> SubscriptionPublic:
    return to_public(await subscriptions.replace_subscription(session, settings, keyring, subscription_id, body))


@router.delete("/subscriptions/{subscription_id}", dependencies=needs("config:write"),
               status_code=204, responses=problem_responses(404),
               summary="Remove a subscription")
async def delete_subscription(subscription_id: str, session: SessionDep) -> None:
    await subscriptions.delete_subscription(session, subscription_id)

"""Webhook endpoints over HTTP (the use cases are in notify.webhooks)."""

from datetime import UTC, datetime

from closedloop.api import SessionDep, api_router
from closedloop.auth import needs
from closedloop.errors import problem_responses
from notify import circuit, webhooks
from notify.api.deps import KeyringDep, SettingsDep
from notify.models import CircuitBreaker, WebhookEndpoint
from notify.schemas.webhooks import CircuitPublic, WebhookCreated, WebhookIn, WebhookPublic

router = api_router("webhooks", 400)


def to_public(endpoint: WebhookEndpoint, breaker: CircuitBreaker | None = None) -> WebhookPublic:
    return WebhookPublic(id=endpoint.id, name=endpoint.name, url=endpoint.url, event_types=endpoint.event_types,
                         customer_channels=list(endpoint.customer_channels or []), active=endpoint.active,
                         created_at=endpoint.created_at,
                         circuit=CircuitPublic(state=circuit.state(breaker, datetime.now(UTC)),
                                               consecutive_failures=breaker.consecutive_failures if breaker else 0,
                                               open_until=breaker.open_until if breaker else None))


@router.post("/webhooks", dependencies=needs("config:write"),
             status_code=201, response_model=WebhookCreated, summary="Register a webhook endpoint")
async def create_webhook(body: WebhookIn, session: SessionDep, settings: SettingsDep,
                         keyring: KeyringDep) -> WebhookCreated:
    """The answer is the only time the signing secret is shown: it is stored encrypted and never returned
    again. The URL must be public: loopback, link-local (cloud metadata) and private addresses are refused
    (422), unless `NOTIFY_OUTBOUND_ALLOWED_NETWORKS` allows them; checked again at every delivery."""
    endpoint, secret = await webhooks.register_webhook(session, settings, keyring, body)
    return WebhookCreated(**to_public(endpoint).model_dump(), secret=secret)


@router.get("/webhooks", dependencies=needs("config:write"),
            response_model=list[WebhookPublic], summary="List webhook endpoints",
            description="Each with its circuit breaker: `open` while deliveries to it are postponed after "
                        "consecutive failures, `half_open` while one probe is allowed through.")
async def list_webhooks(session: SessionDep) -> list[WebhookPublic]:
    return [to_public(endpoint, breaker) for endpoint, breaker in await webhooks.list_webhooks(session)]


@router.delete("/webhooks/{endpoint_id}", dependencies=needs("config:write"),
               status_code=204, responses=problem_responses(404),
               summary="Remove a webhook endpoint and its delivery history")
async def delete_webhook(endpoint_id: str, session: SessionDep) -> None:
    await webhooks.delete_webhook(session, endpoint_id)

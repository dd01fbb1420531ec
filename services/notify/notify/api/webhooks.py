import secrets
from datetime import UTC, datetime
from uuid import uuid4

from sqlalchemy import select

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import field_problem, problem_responses
from closedloop.outbound import OutboundPolicy, UnsafeTarget
from closedloop.secretbox import Keyring
from notify import circuit
from notify.api.deps import KeyringDep, SettingsDep
from notify.models import CircuitBreaker, WebhookEndpoint
from notify.schemas import CircuitPublic, WebhookCreate, WebhookCreated, WebhookPublic
from notify.settings import NotifySettings

router = api_router("webhooks", 400)


async def check_target(settings: NotifySettings, url: str, field: str) -> None:
    """422 naming `field` when the URL points at an address outbound calls may not reach."""
    try:
        await OutboundPolicy.from_settings(settings).check_registration(url)
    except UnsafeTarget as exc:
        raise field_problem(field, str(exc), slug="unsafe-target") from exc


def to_public(endpoint: WebhookEndpoint, breaker: CircuitBreaker | None = None) -> WebhookPublic:
    return WebhookPublic(id=endpoint.id, name=endpoint.name, url=endpoint.url, event_types=endpoint.event_types,
                         customer_channels=list(endpoint.customer_channels or []), active=endpoint.active,
                         created_at=endpoint.created_at,
                         circuit=CircuitPublic(state=circuit.state(breaker, datetime.now(UTC)),
                                               consecutive_failures=breaker.consecutive_failures if breaker else 0,
                                               open_until=breaker.open_until if breaker else None))


async def create_endpoint(session, keyring: Keyring, name: str, url: str,  # type: ignore[no-untyped-def]
                          event_types: list[str], secret: str | None = None,
                          customer_channels: list[str] | None = None) -> tuple[WebhookEndpoint, str]:
    """The endpoint (its secret stored sealed, notify.sealed) and the secret in clear, to show once."""
    secret = secret or secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(id=str(uuid4()), name=name, url=url, event_types=event_types,
                               customer_channels=list(customer_channels or []),
                               secret=keyring.seal(secret), active=True, created_at=datetime.now(UTC))
    session.add(endpoint)
    return endpoint, secret


@router.post("/webhooks", dependencies=needs("config:write"),
             status_code=201, response_model=WebhookCreated, summary="Register a webhook endpoint")
async def create_webhook(body: WebhookCreate, session: SessionDep, settings: SettingsDep,
                         keyring: KeyringDep) -> WebhookCreated:
    """The answer is the only time the signing secret is shown: it is stored encrypted and never returned
    again. The URL must be public: loopback, link-local (cloud metadata) and private addresses are refused
    (422), unless `NOTIFY_OUTBOUND_ALLOWED_NETWORKS` allows them; checked again at every delivery."""
    await check_target(settings, str(body.url), "body.url")
    endpoint, secret = await create_endpoint(session, keyring, body.name, str(body.url), body.event_types,
                                             body.secret, list(body.customer_channels))
    await session.commit()
    return WebhookCreated(**to_public(endpoint).model_dump(), secret=secret)


@router.get("/webhooks", dependencies=needs("config:write"),
            response_model=list[WebhookPublic], summary="List webhook endpoints",
            description="Each with its circuit breaker: `open` while deliveries to it are postponed after "
                        "consecutive failures, `half_open` while one probe is allowed through.")
async def list_webhooks(session: SessionDep) -> list[WebhookPublic]:
    endpoints = list(await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)))
    breakers = await circuit.load(session, {f"webhook:{e.id}" for e in endpoints})
    return [to_public(e, breakers.get(f"webhook:{e.id}")) for e in endpoints]


@router.delete("/webhooks/{endpoint_id}", dependencies=needs("config:write"),
               status_code=204, responses=problem_responses(404),
               summary="Remove a webhook endpoint and its delivery history")
async def delete_webhook(endpoint_id: str, session: SessionDep) -> None:
    endpoint = await get_or_404(session, WebhookEndpoint, endpoint_id, "Webhook")
    await session.delete(endpoint)
    breaker = await session.get(CircuitBreaker, f"webhook:{endpoint_id}")
    if breaker is not None:
        await session.delete(breaker)
    await session.commit()

"""Fan-out: one delivery row per matching webhook endpoint, written in the consumer's transaction."""

import fnmatch
import json
from datetime import UTC, datetime
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import Event
from notify.models import Delivery, WebhookEndpoint


def matches(patterns: list[str], event_type: str) -> bool:
    return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns)


def webhook_body(delivery_id: str, event: Event) -> str:
    return json.dumps({
        "id": delivery_id,
        "type": event.nats_subject,
        "created_at": datetime.now(UTC).isoformat(),
        "data": event.model_dump(mode="json"),
    }, separators=(",", ":"))


async def plan_deliveries(session: AsyncSession, event: Event, _: object = None) -> list[Delivery]:
    endpoints = await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True)))
    now = datetime.now(UTC)
    planned = []
    for endpoint in endpoints:
        if not matches(endpoint.event_types, event.nats_subject):
            continue
        delivery_id = str(uuid4())
        delivery = Delivery(
            id=delivery_id, endpoint_id=endpoint.id, source_event_id=str(event.event_id),
            event_type=event.nats_subject, target=endpoint.url, payload=webhook_body(delivery_id, event),
            status="pending", attempts=0, next_attempt_at=now, created_at=now,
        )
        session.add(delivery)
        planned.append(delivery)
    return planned

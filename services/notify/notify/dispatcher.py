"""Sends due webhook deliveries, with signatures, retries and a final dead-letter state.

A delivery is leased in a short transaction, sent with no database lock held, and its outcome
recorded (with `notification.delivered.v1` / `notification.failed.v1` in the outbox) in another.
A dispatcher that dies mid-send leaves a lease that simply expires, so the delivery is sent again:
receivers get at-least-once delivery and de-duplicate on the `Closedloop-Delivery-Id` header.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.events import NotificationDeliveredV1, NotificationFailedV1
from closedloop.metrics import NOTIFICATIONS
from notify import signing
from notify.models import Delivery, WebhookEndpoint, outbox
from notify.retry import RetryPolicy, is_retryable, parse_retry_after

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: int | None
    error: str | None
    retry_after: float | None = None


class WebhookDispatcher:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], policy: RetryPolicy, *,
                 timeout: float = 10.0, poll_seconds: float = 0.5, concurrency: int = 8) -> None:
        self.sessions = sessions
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.concurrency = concurrency
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False,
                                        headers={"User-Agent": "Closedloop-Webhooks/1"})
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.aclose()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                sent = await self.dispatch_due()
            except Exception:
                log.exception("dispatch pass failed")
                sent = 0
            if sent == 0:
                await asyncio.sleep(self.poll_seconds)

    async def dispatch_due(self) -> int:
        leased = await self._lease_due()
        await asyncio.gather(*(self._deliver(delivery_id, url, payload, secret, event_type)
                               for delivery_id, url, payload, secret, event_type in leased))
        return len(leased)

    async def _lease_due(self) -> list[tuple[str, str, str, str, str]]:
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            query = (
                select(Delivery, WebhookEndpoint.secret)
                .join(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
                .where(Delivery.status == "pending", Delivery.next_attempt_at <= now,
                       or_(Delivery.leased_until.is_(None), Delivery.leased_until < now))
                .order_by(Delivery.next_attempt_at)
                .limit(self.concurrency)
            )
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=Delivery)
            rows = (await session.execute(query)).all()
            for delivery, _ in rows:
                delivery.leased_until = now + LEASE
            return [(d.id, d.target, d.payload, secret, d.event_type) for d, secret in rows]

    async def send(self, delivery_id: str, url: str, payload: str, secret: str, event_type: str) -> SendResult:
        body = payload.encode()
        headers = {
            "Content-Type": "application/json",
            signing.HEADER: signing.sign(secret, body),
            "Closedloop-Delivery-Id": delivery_id,
            "Closedloop-Event-Type": event_type,
        }
        try:
            response = await self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return SendResult(False, None, f"{type(exc).__name__}: {exc}"[:1000])
        if 200 <= response.status_code < 300:
            return SendResult(True, response.status_code, None)
        return SendResult(False, response.status_code, f"HTTP {response.status_code}: {response.text[:500]}",
                          parse_retry_after(response.headers.get("Retry-After")))

    async def _deliver(self, delivery_id: str, url: str, payload: str, secret: str, event_type: str) -> None:
        result = await self.send(delivery_id, url, payload, secret, event_type)
        async with self.sessions() as session, session.begin():
            delivery = await session.get(Delivery, delivery_id)
            if delivery is None or delivery.status != "pending":
                return
            record_attempt(delivery, result, self.policy, datetime.now(UTC))
            outcome = {"delivered": "delivered", "failed": "failed"}.get(delivery.status, "retry")
            NOTIFICATIONS.labels("webhook", outcome).inc()
            if delivery.status == "delivered":
                outbox.add(session, NotificationDeliveredV1(
                    delivery_id=UUID(delivery.id), source_event_id=UUID(delivery.source_event_id),
                    channel="webhook", target=delivery.target, attempts=delivery.attempts))
            elif delivery.status == "failed":
                log.warning("webhook delivery failed for good", extra={"delivery_id": delivery.id,
                                                                       "error": delivery.last_error})
                outbox.add(session, NotificationFailedV1(
                    delivery_id=UUID(delivery.id), source_event_id=UUID(delivery.source_event_id),
                    channel="webhook", target=delivery.target, attempts=delivery.attempts,
                    error=delivery.last_error or ""))


def record_attempt(delivery: Delivery, result: SendResult, policy: RetryPolicy, now: datetime) -> None:
    """Apply one attempt's outcome: delivered, retry later, or failed for good."""
    delivery.attempts += 1
    delivery.leased_until = None
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error
    if result.ok:
        delivery.status = "delivered"
        delivery.delivered_at = now
    elif is_retryable(result.status_code) and delivery.attempts < policy.max_attempts:
        delivery.next_attempt_at = now + timedelta(seconds=policy.delay(delivery.attempts, result.retry_after))
    else:
        delivery.status = "failed"

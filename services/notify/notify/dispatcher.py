"""Sends due deliveries on every channel (signed webhooks, Slack-compatible hooks, e-mail), with
retries, a circuit breaker per target, and a final dead-letter state.

A delivery is leased in a short transaction, sent with no database lock held, and its outcome
recorded (with `notification.delivered.v1` / `notification.failed.v1` in the outbox) in another.
A dispatcher that dies mid-send leaves a lease that simply expires, so the delivery is sent again:
receivers get at-least-once delivery and de-duplicate on the `Closedloop-Delivery-Id` header.
"""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.events import NotificationDeliveredV1, NotificationFailedV1
from closedloop.metrics import NOTIFICATIONS
from notify import circuit
from notify.channels import Outgoing, Senders, SendResult
from notify.circuit import BreakerPolicy
from notify.models import Delivery, WebhookEndpoint, outbox
from notify.retry import RetryPolicy
from notify.settings import NotifySettings

__all__ = ["LEASE", "Dispatcher", "SendResult", "WebhookDispatcher", "record_attempt"]

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)


class Dispatcher:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], policy: RetryPolicy,
                 settings: NotifySettings, *, poll_seconds: float = 0.5, concurrency: int = 8) -> None:
        self.sessions = sessions
        self.policy = policy
        self.settings = settings
        self.breaker = BreakerPolicy(settings.circuit_failure_threshold,
                                     timedelta(seconds=settings.circuit_cooldown_seconds))
        self.poll_seconds = poll_seconds
        self.concurrency = concurrency
        self.senders = Senders(settings)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notification-dispatcher")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.senders.aclose()

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
        await asyncio.gather(*(self._deliver(item) for item in leased))
        return len(leased)

    async def _lease_due(self) -> list[Outgoing]:
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            query = (
                select(Delivery, WebhookEndpoint.secret)
                .outerjoin(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
                .where(Delivery.status == "pending", Delivery.next_attempt_at <= now,
                       or_(Delivery.leased_until.is_(None), Delivery.leased_until < now))
                .order_by(Delivery.next_attempt_at)
                .limit(self.concurrency)
            )
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=Delivery)
            rows = (await session.execute(query)).all()
            keys = {self._circuit_key(d): d for d, _ in rows}
            breakers = await circuit.load(session, set(keys), lock=True)
            leased = []
            for delivery, secret in rows:
                key = self._circuit_key(delivery)
                postpone_to = circuit.admit(breakers.get(key), now, LEASE)
                if postpone_to is not None:
                    delivery.next_attempt_at = postpone_to
                    delivery.reason = f"circuit open: postponed until {postpone_to.isoformat()}"
                    NOTIFICATIONS.labels(delivery.channel, "postponed").inc()
                    continue
                delivery.leased_until = now + LEASE
                leased.append(Outgoing(delivery.id, delivery.channel, delivery.target, delivery.payload,
                                       delivery.event_type, secret, key))
            return leased

    def _circuit_key(self, delivery: Delivery) -> str:
        return circuit.circuit_key(delivery.channel, delivery.target, delivery.endpoint_id, self.settings.smtp_host)

    async def send(self, item: Outgoing) -> SendResult:
        return await self.senders.send(item)

    async def _deliver(self, item: Outgoing) -> None:
        result = await self.send(item)
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            query = select(Delivery).where(Delivery.id == item.id).execution_options(populate_existing=True)
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update()
            delivery = await session.scalar(query)
            if delivery is None or delivery.status != "pending":
                return
            breaker = await circuit.load_or_create(session, item.circuit_key, now)
            was_open = breaker.open_until is not None
            circuit.record(breaker, not result.ok and result.should_retry, self.breaker, now)
            if was_open and breaker.open_until is None:
                await self._release_postponed(session, item, now)
            record_attempt(delivery, result, self.policy, now)
            if delivery.status == "pending" and breaker.open_until is not None:
                delivery.next_attempt_at = max(delivery.next_attempt_at, breaker.open_until)
            outcome = {"delivered": "delivered", "failed": "failed"}.get(delivery.status, "retry")
            NOTIFICATIONS.labels(delivery.channel, outcome).inc()
            if delivery.status == "delivered":
                outbox.add(session, NotificationDeliveredV1(
                    delivery_id=UUID(delivery.id), source_event_id=UUID(delivery.source_event_id),
                    channel=delivery.channel, target=delivery.target, attempts=delivery.attempts,
                    **about(delivery)))
            elif delivery.status == "failed":
                log.warning("delivery failed for good", extra={"delivery_id": delivery.id, "channel": delivery.channel,
                                                               "error": delivery.last_error})
                outbox.add(session, NotificationFailedV1(
                    delivery_id=UUID(delivery.id), source_event_id=UUID(delivery.source_event_id),
                    channel=delivery.channel, target=delivery.target, attempts=delivery.attempts,
                    error=delivery.last_error or "", **about(delivery)))


    async def _release_postponed(self, session: AsyncSession, item: Outgoing, now: datetime) -> None:
        """The probe succeeded: what waited behind the open circuit is due now."""
        same_target = [Delivery.channel == item.channel]
        if item.channel == "webhook":
            same_target.append(Delivery.endpoint_id == item.circuit_key.removeprefix("webhook:"))
        elif item.channel == "slack":
            same_target.append(Delivery.target == item.target)
        await session.execute(
            update(Delivery)
            .where(Delivery.status == "pending", Delivery.id != item.id, Delivery.next_attempt_at > now,
                   Delivery.reason.like("circuit open%"), *same_target)
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False))


# The name the dispatcher had when it sent webhooks only.
WebhookDispatcher = Dispatcher


def about(delivery: Delivery) -> dict[str, object]:
    """What the outcome events say about the delivery's subject (ticketing follows replies to customers)."""
    return {"event_type": delivery.event_type, "ticket_id": UUID(delivery.ticket_id) if delivery.ticket_id else None,
            "to_customer": delivery.audience == "customer"}


def record_attempt(delivery: Delivery, result: SendResult, policy: RetryPolicy, now: datetime) -> None:
    """Apply one attempt's outcome: delivered, retry later, or failed for good (dead-lettered)."""
    delivery.attempts += 1
    delivery.leased_until = None
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error
    if result.ok:
        delivery.status = "delivered"
        delivery.delivered_at = now
    elif result.should_retry and delivery.attempts < policy.max_attempts:
        delivery.next_attempt_at = now + timedelta(seconds=policy.delay(delivery.attempts, result.retry_after))
    else:
        delivery.status = "failed"

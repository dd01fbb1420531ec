"""Sends due deliveries on every channel (signed webhooks, Slack-compatible hooks, e-mail), with
retries, a circuit breaker per target, and a final dead-letter state.

A delivery is leased in a short transaction, sent with no database lock held, and its outcome
recorded (with `notification.delivered.v1` / `notification.failed.v1` in the outbox) in another, which
records every outcome that completed meanwhile (see `Dispatcher`).
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
from closedloop.secretbox import Keyring, SecretUnreadable
from closedloop.wakeup import Wakeup
from notify import circuit, sealed
from notify.channels import Outgoing, Senders, SendResult
from notify.circuit import BreakerPolicy
from notify.models import CircuitBreaker, Delivery, WebhookEndpoint, outbox
from notify.retry import RetryPolicy
from notify.settings import NotifySettings

# Commits that make deliveries due wake the dispatchers on this channel (wakeup.py).
DELIVERIES_CHANNEL = "closedloop_notify_deliveries"
_STOP = object()  # tells the recorder the dispatcher stopped

__all__ = ["DELIVERIES_CHANNEL", "LEASE", "Dispatcher", "SendResult", "record_attempt"]

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)


class Dispatcher:
    """Leases due deliveries, sends them side by side, and records their outcomes in batches.

    Three things make it fast without loosening a guarantee:
    - it wakes when a transaction that planned or re-scheduled deliveries commits (wakeup.py: this
      process, and on PostgreSQL every replica), not at its next poll;
    - up to `concurrency` sends are in flight at once, at most `per_target` to one target (webhook
      endpoint, Slack hook, SMTP server), over kept-alive connections; a target at its bound is skipped
      in the lease, so its deliveries stay unleased for the next pass (or another replica);
    - outcomes are recorded as sends complete, all that completed meanwhile in one transaction (one
      commit for a hundred deliveries instead of a hundred), each applied in the order it completed
      to its delivery and its circuit breaker, exactly as one at a time.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], policy: RetryPolicy,
                 settings: NotifySettings, *, keyring: Keyring | None = None, poll_seconds: float = 0.5,
                 concurrency: int = 8,
                 per_target: int | None = None, record_batch: int = 256) -> None:
        self.sessions = sessions
        self.policy = policy
        self.settings = settings
        # Opens webhook secrets and Slack hook URLs (notify.sealed) just before a send.
        self.keyring = keyring or Keyring.from_settings(settings)
        self.breaker = BreakerPolicy(settings.circuit_failure_threshold,
                                     timedelta(seconds=settings.circuit_cooldown_seconds))
        self.poll_seconds = poll_seconds
        self.concurrency = max(1, concurrency)
        self.per_target = max(1, per_target or self.concurrency)
        self.record_batch = record_batch
        self.senders = Senders(settings, max_connections=self.concurrency)
        bind = sessions.kw.get("bind")
        self.wakeup = Wakeup(DELIVERIES_CHANNEL, bind.url.render_as_string(hide_password=False) if bind else None)
        self._in_flight: dict[str, int] = {}  # circuit key -> sends under way
        self._sending: set[asyncio.Task[None]] = set()
        self._outcomes: asyncio.Queue[tuple[Outgoing, SendResult, datetime]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._recorder: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self.wakeup.start()
        self._task = asyncio.create_task(self._run(), name="notification-dispatcher")
        self._recorder = asyncio.create_task(self._record_forever(), name="notification-recorder")

    async def stop(self) -> None:
        """Stop leasing, let the sends in flight finish, record their outcomes, close the connections."""
        self._stopping = True
        await self.wakeup.stop()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*self._sending, return_exceptions=True)
        await self._outcomes.put(_STOP)  # type: ignore[arg-type]
        if self._recorder is not None:
            await asyncio.gather(self._recorder, return_exceptions=True)
        await self.senders.aclose()

    @property
    def in_flight(self) -> int:
        return sum(self._in_flight.values())

    async def _run(self) -> None:
        while not self._stopping:
            self.wakeup.clear()  # before the pass: a commit during it wakes the wait below
            try:
                leased = await self._lease_due() if self.in_flight < self.concurrency else []
            except Exception:
                log.exception("dispatch pass failed")
                leased = []
            for item in leased:
                self._in_flight[item.circuit_key] = self._in_flight.get(item.circuit_key, 0) + 1
                task = asyncio.create_task(self._send_one(item))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)
            if not leased and not self._stopping:
                # Woken by a commit that planned deliveries, by a send completing (room again), or the poll.
                await self.wakeup.wait(self.poll_seconds)

    async def dispatch_due(self) -> int:
        """One pass by hand: lease what is due, send it, record the outcomes; returns how many were sent."""
        leased = await self._lease_due()
        outcomes = []
        for item, result in zip(leased, await asyncio.gather(*(self.send(item) for item in leased)), strict=True):
            outcomes.append((item, result, datetime.now(UTC)))
        await self._record(outcomes)
        return len(leased)

    async def _send_one(self, item: Outgoing) -> None:
        try:
            result = await self.send(item)
        except Exception as exc:  # a sender bug must not lose the outcome: it is a failed attempt
            log.exception("send failed unexpectedly", extra={"delivery_id": item.id})
            result = SendResult(False, None, f"{type(exc).__name__}: {exc}"[:1000], retryable=True)
        self._outcomes.put_nowait((item, result, datetime.now(UTC)))

    async def _lease_due(self) -> list[Outgoing]:
        now = datetime.now(UTC)
        room = self.concurrency - self.in_flight
        async with self.sessions() as session, session.begin():
            query = (
                select(Delivery, WebhookEndpoint.secret)
                .outerjoin(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
                .where(Delivery.status == "pending", Delivery.next_attempt_at <= now,
                       or_(Delivery.leased_until.is_(None), Delivery.leased_until < now))
                .order_by(Delivery.next_attempt_at)
                .limit(room)
            )
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=Delivery)
            rows = (await session.execute(query)).all()
            hooks = await sealed.slack_urls(session, self.keyring, self.settings.ops_slack_webhook_url) \
                if any(d.channel == "slack" for d, _ in rows) else {}
            keys = {self._circuit_key(d): d for d, _ in rows}
            breakers = await circuit.load(session, set(keys), lock=True)
            taken: dict[str, int] = {}
            leased = []
            for delivery, secret in rows:
                key = self._circuit_key(delivery)
                if self._in_flight.get(key, 0) + taken.get(key, 0) >= self.per_target:
                    continue  # this target has enough in flight: left unleased, for the next pass
                postpone_to = circuit.admit(breakers.get(key), now, LEASE)
                if postpone_to is not None:
                    delivery.next_attempt_at = postpone_to
                    delivery.reason = f"circuit open: postponed until {postpone_to.isoformat()}"
                    NOTIFICATIONS.labels(delivery.channel, "postponed").inc()
                    continue
                taken[key] = taken.get(key, 0) + 1
                delivery.leased_until = now + LEASE
                leased.append(self._outgoing(delivery, secret, hooks, key))
            return leased

    def _outgoing(self, delivery: Delivery, secret: str | None, hooks: dict[str, str], key: str) -> Outgoing:
        """What the sender needs, secrets opened: the webhook's signing secret, the Slack hook's URL."""
        target = delivery.target
        if delivery.channel == "slack":
            target = hooks.get(delivery.target, "")  # empty: the hook's subscription is gone (send fails)
        try:
            opened = self.keyring.open(secret) if secret is not None else None
        except SecretUnreadable:
            log.error("webhook secret sealed under a key not in NOTIFY_SECRET_KEYS", extra={"delivery_id": delivery.id})
            opened = None
        return Outgoing(delivery.id, delivery.channel, target, delivery.payload, delivery.event_type, opened, key)

    def _circuit_key(self, delivery: Delivery) -> str:
        return circuit.circuit_key(delivery.channel, delivery.target, delivery.endpoint_id, self.settings.smtp_host)

    async def send(self, item: Outgoing) -> SendResult:
        return await self.senders.send(item)

    async def _record_forever(self) -> None:
        """Take the outcomes that completed, up to `record_batch`, and record them in one transaction."""
        stopping = False
        while not stopping:
            first = await self._outcomes.get()
            batch = [] if first is _STOP else [first]
            stopping = first is _STOP
            while len(batch) < self.record_batch and not self._outcomes.empty():
                outcome = self._outcomes.get_nowait()
                if outcome is _STOP:
                    stopping = True
                    break
                batch.append(outcome)
            if not batch:
                continue
            try:
                await self._record(batch)
            except Exception:
                log.exception("recording a batch of outcomes failed; recording them one by one")
                for outcome in batch:
                    try:
                        await self._record([outcome])
                    except Exception:  # the lease expires and the delivery is sent again (at least once)
                        log.exception("recording an outcome failed", extra={"delivery_id": outcome[0].id})
            finally:
                for item, _, _ in batch:
                    left = self._in_flight.get(item.circuit_key, 1) - 1
                    if left > 0:
                        self._in_flight[item.circuit_key] = left
                    else:
                        self._in_flight.pop(item.circuit_key, None)
                self.wakeup.wake()  # room for more sends, and maybe deliveries released from an open circuit

    async def _record(self, outcomes: list[tuple[Outgoing, SendResult, datetime]]) -> None:
        if not outcomes:
            return
        async with self.sessions() as session, session.begin():
            query = (select(Delivery).where(Delivery.id.in_([item.id for item, _, _ in outcomes]))
                     .execution_options(populate_existing=True))
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update()
            deliveries = {delivery.id: delivery for delivery in await session.scalars(query)}
            breakers = await circuit.load_or_create_many(session, {item.circuit_key for item, _, _ in outcomes},
                                                         outcomes[0][2])
            for item, result, now in outcomes:
                delivery = deliveries.get(item.id)
                if delivery is None or delivery.status != "pending":
                    continue  # recorded already (a lease that expired and was taken again): once only
                if self._apply(session, delivery, breakers[item.circuit_key], result, now):
                    await self._release_postponed(session, item, now)

    def _apply(self, session: AsyncSession, delivery: Delivery, breaker: CircuitBreaker, result: SendResult,
               now: datetime) -> bool:
        """Record one attempt on its delivery and its target's breaker; True if that closed the circuit."""
        was_open = breaker.open_until is not None
        circuit.record(breaker, not result.ok and result.should_retry, self.breaker, now)
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
        return was_open and breaker.open_until is None

    async def _release_postponed(self, session: AsyncSession, item: Outgoing, now: datetime) -> None:
        """The probe succeeded: what waited behind the open circuit is due now."""
        same_target = [Delivery.channel == item.channel]
        if item.channel == "webhook":
            same_target.append(Delivery.endpoint_id == item.circuit_key.removeprefix("webhook:"))
        elif item.channel == "slack":  # deliveries name the hook; the item carries its opened URL
            same_target.append(Delivery.target == sealed.slack_name(item.target))
        await session.execute(
            update(Delivery)
            .where(Delivery.status == "pending", Delivery.id != item.id, Delivery.next_attempt_at > now,
                   Delivery.reason.like("circuit open%"), *same_target)
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False))


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

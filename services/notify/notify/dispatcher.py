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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypedDict, cast
from uuid import UUID

from sqlalchemy import ColumnElement, Row, Table, and_, bindparam, or_, select, update
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
DELIVERIES = cast(Table, Delivery.__table__)


class Dispatcher:
    """Leases due deliveries, sends them side by side, and records their outcomes in batches.

    Four things make it fast without loosening a guarantee:
    - it wakes when a transaction that planned or re-scheduled deliveries commits (wakeup.py: this
      process, and on PostgreSQL every replica), not at its next poll;
    - up to `concurrency` sends are in flight at once, at most `per_target` to one target (webhook
      endpoint, Slack hook, SMTP server), over kept-alive connections;
    - a few sends' worth per target is leased ahead (`lease_per_target`), waiting in this process for
      the target's slots: the lease → send → record cycle (two transactions) never leaves the slots idle,
      and each lease and each record covers dozens of deliveries instead of a handful — per delivery,
      those transactions were most of notify's CPU. A target with that many leased is left out of the
      lease query, so one busy target never holds back the others' deliveries;
    - outcomes are recorded as sends complete, all that completed meanwhile in one transaction (one
      commit for a hundred deliveries instead of a hundred), each applied in the order it completed
      to its delivery and its circuit breaker, exactly as one at a time.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], policy: RetryPolicy,
                 settings: NotifySettings, *, keyring: Keyring | None = None, poll_seconds: float = 0.5,
                 concurrency: int = 8, per_target: int | None = None, record_batch: int = 256) -> None:
        self.sessions = sessions
        self.policy = policy
        self.settings = settings
        # Opens webhook secrets and Slack hook URLs (notify.sealed) just before a send.
        self.keyring = keyring or Keyring.from_settings(settings)
        self._opened: dict[str, str] = {}  # sealed secret -> opened (opening is not free; a secret is reused)
        self.breaker = BreakerPolicy(settings.circuit_failure_threshold,
                                     timedelta(seconds=settings.circuit_cooldown_seconds))
        self.poll_seconds = poll_seconds
        self.concurrency = max(1, concurrency)
        self.per_target = max(1, per_target or self.concurrency)
        # Leased ahead of the send: at most `ahead` rounds of `per_target` sends per target, so the last
        # one leased starts well within its lease even if every send before it takes the full timeout.
        ahead = int(max(1, min(4, LEASE.total_seconds() / (2 * settings.webhook_timeout_seconds))))
        self.lease_per_target = self.per_target * ahead
        self.lease_limit = self.concurrency * ahead
        self.record_batch = record_batch
        self.senders = Senders(settings, max_connections=self.concurrency)
        bind = sessions.kw.get("bind")
        self.wakeup = Wakeup(DELIVERIES_CHANNEL, bind.url.render_as_string(hide_password=False) if bind else None)
        self._leased: dict[str, int] = {}  # circuit key -> leased and not yet recorded
        self._leased_items: dict[str, Outgoing] = {}  # circuit key -> one of them (what the target is)
        self._target_slots: dict[str, asyncio.Semaphore] = {}  # circuit key -> its `per_target` sends
        self._slots = asyncio.Semaphore(self.concurrency)
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
        """Deliveries leased and not yet recorded (waiting for a slot, being sent, or being recorded)."""
        return sum(self._leased.values())

    async def _run(self) -> None:
        while not self._stopping:
            self.wakeup.clear()  # before the pass: a commit during it wakes the wait below
            try:
                leased = await self._lease_due() if self.in_flight < self.lease_limit else []
            except Exception:
                log.exception("dispatch pass failed")
                leased = []
            for item in leased:
                self._hold(item)
                task = asyncio.create_task(self._send_one(item))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)
            if not leased and not self._stopping:
                # Woken by a commit that planned deliveries, by outcomes recorded (room again), or the poll.
                await self.wakeup.wait(self.poll_seconds)

    def _hold(self, item: Outgoing) -> None:
        key = item.circuit_key
        self._leased[key] = self._leased.get(key, 0) + 1
        self._leased_items[key] = item
        if key not in self._target_slots:
            self._target_slots[key] = asyncio.Semaphore(self.per_target)

    def _release(self, item: Outgoing) -> None:
        key = item.circuit_key
        left = self._leased.get(key, 1) - 1
        if left > 0:
            self._leased[key] = left
        else:  # nothing of this target is held any more (so no send waits on its slots)
            self._leased.pop(key, None)
            self._leased_items.pop(key, None)
            self._target_slots.pop(key, None)

    async def dispatch_due(self) -> int:
        """One pass by hand: lease what is due, send it, record the outcomes; returns how many were sent."""
        leased = await self._lease_due()
        for item in leased:
            self._hold(item)
        try:
            results = await asyncio.gather(*(self._send_in_slot(item) for item in leased))
            now = datetime.now(UTC)
            await self._record([(item, result, now) for item, result in zip(leased, results, strict=True)])
        finally:
            for item in leased:
                self._release(item)
        return len(leased)

    async def _send_in_slot(self, item: Outgoing) -> SendResult:
        """Send once the target has a free slot (at most `per_target` at once) and so has the dispatcher."""
        async with self._target_slots[item.circuit_key], self._slots:
            try:
                return await self.send(item)
            except Exception as exc:  # a sender bug must not lose the outcome: it is a failed attempt
                log.exception("send failed unexpectedly", extra={"delivery_id": item.id})
                return SendResult(False, None, f"{type(exc).__name__}: {exc}"[:1000], retryable=True)

    async def _send_one(self, item: Outgoing) -> None:
        result = await self._send_in_slot(item)
        self._outcomes.put_nowait((item, result, datetime.now(UTC)))

    async def _lease_due(self) -> list[Outgoing]:
        """Lease what is due, at most `per_target` in flight to one target, in one short transaction.

        Plain column reads and set-based updates (no ORM objects): this runs for every few deliveries
        and its cost per delivery bounds notify's throughput. Targets already at their bound are left
        out in the query itself, so one busy target never fills the lease with rows it cannot take
        while other targets' deliveries wait behind them."""
        now = datetime.now(UTC)
        room = self.lease_limit - self.in_flight
        table = DELIVERIES
        async with self.sessions() as session, session.begin():
            postgres = session.bind.dialect.name == "postgresql"
            query = (
                select(table.c.id, table.c.channel, table.c.target, table.c.endpoint_id)
                .where(table.c.status == "pending", table.c.next_attempt_at <= now,
                       or_(table.c.leased_until.is_(None), table.c.leased_until < now), *self._not_at_bound())
                .order_by(table.c.next_attempt_at)
                .limit(room)
            )
            if postgres:
                query = query.with_for_update(skip_locked=True)
            candidates = (await session.execute(query)).all()
            if not candidates:
                return []
            keys = [circuit.circuit_key(row.channel, row.target, row.endpoint_id, self.settings.smtp_host)
                    for row in candidates]
            # Closed circuits admit without a change, so they are read without a lock (the recorder holds
            # it while it commits); an open or half-open one is read again, locked, before it is used.
            breakers = await circuit.load(session, set(keys))
            if any(breaker.open_until is not None for breaker in breakers.values()):
                breakers = await circuit.load(session, set(keys), lock=True)
            taken: dict[str, int] = {}
            chosen: dict[str, str] = {}  # delivery id -> circuit key
            postponed = []
            for row, key in zip(candidates, keys, strict=True):
                if self._leased.get(key, 0) + taken.get(key, 0) >= self.lease_per_target:
                    continue  # this target has enough leased: left unleased, for the next pass
                postpone_to = circuit.admit(breakers.get(key), now, LEASE)
                if postpone_to is not None:
                    postponed.append({"b_id": row.id, "b_next": postpone_to,
                                      "b_reason": f"circuit open: postponed until {postpone_to.isoformat()}"})
                    NOTIFICATIONS.labels(row.channel, "postponed").inc()
                    continue
                taken[key] = taken.get(key, 0) + 1
                chosen[row.id] = key
            if postponed:
                await session.execute(update(table).where(table.c.id == bindparam("b_id"))
                                      .values(next_attempt_at=bindparam("b_next"), reason=bindparam("b_reason")),
                                      postponed)
            if not chosen:
                return []
            secret = (select(WebhookEndpoint.secret).where(WebhookEndpoint.id == table.c.endpoint_id)
                      .scalar_subquery().label("secret"))
            details = await session.execute(
                update(table).where(table.c.id.in_(list(chosen))).values(leased_until=now + LEASE)
                .returning(table.c.id, table.c.channel, table.c.target, table.c.payload, table.c.event_type,
                           table.c.source_event_id, table.c.ticket_id, table.c.audience, table.c.endpoint_id, secret))
            by_id = {row.id: row for row in details}
            hooks = await sealed.slack_urls(session, self.keyring, self.settings.ops_slack_webhook_url) \
                if any(row.channel == "slack" for row in by_id.values()) else {}
            # In the order they were due.
            return [self._outgoing(by_id[delivery_id], hooks, key) for delivery_id, key in chosen.items()]

    def _outgoing(self, row: Row[Any], hooks: dict[str, str], key: str) -> Outgoing:
        """What the sender needs, secrets opened: the webhook's signing secret, the Slack hook's URL."""
        target = row.target
        if row.channel == "slack":
            target = hooks.get(row.target, "")  # empty: the hook's subscription is gone (send fails)
        return Outgoing(row.id, row.channel, target, row.payload, row.event_type, self._open(row.id, row.secret),
                        key, row.source_event_id, row.ticket_id, row.audience, row.endpoint_id, row.target)

    def _open(self, delivery_id: str, secret: str | None) -> str | None:
        if secret is None:
            return None
        opened = self._opened.get(secret)
        if opened is None:
            try:
                opened = self.keyring.open(secret)
            except SecretUnreadable:
                log.error("webhook secret sealed under a key not in NOTIFY_SECRET_KEYS",
                          extra={"delivery_id": delivery_id})
                return None
            if len(self._opened) > 10_000:
                self._opened.clear()
            self._opened[secret] = opened
        return opened

    def _not_at_bound(self) -> list[ColumnElement[bool]]:
        """Conditions that leave out the deliveries of targets with `lease_per_target` leased already."""
        table = DELIVERIES
        conditions: list[ColumnElement[bool]] = []
        for key, count in self._leased.items():
            if count < self.lease_per_target:
                continue
            item = self._leased_items[key]
            if item.channel == "webhook" and item.endpoint_id:
                conditions.append(or_(table.c.endpoint_id.is_(None), table.c.endpoint_id != item.endpoint_id))
            elif item.channel == "email":
                conditions.append(table.c.channel != "email")  # one SMTP server: one target
            else:  # deliveries name a Slack hook; the item carries its opened URL
                name = item.recorded_target or sealed.slack_name(item.target)
                conditions.append(~and_(table.c.channel == item.channel, table.c.target == name))
        return conditions

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
                    self._release(item)
                self.wakeup.wake()  # room for more sends, and maybe deliveries released from an open circuit

    async def _record(self, outcomes: list[tuple[Outgoing, SendResult, datetime]]) -> None:
        """Apply the outcomes in the order they completed, each to its delivery and its target's breaker,
        in one transaction; a delivery that is no longer pending (recorded already, after an expired lease
        was taken again) is left as it is: every attempt is recorded once."""
        if not outcomes:
            return
        table = DELIVERIES
        async with self.sessions() as session, session.begin():
            query = (select(table.c.id, table.c.status, table.c.attempts, table.c.next_attempt_at)
                     .where(table.c.id.in_([item.id for item, _, _ in outcomes])))
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update()
            current = {row.id: Attempted(row.id, row.status, row.attempts, row.next_attempt_at)
                       for row in await session.execute(query)}
            keys = {item.circuit_key for item, _, _ in outcomes}
            # Successes on circuits that are closed with no failures change nothing of them: read unlocked,
            # not written (such a batch serialises as if before any concurrent one). Otherwise the breakers
            # are created if missing and locked, and every outcome is counted.
            breakers = await circuit.load(session, keys)
            quiet = all(key in breakers and circuit.unchanged_by(breakers[key], self._unwell(result))
                        for key, result in ((item.circuit_key, result) for item, result, _ in outcomes))
            if not quiet:
                breakers = await circuit.load_or_create_many(session, keys, outcomes[0][2])
            changed: list[Attempted] = []
            for item, result, now in outcomes:
                delivery = current.get(item.id)
                if delivery is None or delivery.status != "pending":
                    continue  # recorded already (a lease that expired and was taken again): once only
                closed = self._apply(session, item, delivery, breakers[item.circuit_key], result, now,
                                     count=not quiet)
                changed.append(delivery)
                if closed:
                    await self._write(session, changed)  # before the release below, as they happened
                    changed = []
                    await self._release_postponed(session, item, now)
            await self._write(session, changed)

    @staticmethod
    async def _write(session: AsyncSession, changed: list["Attempted"]) -> None:
        if changed:
            table = DELIVERIES
            await session.execute(
                update(table).where(table.c.id == bindparam("b_id")).values(
                    status=bindparam("b_status"), attempts=bindparam("b_attempts"),
                    next_attempt_at=bindparam("b_next_attempt_at"), leased_until=bindparam("b_leased_until"),
                    last_status_code=bindparam("b_last_status_code"), last_error=bindparam("b_last_error"),
                    delivered_at=bindparam("b_delivered_at")),
                [{f"b_{name}": getattr(delivery, name) for name in Attempted.COLUMNS} for delivery in changed])

    @staticmethod
    def _unwell(result: SendResult) -> bool:
        """Does this outcome count against the target's circuit (see circuit.py)?"""
        return not result.ok and result.should_retry

    def _apply(self, session: AsyncSession, item: Outgoing, delivery: "Attempted", breaker: CircuitBreaker,
               result: SendResult, now: datetime, count: bool = True) -> bool:
        """Record one attempt on its delivery and (if `count`) its target's breaker; True if that closed
        the circuit."""
        was_open = breaker.open_until is not None
        if count:
            circuit.record(breaker, self._unwell(result), self.breaker, now)
        record_attempt(delivery, result, self.policy, now)
        if delivery.status == "pending" and breaker.open_until is not None:
            delivery.next_attempt_at = max(delivery.next_attempt_at, breaker.open_until)
        outcome = {"delivered": "delivered", "failed": "failed"}.get(delivery.status, "retry")
        NOTIFICATIONS.labels(item.channel, outcome).inc()
        if delivery.status == "delivered":
            outbox.add(session, NotificationDeliveredV1(
                delivery_id=UUID(item.id), source_event_id=UUID(item.source_event_id),
                channel=item.channel, target=item.recorded_target or item.target, attempts=delivery.attempts,
                **about(item)))
        elif delivery.status == "failed":
            log.warning("delivery failed for good", extra={"delivery_id": item.id, "channel": item.channel,
                                                           "error": delivery.last_error})
            outbox.add(session, NotificationFailedV1(
                delivery_id=UUID(item.id), source_event_id=UUID(item.source_event_id),
                channel=item.channel, target=item.recorded_target or item.target, attempts=delivery.attempts,
                error=delivery.last_error or "", **about(item)))
        return was_open and breaker.open_until is None

    async def _release_postponed(self, session: AsyncSession, item: Outgoing, now: datetime) -> None:
        """The probe succeeded: what waited behind the open circuit is due now."""
        same_target = [Delivery.channel == item.channel]
        if item.channel == "webhook":
            same_target.append(Delivery.endpoint_id == item.circuit_key.removeprefix("webhook:"))
        elif item.channel == "slack":  # deliveries name the hook; the item carries its opened URL
            same_target.append(Delivery.target == (item.recorded_target or sealed.slack_name(item.target)))
        await session.execute(
            update(Delivery)
            .where(Delivery.status == "pending", Delivery.id != item.id, Delivery.next_attempt_at > now,
                   Delivery.reason.like("circuit open%"), *same_target)
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False))


@dataclass
class Attempted:
    """What recording an attempt reads and writes of a delivery (`record_attempt` takes it or a `Delivery`)."""

    COLUMNS: ClassVar[tuple[str, ...]] = ("id", "status", "attempts", "next_attempt_at", "leased_until",
                                          "last_status_code", "last_error", "delivered_at")

    id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    leased_until: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None


class About(TypedDict):
    event_type: str | None
    ticket_id: UUID | None
    to_customer: bool


def about(delivery: Delivery | Outgoing) -> About:
    """What the outcome events say about the delivery's subject (ticketing follows replies to customers)."""
    return {"event_type": delivery.event_type, "ticket_id": UUID(delivery.ticket_id) if delivery.ticket_id else None,
            "to_customer": delivery.audience == "customer"}


def record_attempt(delivery: Delivery | Attempted, result: SendResult, policy: RetryPolicy, now: datetime) -> None:
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

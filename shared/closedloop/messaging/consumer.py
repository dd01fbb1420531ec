"""Durable pull consumers with idempotent handlers.

For each message: the handler runs inside one database transaction that also records the event in
the inbox; the message is acked only after that transaction committed. A failing handler is nacked
with back-off; after `max_deliver` attempts the message goes to the dead-letter stream (and only
then is it acked). A redelivered message that was already handled is acked without running again.
"""

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.events import Event
from closedloop.messaging.broker import Broker, BrokerUnavailable
from closedloop.messaging.deadletters import dead_letter
from closedloop.messaging.outbox import stage_row
from closedloop.metrics import (
    BATCH_SIZE,
    CONSUMED,
    CONSUMER_LAG,
    HANDLE_DURATION,
    PREPARE_DURATION,
    REDELIVERIES,
)
from closedloop.telemetry import context_from_headers, tracer

log = logging.getLogger(__name__)

LAG_EVERY_SECONDS = 5.0
# How long a fetch waits for more of what is already in the stream once it has one message: a round
# trip to the server, not a wait for messages still to be published.
GRAB_SECONDS = 0.005

Handler = Callable[[AsyncSession, Any, Any], Awaitable[None]]
Prepare = Callable[[list[Any]], Awaitable[Any]]


@dataclass
class Subscription:
    """One durable consumer: `<service>-<event>` reading `subject` from `stream`.

    `handler(session, event, prepared)` does the work in the given session (it must not commit).
    `prepare(events)` optionally runs once per fetched batch before the handlers, e.g. to embed all
    texts in one model call; its result is passed to every handler of the batch. Batches are prepared
    in the order they were fetched. `prepare` may return an awaitable: it is awaited just before the
    batch is handled, so slow work it starts (a model call) overlaps with fetching, preparing and
    committing the batches around it.

    `relevant(event)`, when given, says whether the handler would do anything with the event: one it
    would ignore is acked at once, with no transaction and no inbox row (ignoring it again on a
    redelivery is just as harmless). E.g. ticketing hears every notification outcome but keeps only
    those of replies to customers.
    """

    durable: str
    stream: str
    subjects: dict[str, type[Event]]
    handler: Handler
    prepare: Prepare | None = None
    batch_size: int | None = None
    filter_subject: str | None = field(default=None)
    relevant: Callable[[Any], bool] | None = None

    def event_type(self, subject: str) -> type[Event] | None:
        return self.subjects.get(subject)


@dataclass
class ConsumerOptions:
    batch_size: int = 16
    fetch_timeout: float = 1.0
    ack_wait: float = 60.0
    max_deliver: int = 5
    backoff: Sequence[float] = (1.0, 5.0, 15.0, 30.0)

    def delay_for(self, delivered: int) -> float:
        return self.backoff[min(delivered - 1, len(self.backoff) - 1)] if self.backoff else 1.0


@dataclass
class _Staged:
    """A batch ready for its handlers: the messages not handled before, and what `prepare` made of them
    (or an awaitable that will make it)."""

    fresh: list[tuple[Msg, Event]]
    prepared: Any
    fetched_at: float
    prepare_started: float


class ConsumerRunner:
    def __init__(self, service: str, subscription: Subscription, broker: Broker,
                 sessions: async_sessionmaker[AsyncSession], inbox_model: type[Any],  # a mapped InboxMixin
                 options: ConsumerOptions, read_sessions: async_sessionmaker[AsyncSession] | None = None) -> None:
        self.service = service
        self.sub = subscription
        self.broker = broker
        self.sessions = sessions
        self.read_sessions = read_sessions or sessions
        self.inbox_model = inbox_model
        self.options = options
        self.batch_size = subscription.batch_size or options.batch_size
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._tracer = tracer(f"closedloop.{service}.consumer")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.sub.durable}")

    async def stop(self) -> None:
        """Let the batch in hand finish (or be nacked), then stop fetching."""
        self._stopping = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        filter_subject = self.sub.filter_subject or next(iter(self.sub.subjects))
        config = ConsumerConfig(
            durable_name=self.sub.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.options.ack_wait,
            # We count deliveries ourselves and dead-letter; JetStream must never drop silently.
            max_deliver=-1,
            max_ack_pending=max(self.batch_size * 4, 64),  # the pipeline holds up to 3 batches
            filter_subject=filter_subject,
        )
        return await self.broker.js.pull_subscribe(
            filter_subject, durable=self.sub.durable, stream=self.sub.stream, config=config
        )

    async def _run(self) -> None:
        try:
            await self._loop()
        finally:
            self._stopping = True

    async def _loop(self) -> None:
        pull = None
        lag_measured_at = 0.0
        # A pipeline: this loop fetches and stages batches (validation, inbox check, `prepare`, which in
        # classify starts the model call in worker threads) while a second task awaits what `prepare`
        # started and handles and commits the batches, in order (database work on the event loop). One
        # staged batch waits between the two, so the model has the next batch queued while one commits.
        staged_batches: asyncio.Queue[_Staged | None] = asyncio.Queue(maxsize=1)
        finisher = asyncio.create_task(self._finish_in_order(staged_batches), name=f"finish-{self.sub.durable}")
        try:
            while not self._stopping and not finisher.done():
                if pull is not None and time.monotonic() - lag_measured_at > LAG_EVERY_SECONDS:
                    lag_measured_at = time.monotonic()
                    with contextlib.suppress(Exception):
                        info = await pull.consumer_info()
                        CONSUMER_LAG.labels(self.service, self.sub.durable).set(info.num_pending or 0)
                try:
                    if pull is None:
                        await self.broker.wait_connected()
                        pull = await self._subscribe()
                    msgs = await self._fetch(pull)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                except asyncio.CancelledError:
                    raise
                except (BrokerUnavailable, nats.errors.Error, OSError) as exc:
                    log.warning("fetch failed; retrying", extra={"durable": self.sub.durable, "error": str(exc)})
                    await asyncio.sleep(1.0)
                    continue
                except Exception:
                    log.exception("consumer loop error", extra={"durable": self.sub.durable})
                    pull = None
                    await asyncio.sleep(1.0)
                    continue
                BATCH_SIZE.labels(self.service, self.sub.durable).observe(len(msgs))
                try:
                    staged = await self._stage(msgs, fetched_at=time.perf_counter())
                except Exception:  # e.g. the database is down: retry the batch later, keep consuming
                    log.exception("batch staging failed", extra={"durable": self.sub.durable})
                    await self._retry_later(msgs)
                    staged = None
                if staged is not None:
                    await staged_batches.put(staged)
        finally:
            # Stopping (or a fatal error) still completes the batches already staged, so they are not redelivered.
            if not finisher.done():
                await staged_batches.put(None)
            await asyncio.gather(finisher, return_exceptions=True)
            if pull is not None:
                with contextlib.suppress(Exception):
                    await pull.unsubscribe()

    async def _fetch(self, pull) -> list[Msg]:  # type: ignore[no-untyped-def]
        """Wait for one message, then take whatever else is already there, up to the batch size.

        A single `fetch(batch_size)` returns only when the batch is full or its timeout ends: at 50 items/s
        and batches of 128 every message waited up to a second for company. Here a message is handled as
        soon as it arrives, and under load the batches still fill, from what queued up meanwhile."""
        msgs: list[Msg] = await pull.fetch(1, timeout=self.options.fetch_timeout)
        if self.batch_size > 1:
            with contextlib.suppress(nats.errors.TimeoutError, TimeoutError):
                msgs += await pull.fetch(self.batch_size - 1, timeout=GRAB_SECONDS)
        return msgs

    async def _finish_in_order(self, staged_batches: asyncio.Queue[_Staged | None]) -> None:
        while (staged := await staged_batches.get()) is not None:
            await self._finish(staged)

    async def _stage(self, msgs: list[Msg], fetched_at: float) -> _Staged | None:
        """Everything before the handlers: dead-letter what cannot be handled, ack what was handled
        already, prepare the rest. None when nothing is left to handle."""
        ready: list[tuple[Msg, Event]] = []
        for msg in msgs:
            delivered = msg.metadata.num_delivered or 1
            if delivered > 1:
                REDELIVERIES.labels(self.service, self.sub.durable).inc()
            if delivered > self.options.max_deliver:
                # It was handed out that often without an ack: the process handling it keeps dying.
                await self._dead_letter(msg, "delivered too many times without completing")
                continue
            event_type = self.sub.event_type(msg.subject)
            if event_type is None:
                await msg.ack()  # a subject this consumer does not handle (e.g. a newer version)
                self._count("skipped")
                continue
            try:
                event = event_type.model_validate_json(msg.data)
            except ValidationError as exc:
                await self._dead_letter(msg, f"invalid event payload: {exc.errors()[:3]}")
                continue
            if self.sub.relevant is not None and not self.sub.relevant(event):
                await msg.ack()
                self._count("irrelevant")
                continue
            ready.append((msg, event))
        if not ready:
            return None

        fresh = await self._skip_already_handled(ready)
        if not fresh:
            return None
        prepared: Any = None
        started = time.perf_counter()
        if self.sub.prepare is not None:
            try:
                prepared = await self.sub.prepare([event for _, event in fresh])
            except Exception as exc:
                await self._preparation_failed(fresh, exc)
                return None
        return _Staged(fresh, prepared, fetched_at, started)

    async def _preparation_failed(self, fresh: list[tuple[Msg, Event]], exc: Exception) -> None:
        log.error("batch preparation failed", extra={"durable": self.sub.durable}, exc_info=exc)
        for msg, _ in fresh:
            await self._fail(msg, exc)

    async def _finish(self, staged: _Staged) -> None:
        """Wait for what `prepare` started, run the handlers and commit (the whole batch at once if it
        can), then ack."""
        if inspect.isawaitable(staged.prepared):
            try:
                staged.prepared = await staged.prepared
            except Exception as exc:
                await self._preparation_failed(staged.fresh, exc)
                return
        if self.sub.prepare is not None:
            PREPARE_DURATION.labels(self.service, self.sub.durable).observe(
                time.perf_counter() - staged.prepare_started)
        try:
            if not (len(staged.fresh) > 1 and await self._handle_together(staged.fresh, staged.prepared)):
                for msg, event in staged.fresh:
                    await self._handle_one(msg, event, staged.prepared)
        except Exception:  # e.g. NATS went away between commit and ack: the inbox makes redelivery harmless
            log.exception("batch handling failed; unacked messages will be redelivered",
                          extra={"durable": self.sub.durable})
        HANDLE_DURATION.labels(self.service, self.sub.durable).observe(time.perf_counter() - staged.fetched_at)

    async def _retry_later(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            with contextlib.suppress(Exception):  # an unacked message comes back after ack_wait anyway
                await msg.nak(delay=self.options.delay_for(msg.metadata.num_delivered or 1))
        self._count("retried", len(msgs))

    async def _handle_together(self, batch: list[tuple[Msg, Event]], prepared: Any) -> bool:
        """Handle the whole batch in one transaction (one commit instead of one per message).
        If anything in it fails, nothing of it is kept and the caller handles the messages one by
        one, so a single bad message is retried or dead-lettered on its own."""
        try:
            async with self.sessions() as session, session.begin():
                # The inbox was checked for the whole batch just before; a concurrent replica that
                # handled one of these makes the commit fail on the inbox key, and we fall back.
                with session.no_autoflush:
                    for msg, event in batch:
                        with self._span(msg, event):
                            await self._apply(session, msg, event, prepared, check_inbox=False)
        except Exception:  # fall back to one transaction per message
            log.info("batch transaction failed; handling messages one by one", extra={"durable": self.sub.durable})
            return False
        for msg, _ in batch:
            await msg.ack()
        self._count("acked", len(batch))
        return True

    def _span(self, msg: Msg, event: Event):  # type: ignore[no-untyped-def]
        return self._tracer.start_as_current_span(
            f"{msg.subject} process", context=context_from_headers(msg.headers), kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "nats", "messaging.destination.name": msg.subject,
                        "messaging.consumer.group.name": self.sub.durable,
                        "messaging.message.id": str(event.event_id)},
        )

    async def _apply(self, session: AsyncSession, msg: Msg, event: Event, prepared: Any,
                     check_inbox: bool = True) -> None:
        """The handler plus its inbox row, in the caller's transaction."""
        if check_inbox and await session.get(self.inbox_model, (self.sub.durable, str(event.event_id))):
            return
        await self.sub.handler(session, event, prepared)
        # Written with the batch's other staged rows in one INSERT at commit (no ORM object per message).
        stage_row(session, self.inbox_model, {"consumer": self.sub.durable, "event_id": str(event.event_id),
                                              "subject": msg.subject, "processed_at": datetime.now(UTC)})

    async def _skip_already_handled(self, batch: list[tuple[Msg, Event]]) -> list[tuple[Msg, Event]]:
        inbox = self.inbox_model
        ids = [str(event.event_id) for _, event in batch]
        async with self.read_sessions() as session:
            done = set(await session.scalars(
                select(inbox.event_id).where(inbox.consumer == self.sub.durable, inbox.event_id.in_(ids))
            ))
        fresh = []
        for msg, event in batch:
            if str(event.event_id) in done:
                await msg.ack()
                self._count("duplicate")
            else:
                fresh.append((msg, event))
        return fresh

    async def _handle_one(self, msg: Msg, event: Event, prepared: Any) -> None:
        with self._span(msg, event):
            try:
                async with self.sessions() as session, session.begin():
                    await self._apply(session, msg, event, prepared)
            except Exception as exc:  # decided below: retry or dead-letter
                await self._fail(msg, exc)
                return
            await msg.ack()
            self._count("acked")

    def _count(self, outcome: str, n: int = 1) -> None:
        CONSUMED.labels(self.service, self.sub.durable, outcome).inc(n)

    async def _fail(self, msg: Msg, exc: Exception) -> None:
        delivered = msg.metadata.num_delivered or 1
        if delivered >= self.options.max_deliver:
            await self._dead_letter(msg, f"{type(exc).__name__}: {exc}")
            return
        delay = self.options.delay_for(delivered)
        log.warning("handler failed; redelivering", extra={
            "durable": self.sub.durable, "delivered": delivered, "delay": delay,
            "error": f"{type(exc).__name__}: {exc}"})
        await msg.nak(delay=delay)
        self._count("retried")

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        try:
            await dead_letter(self.broker, self.service, self.sub.durable, msg, reason)
        except Exception:
            log.exception("dead-lettering failed; message will be redelivered")
            await msg.nak(delay=self.options.delay_for(len(self.options.backoff)))
            return
        log.error("message dead-lettered", extra={"durable": self.sub.durable, "reason": reason})
        await msg.ack()
        self._count("dead_lettered")

"""Transactional outbox: `Outbox.add` stores an event with the change; `OutboxRelay` publishes it.

The relay publishes rows in id order and marks them published only after JetStream acknowledged
them. It wakes when a transaction that wrote events commits (in this process, and on PostgreSQL in
every replica through LISTEN/NOTIFY: closedloop.wakeup, ADR 0008); its poll is only the safety net.
While NATS is down it keeps the rows and retries; a row published twice (crash between publish and
commit) is dropped by JetStream's de-duplication on `Nats-Msg-Id`.

Staged events are written when their transaction commits, all in one multi-row INSERT: ORM objects
would be inserted one statement per row on SQLite (its autoincrement keys come back one by one), which
cost a consumer batch of 128 events ~130 round trips to the database thread. Within savepoints (ingest
stores each item of a batch in one) an event is written when its savepoint is released, so it takes an
id ahead of events the enclosing transaction staged before the savepoint began.
"""

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Table, bindparam, event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from closedloop.events import Event
from closedloop.messaging.broker import Broker
from closedloop.messaging.tables import OutboxMixin
from closedloop.metrics import EVENTS_PUBLISHED, OUTBOX_BACKLOG, PUBLISH_FAILURES
from closedloop.telemetry import current_trace_headers
from closedloop.wakeup import Wakeup, wake_after_commit

log = logging.getLogger(__name__)

BACKLOG_EVERY_SECONDS = 5.0
# Where a session keeps the rows staged and not yet written: [(model, row), ...], and for each open
# savepoint how many were staged before it began: releasing or rolling back a savepoint writes or drops only
# what was staged within it; the rest belongs to the enclosing transaction.
STAGED_KEY = "closedloop.outbox.staged"
SAVEPOINT_MARKS_KEY = "closedloop.outbox.savepoint_marks"


class Outbox:
    def __init__(self, model: type[OutboxMixin]) -> None:
        self.model = model
        self.table: Table = model.__table__  # type: ignore[attr-defined]
        # The relays of this table wake on it after each commit that wrote events (wakeup.py).
        self.channel = f"closedloop_{model.__tablename__}"

    def add(self, session: AsyncSession, event: Event) -> None:
        """Stage `event` in the caller's transaction; it is written when that commits, and published
        only if it does."""
        stage_row(session, self.model, {
            "event_id": str(event.event_id),
            "subject": event.nats_subject,
            "payload": event.model_dump_json(),
            "headers": current_trace_headers(),
            "created_at": datetime.now(UTC),
            "published_at": None,
            "attempts": 0,
            "last_error": None,
        })
        # Committing is the caller's job; the relays (this process's and, on PostgreSQL, every replica's)
        # wake when it has, so an event leaves within milliseconds of its commit, not at the next poll.
        wake_after_commit(session, self.channel)

    async def backlog(self, session: AsyncSession) -> int:
        return await session.scalar(
            select(func.count()).select_from(self.model).where(self.model.published_at.is_(None))
        ) or 0


def stage_row(session: AsyncSession | Session, model: type, row: dict[str, Any]) -> None:
    """Write `row` into `model`'s table when the session's transaction (or savepoint) commits, in one
    multi-row INSERT with the others staged (outbox events, the consumers' inbox rows); dropped on rollback."""
    session.info.setdefault(STAGED_KEY, []).append((model, row))


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.setdefault(SAVEPOINT_MARKS_KEY, {})[transaction] = len(session.info.get(STAGED_KEY, []))


def _take_staged(session: Session, transaction: SessionTransaction | None) -> list[tuple[type, dict[str, Any]]]:
    """The rows staged within `transaction` (a savepoint; None: the whole transaction), removed."""
    marks = session.info.get(SAVEPOINT_MARKS_KEY, {})
    start = marks.pop(transaction, 0) if transaction is not None else 0
    if transaction is None:
        marks.clear()
    staged = session.info.get(STAGED_KEY, [])
    taken: list[tuple[type, dict[str, Any]]] = staged[start:]
    del staged[start:]
    return taken


@event.listens_for(Session, "before_commit")  # also when a savepoint is released: its rows go in with it
def _write_staged_events(session: Session) -> None:
    by_model: dict[type, list[dict[str, Any]]] = {}
    for model, row in _take_staged(session, session.get_nested_transaction()):
        by_model.setdefault(model, []).append(row)
    for model, rows in by_model.items():
        session.execute(insert(model), rows)  # one executemany, no RETURNING


@event.listens_for(Session, "after_soft_rollback")
def _drop_staged_events(session: Session, previous_transaction: SessionTransaction) -> None:
    _take_staged(session, previous_transaction if previous_transaction.nested else None)


class OutboxRelay:
    def __init__(self, outbox: Outbox, sessions: async_sessionmaker[AsyncSession], broker: Broker,
                 poll_seconds: float = 0.5, batch_size: int = 100) -> None:
        self.outbox = outbox
        self.sessions = sessions
        self.broker = broker
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # On PostgreSQL the wake-up also LISTENs, so a commit in another replica wakes this relay.
        bind = sessions.kw.get("bind")
        database_url = bind.url.render_as_string(hide_password=False) if bind is not None else None
        self.wakeup = Wakeup(outbox.channel, database_url)

    def start(self) -> None:
        self.wakeup.start()
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop the loop, then make one last attempt to publish what is pending."""
        self._stopping = True
        await self.wakeup.stop()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self.broker.is_connected:
            try:
                await self.publish_pending()
            except Exception:
                log.warning("outbox not fully flushed on shutdown", exc_info=True)

    async def _run(self) -> None:
        backlog_measured_at = 0.0
        while not self._stopping:
            # Cleared before the pass, not after: a commit while this pass runs must wake the next one.
            self.wakeup.clear()
            published = 0
            if time.monotonic() - backlog_measured_at > BACKLOG_EVERY_SECONDS:
                backlog_measured_at = time.monotonic()
                with contextlib.suppress(Exception):
                    async with self.sessions() as session:
                        OUTBOX_BACKLOG.labels(self.broker.name).set(await self.outbox.backlog(session))
            if self.broker.is_connected:
                try:
                    published = await self.publish_pending()
                except Exception:
                    log.warning("outbox relay pass failed", exc_info=True)
            if published >= self.batch_size:
                continue  # more waiting: no pause
            if not self._stopping:
                await self.wakeup.wait(self.poll_seconds)  # the poll is the safety net, the wake-up the rule

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows; returns how many were published.

        The batch is published concurrently (JetStream receives them in order, as they leave one
        connection in order) and each row is marked only after its own ack. On PostgreSQL the rows
        stay locked (`FOR UPDATE SKIP LOCKED`) while publishing, so replicas never relay the same
        rows at once. On SQLite a lock would be the whole database, blocking every writer for the
        length of a network round trip, so rows are read, published, then marked in a second
        transaction; a single process relays there, and a double publish is de-duplicated anyway.
        Rows are read as plain columns and marked with one statement per outcome, not as ORM objects:
        the relay runs after nearly every commit, and its cost per event adds to every hop.
        """
        async with self.sessions() as session:
            if session.bind.dialect.name == "postgresql":
                async with session.begin():
                    rows = await self._pending(session, lock=True)
                    return await self._publish(session, rows)
            async with session.begin():
                rows = await self._pending(session, lock=False)
            if not rows:
                return 0
            async with session.begin():
                return await self._publish(session, rows)

    async def _pending(self, session: AsyncSession, lock: bool) -> list[Row[Any]]:
        table = self.outbox.table
        query = (select(table.c.id, table.c.event_id, table.c.subject, table.c.payload, table.c.headers)
                 .where(table.c.published_at.is_(None)).order_by(table.c.id).limit(self.batch_size))
        if lock:
            query = query.with_for_update(skip_locked=True)
        return list((await session.execute(query)).all())

    async def _publish(self, session: AsyncSession, rows: list[Row[Any]]) -> int:
        if not rows:
            return 0
        outcomes = await asyncio.gather(*(
            self.broker.publish(row.subject, row.payload.encode(), dict(row.headers or {}), msg_id=row.event_id)
            for row in rows
        ), return_exceptions=True)
        table = self.outbox.table
        published, failed = [], []
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                PUBLISH_FAILURES.labels(self.broker.name).inc()
                error = f"{type(outcome).__name__}: {outcome}"[:2000]
                failed.append({"b_id": row.id, "b_error": error})
                log.warning("publish failed; will retry", extra={"subject": row.subject, "error": error})
            else:
                EVENTS_PUBLISHED.labels(self.broker.name, row.subject).inc()
                published.append(row.id)
        if published:
            await session.execute(update(table).where(table.c.id.in_(published))
                                  .values(published_at=datetime.now(UTC), attempts=table.c.attempts + 1))
        if failed:
            await session.execute(update(table).where(table.c.id == bindparam("b_id"))
                                  .values(last_error=bindparam("b_error"), attempts=table.c.attempts + 1), failed)
        return len(published)

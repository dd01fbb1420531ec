"""Workers wake when a transaction that gave them work commits (and only then), in this process and, on
PostgreSQL, in other processes through LISTEN/NOTIFY. Real SQLite and PostgreSQL, real nats-server."""

import asyncio
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import String, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.db import ServiceBase, create_engine, new_metadata, session_factory
from closedloop.events import CustomerRef, FeedbackReceivedV1
from closedloop.messaging.broker import Broker
from closedloop.messaging.models import messaging_models
from closedloop.messaging.outbox import OutboxRelay
from closedloop.testing import POSTGRES_URL, eventually, requires_postgres
from closedloop.wakeup import Wakeup, wake_after_commit


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


OutboxRow, InboxRow, outbox = messaging_models(Base)


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)


@pytest.fixture
async def engine(database_url):
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


def channel() -> str:
    return f"test_{uuid4().hex[:12]}"


async def started(wakeup: Wakeup) -> Wakeup:
    wakeup.start()
    return wakeup


async def test_a_commit_wakes_and_a_rollback_does_not(engine):
    sessions = session_factory(engine)
    name = channel()
    wakeup = await started(Wakeup(name))
    try:
        with pytest.raises(RuntimeError):
            async with sessions() as session, session.begin():
                session.add(Note(id=str(uuid4())))
                wake_after_commit(session, name)
                raise RuntimeError("rolled back")
        assert not await wakeup.wait(0.3), "a rolled-back transaction wakes no one"

        async with sessions() as session, session.begin():
            session.add(Note(id=str(uuid4())))
            wake_after_commit(session, name)
            nested = await session.begin_nested()
            wake_after_commit(session, name)
            await nested.commit()
            assert not await wakeup.wait(0.05), "a released savepoint is not yet a commit"
        assert await wakeup.wait(1.0)
    finally:
        await wakeup.stop()


@pytest.mark.postgres
@requires_postgres
async def test_postgres_wakes_workers_of_other_processes():
    name = channel()
    wakeup = await started(Wakeup(name, POSTGRES_URL))
    try:
        async def listening() -> bool:
            return wakeup.listening

        await eventually(listening, timeout=10)
        wakeup.clear()
        # Another replica: its own connection, no session of this process, so only the database can tell us.
        dsn = make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)
        other = await asyncpg.connect(dsn)
        try:
            transaction = other.transaction()
            await transaction.start()
            await other.execute("SELECT pg_notify($1, '')", name)
            await transaction.rollback()
            assert not await wakeup.wait(0.3), "rolled back: no notification"
            async with other.transaction():
                await other.execute("SELECT pg_notify($1, '')", name)
            assert await wakeup.wait(5.0)
        finally:
            await other.close()
    finally:
        await wakeup.stop()


async def test_relay_publishes_at_commit_not_at_its_poll(engine, nats_server):
    broker = Broker(nats_server.url, "test")
    broker.start()
    await broker.wait_connected(10)
    sessions = session_factory(engine)
    relay = OutboxRelay(outbox, sessions, broker, poll_seconds=30)  # a poll that never comes in this test
    relay.start()
    try:
        await asyncio.sleep(0.3)  # the relay's first pass found nothing and waits
        event = FeedbackReceivedV1(feedback_id=uuid4(), channel="web", text="hi", customer=CustomerRef(id="c"),
                                   received_at=datetime.now(UTC))
        async with sessions() as session, session.begin():
            outbox.add(session, event)

        async def published() -> bool:
            async with sessions() as session:
                return await session.scalar(select(func.count()).select_from(OutboxRow)
                                            .where(OutboxRow.published_at.is_not(None))) == 1

        await eventually(published, timeout=10)  # far below the 30 s poll
        message = await broker.js.get_last_msg("FEEDBACK", event.nats_subject)
        assert message.headers["Nats-Msg-Id"] == str(event.event_id)
    finally:
        await relay.stop()
        await broker.close()

"""Outbox, inbox, consumers and dead letters against a real nats-server and real databases."""

import asyncio
import json
from datetime import UTC, datetime
from uuid import uuid4

import nats
import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.db import ServiceBase, create_engine, new_metadata, read_session_factory, session_factory
from closedloop.events import CustomerRef, FeedbackReceivedV1
from closedloop.messaging.broker import Broker
from closedloop.messaging.consumer import ConsumerOptions, ConsumerRunner, Subscription
from closedloop.messaging.deadletters import count_dead_letters, list_dead_letters, replay_dead_letter
from closedloop.messaging.models import messaging_models
from closedloop.messaging.outbox import OutboxRelay
from closedloop.testing import eventually


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


OutboxRow, InboxRow, outbox = messaging_models(Base)


class Handled(Base):
    __tablename__ = "handled"
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)


FAST = ConsumerOptions(batch_size=8, fetch_timeout=0.2, ack_wait=5, max_deliver=3, backoff=(0.05,))


def received(text: str = "hello") -> FeedbackReceivedV1:
    return FeedbackReceivedV1(feedback_id=uuid4(), channel="web", text=text, customer=CustomerRef(id="c"),
                              received_at=datetime.now(UTC))


@pytest.fixture
async def sessions(database_url):
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def broker(nats_server):
    broker = Broker(nats_server.url, "test")
    broker.start()
    await broker.wait_connected(10)
    yield broker
    await broker.close()


async def stage(sessions, *events) -> None:
    async with sessions() as session, session.begin():
        for event in events:
            outbox.add(session, event)


async def count(sessions, model, *where) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def stream_messages(broker: Broker, stream: str) -> int:
    return (await broker.js.stream_info(stream)).state.messages


async def test_relay_publishes_in_order_with_event_id_as_message_id(sessions, broker, nats_server):
    events = [received(f"text {i}") for i in range(5)]
    await stage(sessions, *events)
    relay = OutboxRelay(outbox, sessions, broker)
    assert await relay.publish_pending() == 5
    assert await relay.publish_pending() == 0
    assert await count(sessions, OutboxRow, OutboxRow.published_at.is_(None)) == 0

    nc = await nats.connect(nats_server.url)
    sub = await nc.jetstream().subscribe("feedback.received.v1", durable="order-check")
    got = [await sub.next_msg(timeout=5) for _ in events]
    assert [m.headers["Nats-Msg-Id"] for m in got] == [str(e.event_id) for e in events]
    await nc.close()


async def test_republishing_the_same_row_is_deduplicated_by_jetstream(sessions, broker):
    event = received()
    for _ in range(2):
        await broker.publish(event.nats_subject, event.model_dump_json().encode(), {}, msg_id=str(event.event_id))
    assert await stream_messages(broker, "FEEDBACK") == 1


async def test_relay_keeps_events_while_nats_is_down_and_delivers_after(sessions, broker, nats_server):
    relay = OutboxRelay(outbox, sessions, broker, poll_seconds=0.05)
    relay.start()
    nats_server.stop()
    await eventually(lambda: asyncio.sleep(0, result=not broker.is_connected), timeout=10)
    events = [received(f"while down {i}") for i in range(3)]
    await stage(sessions, *events)
    await asyncio.sleep(0.5)
    assert await count(sessions, OutboxRow, OutboxRow.published_at.is_(None)) == 3

    nats_server.start()  # same port and store: the client reconnects by itself

    async def all_published():
        return await count(sessions, OutboxRow, OutboxRow.published_at.is_(None)) == 0
    await eventually(all_published, timeout=30)
    await relay.stop()
    assert await stream_messages(broker, "FEEDBACK") == 3


def runner(broker, sessions, handler, prepare=None, durable="test-consumer", relevant=None) -> ConsumerRunner:
    subscription = Subscription(durable=durable, stream="FEEDBACK",
                                subjects={FeedbackReceivedV1.nats_subject: FeedbackReceivedV1},
                                handler=handler, prepare=prepare, relevant=relevant)
    return ConsumerRunner("test", subscription, broker, sessions, InboxRow, FAST)


async def all_acked(broker: Broker, messages: int) -> bool:
    """The test consumer was handed the stream's first `messages` messages and acked every one."""
    try:
        info = await broker.js.consumer_info("FEEDBACK", "test-consumer")
    except NotFoundError:
        return False  # not created yet
    return info.num_ack_pending == 0 and info.num_pending == 0 and info.delivered.stream_seq == messages


async def record(session, event, _prepared) -> None:
    session.add(Handled(event_id=str(event.event_id)))


async def test_consumer_handles_a_redelivered_event_once(sessions, broker):
    event = received()
    payload = event.model_dump_json().encode()
    # Two copies with different message ids get past JetStream's de-duplication: the inbox stops the second.
    await broker.publish(event.nats_subject, payload, {}, msg_id="copy-1")
    await broker.publish(event.nats_subject, payload, {}, msg_id="copy-2")
    consumer = runner(broker, sessions, record)
    consumer.start()

    await eventually(lambda: all_acked(broker, 2))
    await consumer.stop()
    assert await count(sessions, Handled) == 1
    assert await count(sessions, InboxRow) == 1


async def test_events_the_handler_would_ignore_are_acked_without_a_transaction(sessions, broker):
    for text in ("keep one", "ignore me", "keep two"):
        event = received(text)
        await broker.publish(event.nats_subject, event.model_dump_json().encode(), {}, msg_id=str(event.event_id))
    seen: list[str] = []

    async def handle(session, event, _prepared) -> None:
        seen.append(event.text)
        await record(session, event, _prepared)

    consumer = runner(broker, sessions, handle, relevant=lambda event: event.text.startswith("keep"))
    consumer.start()

    await eventually(lambda: all_acked(broker, 3))
    await consumer.stop()
    assert seen == ["keep one", "keep two"]
    # The ignored event left nothing behind: no inbox row, so nothing to purge either.
    assert await count(sessions, Handled) == 2
    assert await count(sessions, InboxRow) == 2


async def test_failing_handler_is_redelivered_until_it_succeeds(sessions, broker):
    attempts = []

    async def flaky(session, event, prepared):
        attempts.append(event.event_id)
        if len(attempts) < 3:
            raise RuntimeError("database hiccup")
        await record(session, event, prepared)

    event = received()
    await broker.publish(event.nats_subject, event.model_dump_json().encode(), {}, msg_id=str(event.event_id))
    consumer = runner(broker, sessions, flaky)
    consumer.start()
    await eventually(lambda: count(sessions, Handled))
    await consumer.stop()
    assert len(attempts) == 3
    assert await count(sessions, Handled) == 1


async def test_poison_message_is_dead_lettered_then_replayed(sessions, broker):
    broken = True

    async def handler(session, event, prepared):
        if broken:
            raise ValueError("cannot handle this yet")
        await record(session, event, prepared)

    event = received()
    await broker.publish(event.nats_subject, event.model_dump_json().encode(), {}, msg_id=str(event.event_id))
    consumer = runner(broker, sessions, handler)
    consumer.start()

    async def dead_letters():
        return await list_dead_letters(broker, "test")
    letters = await eventually(dead_letters)
    assert len(letters) == 1
    letter = letters[0]
    assert letter.original_subject == "feedback.received.v1"
    assert letter.event_id == str(event.event_id)
    assert letter.consumer == "test-consumer"
    assert letter.deliveries == FAST.max_deliver
    assert "cannot handle this yet" in letter.reason
    assert await count(sessions, Handled) == 0
    assert await count(sessions, InboxRow) == 0  # nothing half-done

    broken = False
    await replay_dead_letter(broker, letter)
    await eventually(lambda: count(sessions, Handled))
    await consumer.stop()
    assert await list_dead_letters(broker, "test") == []


async def test_invalid_payload_goes_straight_to_dead_letters(sessions, broker):
    for n in range(3):
        await broker.publish("feedback.received.v1", b'{"not": "an event"}', {}, msg_id=f"garbage-{n}")
    consumer = runner(broker, sessions, record)
    consumer.start()

    async def dead_letters():
        found = await list_dead_letters(broker, "test")
        return found if len(found) == 3 else None
    letters = await eventually(dead_letters)
    await consumer.stop()
    assert letters[0].deliveries == 1
    assert "invalid event payload" in letters[0].reason
    assert await count_dead_letters(broker, "test") == 3
    assert await count_dead_letters(broker, "other-service") == 0
    assert [d.sequence for d in await list_dead_letters(broker, "test", 2, letters[0].sequence)] == [
        letters[1].sequence, letters[2].sequence]


async def test_prepare_runs_once_per_fetched_batch(sessions, broker):
    events = [received(f"batch {i}") for i in range(12)]
    for event in events:
        await broker.publish(event.nats_subject, event.model_dump_json().encode(), {}, msg_id=str(event.event_id))
    batch_sizes = []

    async def prepare(batch):
        batch_sizes.append(len(batch))
        return {str(e.event_id): e.text.upper() for e in batch}

    async def handler(session, event, prepared):
        assert prepared[str(event.event_id)] == event.text.upper()
        await record(session, event, prepared)

    consumer = runner(broker, sessions, handler, prepare=prepare)
    consumer.start()
    await eventually(lambda: asyncio.sleep(0, result=sum(batch_sizes) >= 12))
    await eventually(lambda: _handled_all(sessions, 12))
    await consumer.stop()
    assert sum(batch_sizes) == 12
    assert max(batch_sizes) > 1  # really batched: fewer model calls than messages
    assert len(batch_sizes) < 12


async def _handled_all(sessions, n: int) -> bool:
    return await count(sessions, Handled) == n


async def test_a_batch_whose_inbox_check_fails_is_retried_and_handled_once(sessions, broker):
    event = received("the database blinked")
    await broker.publish(event.nats_subject, event.model_dump_json().encode(), {}, msg_id=str(event.event_id))
    failures = []

    def reads_failing_once():
        if not failures:
            failures.append("inbox check")
            raise ConnectionError("database unreachable")
        return sessions()

    subscription = Subscription(durable="flaky-reads", stream="FEEDBACK",
                                subjects={FeedbackReceivedV1.nats_subject: FeedbackReceivedV1}, handler=record)
    consumer = ConsumerRunner("test", subscription, broker, sessions, InboxRow, FAST, read_sessions=reads_failing_once)
    consumer.start()
    await eventually(lambda: _handled_all(sessions, 1))
    await consumer.stop()
    assert failures == ["inbox check"]  # it really failed once, and the loop kept consuming after it
    assert await count(sessions, InboxRow, InboxRow.consumer == "flaky-reads") == 1


async def test_a_read_only_session_does_not_wait_for_a_writer(database_url):
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        writes, reads = session_factory(engine), read_session_factory(engine)
        async with writes() as writer, writer.begin():
            writer.add(Handled(event_id="being-written"))
            await writer.flush()  # the writer now holds the database's write lock (SQLite) / the row (PostgreSQL)
            async with reads() as reader:
                seen = await asyncio.wait_for(reader.scalar(select(func.count()).select_from(Handled)), timeout=5)
        assert seen == 0  # the last commit, not the open transaction
        async with reads() as reader:
            assert await reader.scalar(select(func.count()).select_from(Handled)) == 1
    finally:
        await engine.dispose()


async def test_prepare_may_return_an_awaitable_that_is_awaited_before_handling(sessions, broker):
    """classify's prepare starts the model call and returns at once; the handlers must still see its result,
    and a batch whose deferred preparation fails is retried (here it fails once)."""
    events = [received(f"deferred {i}") for i in range(10)]
    for event in events:
        await broker.publish(event.nats_subject, event.model_dump_json().encode(), {}, msg_id=str(event.event_id))
    failures: list[str] = []

    async def slow_result(batch):
        await asyncio.sleep(0.05)
        if not failures:
            failures.append("model call")
            raise RuntimeError("model worker died")
        return {str(e.event_id): e.text.upper() for e in batch}

    async def prepare(batch):
        return asyncio.ensure_future(slow_result(batch))

    async def handler(session, event, prepared):
        assert prepared[str(event.event_id)] == event.text.upper()
        await record(session, event, prepared)

    consumer = runner(broker, sessions, handler, prepare=prepare, durable="deferred-prepare")
    consumer.start()
    await eventually(lambda: _handled_all(sessions, 10), timeout=20)
    await consumer.stop()
    assert failures == ["model call"]
    assert await count(sessions, InboxRow, InboxRow.consumer == "deferred-prepare") == 10


async def test_staged_events_are_written_in_one_statement_at_commit_and_dropped_on_rollback(sessions):
    from sqlalchemy import event as sa_event

    engine = sessions.kw["bind"].sync_engine
    inserts: list[int] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOX"):
            inserts.append(len(parameters) if executemany else 1)

    sa_event.listen(engine, "before_cursor_execute", on_execute)
    try:
        await stage(sessions, *[received(f"committed {i}") for i in range(50)])
        with pytest.raises(RuntimeError):
            async with sessions() as session, session.begin():
                outbox.add(session, received("rolled back"))
                raise RuntimeError("the change failed")
        async with sessions() as session:  # a rollback inside one session must not leak into its next commit
            async with session.begin():
                outbox.add(session, received("discarded"))
                await session.rollback()
            async with session.begin():
                outbox.add(session, received("kept"))
    finally:
        sa_event.remove(engine, "before_cursor_execute", on_execute)
    assert inserts[0] == 50 and len(inserts) == 2  # 50 rows in one executemany; then "kept" alone
    async with sessions() as session:
        texts = [row.payload for row in await session.scalars(select(OutboxRow).order_by(OutboxRow.id))]
    assert len(texts) == 51
    assert not any("rolled back" in t or "discarded" in t for t in texts)
    assert "kept" in texts[-1]


async def test_a_savepoint_writes_or_drops_only_the_events_staged_within_it(sessions):
    async with sessions() as session, session.begin():
        outbox.add(session, received("outer before"))
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                outbox.add(session, received("inside a savepoint that fails"))
                raise RuntimeError("this item is rejected")
        async with session.begin_nested():
            async with session.begin_nested():
                outbox.add(session, received("inside a released savepoint"))
            with pytest.raises(RuntimeError):
                async with session.begin_nested():
                    outbox.add(session, received("inside another failed savepoint"))
                    raise RuntimeError("rejected too")
        with pytest.raises(RuntimeError):
            async with session.begin_nested():  # rolls back what its released inner savepoint wrote
                async with session.begin_nested():
                    outbox.add(session, received("released, then its parent fails"))
                raise RuntimeError("the parent item is rejected")
        outbox.add(session, received("outer after"))
    async with sessions() as session:
        payloads = [row.payload for row in await session.scalars(select(OutboxRow).order_by(OutboxRow.id))]
    texts = [json.loads(p)["text"] for p in payloads]
    assert texts == ["inside a released savepoint", "outer before", "outer after"]


async def test_streams_keep_messages_for_the_configured_age_and_the_setting_can_change(nats_server):
    """Erased customers' texts leave the broker with age (closedloop.config.stream_max_age_days)."""
    aged = Broker(nats_server.url, "test", stream_max_age_days=30)
    aged.start()
    await aged.wait_connected(10)
    try:
        info = await aged.js.stream_info("FEEDBACK")
        assert info.config.max_age == 30 * 86400
    finally:
        await aged.close()
    forever = Broker(nats_server.url, "test", stream_max_age_days=0)
    forever.start()
    await forever.wait_connected(10)
    try:
        assert (await forever.js.stream_info("DEADLETTER")).config.max_age in (0, None)
    finally:
        await forever.close()

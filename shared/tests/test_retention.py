"""The retention job deletes what is older than its rule allows, and nothing else (SQLite and PostgreSQL)."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from closedloop.db import ServiceBase, create_engine, new_metadata, session_factory
from closedloop.messaging.models import messaging_models
from closedloop.retention import BATCH, RetentionWorker, inbox_rule, published_outbox_rule


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


OutboxRow, InboxRow, _ = messaging_models(Base)
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def outbox_row(n: int, published: datetime | None) -> OutboxRow:
    return OutboxRow(event_id=f"00000000-0000-0000-0000-{n:012d}", subject="x.y.v1", payload="{}", headers={},
                     created_at=published or NOW, published_at=published, attempts=0)


async def test_old_published_outbox_and_inbox_rows_go_the_rest_stays(database_url):
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    sessions = session_factory(engine)
    old, recent = NOW - timedelta(days=8), NOW - timedelta(days=6)
    async with sessions() as session, session.begin():
        # More old rows than one batch, so the job has to come back for the rest.
        session.add_all([outbox_row(n, old) for n in range(BATCH + 5)])
        session.add_all([outbox_row(BATCH + 10, recent), outbox_row(BATCH + 11, None)])  # recent; unpublished
        session.add_all([InboxRow(consumer="c", event_id=f"e{n}", subject="x", processed_at=NOW - timedelta(days=d))
                         for n, d in enumerate((31, 40, 29, 1))])
    worker = RetentionWorker(sessions, interval_seconds=3600)
    worker.add(published_outbox_rule(OutboxRow, days=7))
    worker.add(inbox_rule(InboxRow, days=30))
    worker.add(published_outbox_rule(OutboxRow, days=0))  # 0 days: keeps forever, never runs

    assert await worker.run_once(NOW) == {"outbox (published)": BATCH + 5, "inbox": 2}
    async with sessions() as session:
        left = (await session.scalars(select(OutboxRow.event_id).order_by(OutboxRow.event_id))).all()
        assert [e[-4:] for e in left] == [f"{BATCH + 10:04d}", f"{BATCH + 11:04d}"]
        assert set((await session.scalars(select(InboxRow.event_id))).all()) == {"e2", "e3"}
    assert await worker.run_once(NOW) == {"outbox (published)": 0, "inbox": 0}
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxRow)) == 2
    await engine.dispose()

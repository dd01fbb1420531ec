"""Migrations: 0002 upgrades a database holding 0001 feedback in place, matches the models, and downgrades."""

from datetime import UTC, datetime

from sqlalchemy import text

from closedloop.db import create_engine, session_factory
from closedloop.testing import migrate as migrate_service
from closedloop.testing import schema_differences
from ingest.main import SERVICE_DIR
from ingest.models import Base, Feedback
from ingest.schemas.feedback import to_public


async def migrate(url: str, revision: str, down: bool = False) -> None:
    await migrate_service(SERVICE_DIR, url, revision, down)


async def test_0002_keeps_existing_feedback_readable_and_matches_the_models(database_url):
    await migrate(database_url, "0001")
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(text(
            "INSERT INTO feedback (id, channel, text, customer_id, customer_tier, metadata, status, received_at,"
            " updated_at) VALUES ('f-1', 'app', 'Old feedback', 'c-1', 'vip', '{}', 'resolved', :now, :now)"),
            {"now": now})
    await engine.dispose()

    await migrate(database_url, "head")
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            shown = to_public(await session.get(Feedback, "f-1"))
            assert (shown.text, shown.status, shown.duplicate_count, shown.pii_masked) == \
                ("Old feedback", "resolved", 0, [])
    finally:
        await engine.dispose()
    assert await schema_differences(database_url, Base.metadata) == []

    await migrate(database_url, "0001", down=True)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM feedback"))).scalar() == 1
            tables = await connection.run_sync(lambda sync: sync.dialect.get_table_names(sync))
            assert "customers" not in tables and "feedback_invitations" not in tables
    finally:
        await engine.dispose()

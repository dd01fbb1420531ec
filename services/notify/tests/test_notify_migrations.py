"""Migrations: 0002 upgrades a database with 0001 data in place, matches the models, and downgrades."""

from datetime import UTC, datetime

from sqlalchemy import text

from closedloop.db import create_engine
from closedloop.testing import migrate as migrate_service
from closedloop.testing import schema_differences
from notify.main import SERVICE_DIR
from notify.models import Base


async def migrate(url: str, revision: str, down: bool = False) -> None:
    await migrate_service(SERVICE_DIR, url, revision, down)


async def test_0002_keeps_webhook_history_and_matches_the_models(database_url):
    await migrate(database_url, "0001")
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(text(
            "INSERT INTO webhook_endpoints (id, name, url, secret, event_types, active, created_at) "
            "VALUES ('e-1', 'crm', 'http://crm.example/hook', 'secret', '[\"ticket.*\"]', true, :now)"), {"now": now})
        await connection.execute(text(
            "INSERT INTO deliveries (id, endpoint_id, source_event_id, event_type, target, payload, status, attempts,"
            " next_attempt_at, created_at) VALUES ('d-1', 'e-1', 'ev-1', 'ticket.created.v1', "
            "'http://crm.example/hook', '{}', 'failed', 6, :now, :now)"), {"now": now})
    await engine.dispose()

    await migrate(database_url, "head")
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            row = (await connection.execute(text(
                "SELECT channel, recipient, endpoint_id, status FROM deliveries WHERE id = 'd-1'"))).one()
            assert tuple(row) == ("webhook", "http://crm.example/hook", "e-1", "failed")
    finally:
        await engine.dispose()
    assert await schema_differences(database_url, Base.metadata) == []

    await migrate(database_url, "0001", down=True)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM deliveries"))).scalar() == 1
    finally:
        await engine.dispose()

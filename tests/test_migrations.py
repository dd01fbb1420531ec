"""Every service's migrations: upgrade from empty to head matches its models exactly, downgrade to
base removes everything, and upgrading again works — on SQLite, and on PostgreSQL when configured."""

import importlib

import pytest
from sqlalchemy import inspect

from closedloop.db import create_engine
from closedloop.devtools.processes import CONSOLE, INSIGHTS, SERVICES
from closedloop.testing import migrate, schema_differences


async def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", (*SERVICES, CONSOLE, INSIGHTS))
async def test_migrations_match_the_models_and_run_both_ways(service, database_url):
    service_dir = importlib.import_module(f"{service}.main").SERVICE_DIR
    metadata = importlib.import_module(f"{service}.models").Base.metadata

    await migrate(service_dir, database_url, "head")
    assert await schema_differences(database_url, metadata) == []
    assert set(metadata.tables) <= await table_names(database_url)

    await migrate(service_dir, database_url, "base", down=True)
    assert await table_names(database_url) <= {"alembic_version"}

    await migrate(service_dir, database_url, "head")
    assert await schema_differences(database_url, metadata) == []

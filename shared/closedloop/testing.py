"""Pytest fixtures shared by every test suite (registered in the repository's root conftest.py).

Real parts only: a real nats-server on a free port, real SQLite files, and real PostgreSQL
databases when TEST_POSTGRES_URL is set (a fresh database per test, dropped afterwards).
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from closedloop.config import DEV_API_KEY
from closedloop.db import async_database_url
from closedloop.devtools.nats_server import NatsServer, free_port

# Tests run the services in development mode (the development key is an admin key there), as `make run`
# does; the tests of production behaviour set `environment="production"` on their settings.
os.environ.setdefault("CLOSEDLOOP_ENVIRONMENT", "development")

T = TypeVar("T")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
requires_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="TEST_POSTGRES_URL not set")
BACKENDS = ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, requires_postgres])]


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(free_port(), tmp_path / "jetstream", tmp_path / "nats.log").start()
    yield server
    server.stop()


async def create_postgres_database(name: str) -> str:
    admin = create_async_engine(async_database_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    await admin.dispose()
    return make_url(async_database_url(POSTGRES_URL)).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(name: str) -> None:
    admin = create_async_engine(async_database_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.dispose()


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, and a PostgreSQL database when one is configured."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    name = f"cl_test_{uuid.uuid4().hex[:12]}"
    yield await create_postgres_database(name)
    await drop_postgres_database(name)


@asynccontextmanager
async def running_app(app: FastAPI, api_key: str = DEV_API_KEY) -> AsyncIterator[httpx.AsyncClient]:
    """Run a service app in-process, lifespan included (migrations, broker, consumers), and give
    an HTTP client for it that sends the development API key."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     headers={"X-API-Key": api_key}) as client:
            yield client


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 20.0, interval: float = 0.1) -> T:
    """Poll `check` until it returns something truthy; fail with a clear message after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {getattr(check, '__name__', check)}")
        await asyncio.sleep(interval)


async def migrate(service_dir: Path, url: str, revision: str = "head", down: bool = False) -> None:
    """Run a service's Alembic migrations up (or down) to `revision`, as its migration job does."""
    from alembic import command

    from closedloop.db import alembic_config

    config = alembic_config(service_dir, url)
    await asyncio.to_thread(command.downgrade if down else command.upgrade, config, revision)


async def schema_differences(url: str, metadata: MetaData) -> list[object]:
    """What Alembic's autogenerate would change to make the database match the models ([] = in sync)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from closedloop.db import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), metadata))
    finally:
        await engine.dispose()

"""Async SQLAlchemy engine, sessions and Alembic migrations for one service database.

SQLite (embedded mode) and PostgreSQL (compose / Kubernetes) run from the same code. On SQLite every
transaction starts with BEGIN IMMEDIATE: several tasks write to one file (HTTP handlers, consumers,
the outbox relay) and a deferred transaction that later upgrades to a write fails at once with
SQLITE_BUSY instead of waiting for the busy timeout. Sessions from `read_session_factory` are the
exception: they only read, so they begin deferred and, in WAL mode, never wait for a writer.
"""

import asyncio
import contextlib
import logging
import sqlite3
import weakref
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, Engine, MetaData, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from closedloop import sqlite_inline

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Execution option marking an engine copy whose transactions only read (see read_session_factory).
READ_ONLY_OPTION = "closedloop_read_only"


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite hands back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # type: ignore[no-untyped-def]
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: use datetime.now(UTC)")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect):  # type: ignore[no-untyped-def]
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class ServiceBase(DeclarativeBase):
    """Marker base; each service declares `class Base(ServiceBase)` with its own metadata."""

    __abstract__ = True


def async_database_url(url: str) -> str:
    """Accept plain `postgresql://` / `sqlite://` URLs and pick the async driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, busy_timeout: float = 30.0, pool_timeout: float = 60.0) -> AsyncEngine:
    """`busy_timeout`: how long a SQLite writer waits for another process's write lock; `pool_timeout`:
    how long a request waits for a connection of the pool. Past either, the request gets a 503 with
    Retry-After (closedloop.api), never a 500."""
    url = async_database_url(url)
    if not is_sqlite(url):
        return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, pool_timeout=pool_timeout)

    database = make_url(url).database
    in_memory = not database or database == ":memory:"
    if database and not in_memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # One connection for the writers of this process. SQLite lets one writer at a time in anyway; with a
    # connection each, the others wait in SQLite's busy handler, which sleeps 1, 2, 5 ... 100 ms between
    # tries: under load most of a write's latency was that sleep, with the CPU idle (notify delivered
    # ~10 webhooks/s). Queued for the pool, a writer starts the moment the previous one commits.
    # Readers have their own pool (`read_engine`). Other processes on the same file still meet the busy handler.
    # An in-memory database lives in one connection (SQLAlchemy's StaticPool), which takes no pool sizes.
    pool = {} if in_memory else {"pool_size": 1, "max_overflow": 0, "pool_timeout": pool_timeout}
    # The writers' calls run on the event loop, not through aiosqlite's thread (closedloop.sqlite_inline, ADR 0016).
    connect_args = {"timeout": busy_timeout, "async_creator_fn": sqlite_inline.connect}
    engine = create_async_engine(url, connect_args=connect_args, **pool)
    _prepare_sqlite(engine, busy_timeout)
    _busy_timeouts[engine.sync_engine] = busy_timeout
    return engine


def _prepare_sqlite(engine: AsyncEngine, busy_timeout: float = 30.0) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, decide when transactions begin (see module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted and overwritten content is zeroed, not left in free space: an erased customer's text must
        # not be readable in the file afterwards (closedloop.erasure also empties the WAL).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


_read_engines: "weakref.WeakKeyDictionary[Engine, AsyncEngine]" = weakref.WeakKeyDictionary()
_busy_timeouts: "weakref.WeakKeyDictionary[Engine, float]" = weakref.WeakKeyDictionary()


def read_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine for read-only sessions: on SQLite a pool of its own (the writers have one connection),
    deferred transactions; on PostgreSQL the same pool. Dispose it with the engine."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        # PostgreSQL, or an in-memory SQLite database that only its one connection can see.
        return engine.execution_options(**{READ_ONLY_OPTION: True})
    reader = _read_engines.get(engine.sync_engine)
    if reader is None:
        busy_timeout = _busy_timeouts.get(engine.sync_engine, 30.0)
        reader = create_async_engine(engine.url, connect_args={"timeout": busy_timeout}, pool_size=4, max_overflow=4)
        _prepare_sqlite(reader, busy_timeout)
        reader = reader.execution_options(**{READ_ONLY_OPTION: True})
        _read_engines[engine.sync_engine] = reader
    return reader


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads only (a write in one may fail with SQLITE_BUSY instead of waiting).

    On SQLite a reader then sees the last commit while a writer holds the lock, instead of queueing
    behind it: the consumers check their inbox for batch N+1 while batch N commits."""
    return async_sessionmaker(read_engine(engine), expire_on_commit=False)


async def dispose(engine: AsyncEngine) -> None:
    """Close the engine's connections and its readers'."""
    reader = _read_engines.pop(engine.sync_engine, None)
    if reader is not None:
        await reader.dispose()
    await engine.dispose()


async def truncate_wal(engine: AsyncEngine) -> None:
    """SQLite: copy the write-ahead log into the database file and truncate the log to zero bytes, so the
    earlier versions of rows it still holds are gone. Waits up to the busy timeout for readers to move on;
    logs and gives up past it (the next checkpoint writes over the log). Nothing to do on PostgreSQL."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return
    timeout = _busy_timeouts.get(engine.sync_engine, 30.0)

    def checkpoint() -> tuple[int, int, int]:
        with contextlib.closing(sqlite3.connect(database, timeout=timeout)) as connection:
            return tuple(connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())

    busy, _, _ = await asyncio.to_thread(checkpoint)
    if busy:
        log.warning("WAL checkpoint did not complete: readers kept the log", extra={"database": database})


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def alembic_config(service_dir: Path, url: str) -> Config:
    config = Config(str(service_dir / "alembic.ini"))
    config.set_main_option("script_location", str(service_dir / "migrations"))
    # ConfigParser treats % as interpolation; URL-encoded passwords contain it.
    config.set_main_option("sqlalchemy.url", async_database_url(url).replace("%", "%%"))
    return config


async def run_migrations(service_dir: Path, url: str) -> None:
    """Upgrade to head. Alembic's env.py runs its own event loop, so it gets a worker thread."""
    await asyncio.to_thread(command.upgrade, alembic_config(service_dir, url), "head")


# PostgreSQL SQLSTATEs that mean "try again": serialization failure, deadlock, lock not available.
_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}


def is_contention(exc: BaseException) -> bool:
    """A database error that says "busy now, try again" rather than "this request is wrong": SQLite's
    lock held past the busy timeout, no pooled connection within the pool timeout, a PostgreSQL
    serialization failure, deadlock or lock timeout."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.TimeoutError):  # QueuePool: no connection within pool_timeout
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        message = str(exc.orig).lower()
        if "database is locked" in message or "database table is locked" in message or "database is busy" in message:
            return True
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return code in _RETRYABLE_SQLSTATES
    return False

"""CPU per SQLite transaction through each layer (ADR 0016): SQLAlchemy's asyncio session over aiosqlite's thread
(the services' read engine), the same session with its calls on the event loop (the write engine,
`closedloop.db.create_engine` with `closedloop.sqlite_inline`), and a synchronous SQLAlchemy session on the
same file and pragmas.

    .venv/bin/python bench/db_roundtrip.py

Printed, never asserted. CPU time of this whole process (aiosqlite's thread included).
"""

import asyncio
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker

from closedloop.db import _prepare_sqlite, create_engine

ROUNDS = 2000
QUERY = "SELECT count(*) FROM t WHERE a = :a"


async def through_async_session(engine: AsyncEngine, statements: int) -> float:
    sessions = async_sessionmaker(engine)
    try:
        started = time.process_time()
        for i in range(ROUNDS):
            async with sessions() as session, session.begin():
                for _ in range(statements):
                    await session.execute(text(QUERY), {"a": i})
        return (time.process_time() - started) / ROUNDS * 1000
    finally:
        await engine.dispose()


def through_sync_session(path: Path, statements: int) -> float:
    engine = create_sync_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # as closedloop.db does

    sessions = sessionmaker(engine)
    started = time.process_time()
    for i in range(ROUNDS):
        with sessions() as session, session.begin():
            for _ in range(statements):
                session.execute(text(QUERY), {"a": i})
    engine.dispose()
    return (time.process_time() - started) / ROUNDS * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "roundtrip.db"
        with create_sync_engine(f"sqlite:///{path}").begin() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            connection.exec_driver_sql("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
        url = f"sqlite+aiosqlite:///{path}"
        for statements in (1, 5):
            aiosqlite_engine = create_async_engine(url)
            _prepare_sqlite(aiosqlite_engine)  # the same pragmas and BEGIN IMMEDIATE as the services' engines
            threaded = asyncio.run(through_async_session(aiosqlite_engine, statements))
            inline = asyncio.run(through_async_session(create_engine(url), statements))
            sync = through_sync_session(path, statements)
            print(f"a transaction of {statements} SELECT(s), ms of CPU: async session over aiosqlite's thread "
                  f"{threaded:.2f}, on the event loop (the writers') {inline:.2f}, sync session {sync:.2f}")


if __name__ == "__main__":
    main()

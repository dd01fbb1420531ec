"""Wake a background worker (the outbox relay, notify's dispatcher) as soon as a transaction that gave it
work has committed, instead of on its next poll.

`wake_after_commit(session, channel)` marks the session's transaction. When it commits:
- every `Wakeup` on that channel in this process is woken at once (a session event, no database trip);
- on PostgreSQL, `pg_notify(channel)` was sent inside the transaction, so PostgreSQL delivers it at commit
  to every connection that LISTENs on the channel: the workers of the other replicas wake too. A
  rolled-back transaction notifies no one, in this process or elsewhere.

The worker's poll stays as the safety net (a notification lost while the listening connection was down,
another database that cannot notify): a missed wake-up costs one poll interval, never an event.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

PENDING_KEY = "closedloop.wakeup.channels"
_local: dict[str, set[Callable[[], None]]] = {}


def wake_after_commit(session: AsyncSession | Session, channel: str) -> None:
    """Wake the workers on `channel` once the session's current transaction commits."""
    session.info.setdefault(PENDING_KEY, set()).add(channel)


@event.listens_for(Session, "before_commit")  # also when a savepoint is released; NOTIFY is transactional
def _notify_postgres(session: Session) -> None:
    channels = session.info.get(PENDING_KEY)
    if channels and session.bind is not None and session.bind.dialect.name == "postgresql":
        for channel in sorted(channels):  # PostgreSQL folds repeats of one notification within a transaction
            session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


@event.listens_for(Session, "after_commit")
def _wake_local(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released: the enclosing transaction may still roll back
    for channel in session.info.pop(PENDING_KEY, ()):
        for wake in list(_local.get(channel, ())):
            wake()


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction) -> None:  # type: ignore[no-untyped-def]
    if not previous_transaction.nested:
        session.info.pop(PENDING_KEY, None)


def _listen_dsn(database_url: str | None) -> str | None:
    """A plain PostgreSQL DSN for asyncpg, or None when the database cannot notify (SQLite)."""
    if not database_url:
        return None
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class Wakeup:
    """What a worker waits on between passes: woken by commits on `channel`, or by its poll timeout."""

    RECONNECT_SECONDS = 2.0

    def __init__(self, channel: str, database_url: str | None = None) -> None:
        self.channel = channel
        self._dsn = _listen_dsn(database_url)
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: asyncio.Task[None] | None = None
        self.listening = False  # a LISTEN connection is up (PostgreSQL)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        _local.setdefault(self.channel, set()).add(self.wake)
        if self._dsn is not None:
            self._listener = asyncio.create_task(self._listen(), name=f"listen-{self.channel}")

    async def stop(self) -> None:
        _local.get(self.channel, set()).discard(self.wake)
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        self.wake()

    def wake(self) -> None:
        if self._event is None or self._loop is None:
            return
        try:
            same_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            same_loop = False
        if same_loop:
            self._event.set()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        """Call before a pass: a commit during the pass then wakes the wait after it."""
        if self._event is not None:
            self._event.clear()

    async def wait(self, timeout: float) -> bool:
        """True if woken, False after `timeout` seconds without a wake-up."""
        assert self._event is not None, "start() first"
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _listen(self) -> None:
        import asyncpg  # type: ignore[import-untyped]  # no stubs published for it

        while True:
            connection = None
            try:
                connection = await asyncpg.connect(self._dsn)
                closed = asyncio.Event()
                connection.add_termination_listener(lambda _, closed=closed: closed.set())
                await connection.add_listener(self.channel, lambda *_: self.wake())
                self.listening = True
                self.wake()  # whatever was notified while we were not listening
                await closed.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the poll covers the gap
                log.warning("LISTEN connection failed; retrying", extra={"channel": self.channel, "error": str(exc)})
            finally:
                self.listening = False
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(connection.close(timeout=2))
            await asyncio.sleep(self.RECONNECT_SECONDS)

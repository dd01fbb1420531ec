"""What opening a ticket reads every time and people seldom change (routing rules, scoring weights,
auto-reply rules, SLA policies, open incidents), kept in memory for `ttl` seconds per database.

Five of the 17 statements of a new ticket were these reads (issue 14). A change committed in this process
(the API, a test, a script) empties the cache at once: every ORM flush that touches one of the models
below marks its session, and its commit forgets what was cached for that database. A change committed by
another replica is seen here within `ttl` seconds (`TICKETING_CONFIG_CACHE_SECONDS`; 0 turns the cache
off). The API's own reads of these settings never go through the cache: people see what they saved.
"""

import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from itertools import chain
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from ticketing.models import Incident, RoutingRule, Setting, SlaPolicy

T = TypeVar("T")
M = TypeVar("M")

CONFIG_MODELS = (RoutingRule, Setting, SlaPolicy, Incident)
_CHANGED = "ticketing.config_changed"


class ConfigCache:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._values: dict[str, tuple[float, Any]] = {}
        # Bumped by every clear: a read that started before a change committed is not kept after it.
        self._generation = 0

    async def get(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        if self.ttl <= 0:
            return await load()
        now = time.monotonic()
        hit = self._values.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            value: T = hit[1]
            return value
        generation = self._generation
        value = await load()
        if generation == self._generation:
            self._values[key] = (now, value)
        return value

    def clear(self) -> None:
        self._generation += 1
        self._values.clear()


def detached_copies(rows: Iterable[M]) -> list[M]:
    """New objects with the rows' column values, in no session, for the cache: a rollback of the session that
    read the rows expires them (a cached row would then fail when read), and nothing set on a copy is ever
    written."""
    copies = []
    for row in rows:
        columns = sa_inspect(type(row), raiseerr=True).column_attrs
        copies.append(type(row)(**{column.key: getattr(row, column.key) for column in columns}))
    return copies


_caches: "weakref.WeakKeyDictionary[Engine, ConfigCache]" = weakref.WeakKeyDictionary()


def attach(engine: AsyncEngine, ttl_seconds: float) -> ConfigCache:
    """The cache of this database (one per engine; the service's runtime attaches it at start)."""
    cache = _caches.get(engine.sync_engine)
    if cache is None:
        cache = _caches[engine.sync_engine] = ConfigCache(ttl_seconds)
    cache.ttl = ttl_seconds
    return cache


async def cached(session: AsyncSession, key: str, load: Callable[[], Awaitable[T]]) -> T:
    """`load()` (which reads through `session`), or what it gave less than `ttl` seconds ago. Without an
    attached cache (a session on an engine the service did not start) it always loads."""
    bind = session.bind
    cache = _caches.get(bind.sync_engine) if isinstance(bind, AsyncEngine) else None
    return await (cache.get(key, load) if cache is not None else load())


@event.listens_for(Session, "after_flush")
def _note_config_change(session: Session, _flush_context: object) -> None:
    if any(isinstance(row, CONFIG_MODELS) for row in chain(session.new, session.dirty, session.deleted)):
        session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _forget_on_commit(session: Session) -> None:
    # A flag left by a transaction that rolled back only makes a later commit clear the cache once more.
    if session.info.pop(_CHANGED, False):
        cache = _caches.get(session.bind) if isinstance(session.bind, Engine) else None
        if cache is not None:
            cache.clear()

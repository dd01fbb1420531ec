"""Retention: a background job in every service deletes (or strips) what is kept longer than its
setting allows. Every service has the outbox and inbox rules; a service adds its own (ingest: original
texts and idempotency keys; notify: delivered deliveries). A rule with 0 days keeps forever.

Why these defaults: a published outbox row is only history (7 days for debugging); an inbox row must
outlive any redelivery or dead-letter replay of its event, or the replayed event would be handled twice
(30 days; replay dead letters sooner than that). Each pass is one short transaction per rule, in
batches, so it never holds SQLite's write lock for long.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.messaging.tables import InboxMixin, OutboxMixin
from closedloop.worker import BackgroundWorker

log = logging.getLogger(__name__)
BATCH = 1000


@dataclass(frozen=True)
class RetentionRule:
    name: str
    days: float
    # (session, cutoff) -> rows removed or stripped, at most BATCH per call; must not commit.
    apply: Callable[[AsyncSession, datetime], Awaitable[int]]


def published_outbox_rule(model: type[OutboxMixin], days: float) -> RetentionRule:
    async def apply(session: AsyncSession, cutoff: datetime) -> int:
        ids = select(model.id).where(model.published_at.is_not(None), model.published_at < cutoff).limit(BATCH)
        result = cast(CursorResult[Any], await session.execute(delete(model).where(model.id.in_(ids))))
        return result.rowcount or 0

    return RetentionRule("outbox (published)", days, apply)


def inbox_rule(model: type[InboxMixin], days: float) -> RetentionRule:
    async def apply(session: AsyncSession, cutoff: datetime) -> int:
        keys = (await session.execute(select(model.consumer, model.event_id)
                                      .where(model.processed_at < cutoff).limit(BATCH))).all()
        removed = 0
        for consumer, event_id in keys:
            result = cast(CursorResult[Any], await session.execute(
                delete(model).where(model.consumer == consumer, model.event_id == event_id)))
            removed += result.rowcount or 0
        return removed

    return RetentionRule("inbox", days, apply)


class RetentionWorker(BackgroundWorker):
    name = "retention"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], interval_seconds: float) -> None:
        self.sessions = sessions
        self.interval_seconds = interval_seconds
        self.rules: list[RetentionRule] = []

    def add(self, rule: RetentionRule) -> None:
        self.rules.append(rule)

    def enabled(self) -> bool:
        return self.interval_seconds > 0 and any(rule.days > 0 for rule in self.rules)

    def between_passes(self) -> float:
        return self.interval_seconds

    async def run_once(self, now: datetime | None = None) -> dict[str, int]:
        """One pass over every rule, until each has nothing left to do."""
        now = now or datetime.now(UTC)
        done: dict[str, int] = {}
        for rule in self.rules:
            if rule.days <= 0:
                continue
            cutoff = now - timedelta(days=rule.days)
            total = 0
            while True:
                async with self.sessions() as session, session.begin():
                    count = await rule.apply(session, cutoff)
                total += count
                if count < BATCH:
                    break
            done[rule.name] = total
        return done

    async def run_pass(self) -> bool:
        done = await self.run_once()
        if any(done.values()):
            log.info("retention pass", extra={"removed": done})
        return False

"""A circuit breaker per target (webhook endpoint, Slack hook, SMTP server).

closed     — deliveries go out; consecutive failures are counted.
open       — after `threshold` consecutive failures: nothing is sent to the target until the cool-down
             ends; due deliveries are postponed to then (not failed, no attempt spent).
half-open  — the cool-down is over: one delivery goes out as a probe while the others wait.
             Success closes the circuit, a failure opens it for another cool-down.

Only failures that say "the target is unwell" count (network errors, timeouts, 408/429/5xx);
a 4xx answer proves the target is up, so it closes the circuit like a success.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from notify.models import CircuitBreaker


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 5
    cooldown: timedelta = timedelta(seconds=60)


def circuit_key(channel: str, target: str, endpoint_id: str | None, smtp_host: str = "") -> str:
    if channel == "webhook" and endpoint_id:
        return f"webhook:{endpoint_id}"
    if channel == "email":
        return f"smtp:{smtp_host}"[:100]
    return f"{channel}:{hashlib.sha256(target.encode()).hexdigest()}"


def state(breaker: CircuitBreaker | None, now: datetime) -> Literal["closed", "open", "half_open"]:
    if breaker is None or breaker.open_until is None:
        return "closed"
    return "open" if breaker.open_until > now else "half_open"


def admit(breaker: CircuitBreaker | None, now: datetime, lease: timedelta) -> datetime | None:
    """May a delivery to this target go out now? None: yes (the breaker is updated to hold the probe);
    otherwise the time to postpone it to."""
    current = state(breaker, now)
    if current == "closed":
        return None
    assert breaker is not None and breaker.open_until is not None
    if current == "open":
        return breaker.open_until
    if breaker.probe_until is not None and breaker.probe_until > now:
        return breaker.probe_until  # a probe is in flight
    breaker.probe_until = now + lease
    breaker.updated_at = now
    return None


def record(breaker: CircuitBreaker, target_unwell: bool, policy: BreakerPolicy, now: datetime) -> None:
    breaker.updated_at = now
    breaker.probe_until = None
    if not target_unwell:
        breaker.consecutive_failures, breaker.open_until = 0, None
        return
    breaker.consecutive_failures += 1
    if breaker.open_until is not None or breaker.consecutive_failures >= policy.threshold:
        breaker.open_until = now + policy.cooldown


def unchanged_by(breaker: CircuitBreaker, target_unwell: bool) -> bool:
    """Would recording this outcome leave the breaker as it is (closed, no failures, no probe)?"""
    return (not target_unwell and breaker.consecutive_failures == 0 and breaker.open_until is None
            and breaker.probe_until is None)


async def load(session: AsyncSession, keys: set[str], *, lock: bool = False) -> dict[str, CircuitBreaker]:
    if not keys:
        return {}
    query = (select(CircuitBreaker).where(CircuitBreaker.key.in_(sorted(keys)))
             .execution_options(populate_existing=True))
    if lock and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    return {b.key: b for b in await session.scalars(query)}


async def load_or_create(session: AsyncSession, key: str, now: datetime) -> CircuitBreaker:
    """The breaker row, locked on PostgreSQL; created race-free if it does not exist yet."""
    return (await load_or_create_many(session, {key}, now))[key]


async def load_or_create_many(session: AsyncSession, keys: set[str], now: datetime) -> dict[str, CircuitBreaker]:
    """The breaker rows of `keys` (one statement to create the missing ones, one to read and lock them all)."""
    if not keys:
        return {}
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(insert(CircuitBreaker).values([
        {"key": key, "consecutive_failures": 0, "updated_at": now} for key in sorted(keys)
    ]).on_conflict_do_nothing(index_elements=["key"]))
    return await load(session, keys, lock=True)

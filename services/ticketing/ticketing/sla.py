"""SLA policies and clocks.

A policy gives first-response and resolution targets (minutes) for a priority and, optionally, a
customer tier, measured in business hours or 24/7. When a ticket opens, one `SlaClock` per target
starts with its warning instant (the configured share of the target) and its due instant, both
computed on the policy's calendar. Waiting on the customer pauses the clocks; on resume the
remaining working time is laid out again from the resume instant. A public reply stops the
first-response clock, resolving stops the resolution clock (reopening resumes it).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ticketing.calendar import BusinessHours, Calendar, add_working_minutes, is_working_time, working_minutes_between
from ticketing.config_cache import cached, detached_copies
from ticketing.models import SlaClock, SlaPolicy, Ticket
from ticketing.sla_policies import list_policies

TARGETS = ("first_response", "resolution")

_OFFICE = BusinessHours().model_dump(mode="json")


@dataclass(frozen=True)
class PolicyDefaults:
    name: str
    priority: str
    customer_tier: str | None
    first_response_minutes: int | None
    resolution_minutes: int | None
    business_hours: dict[str, Any] | None  # None: 24/7
    warn_at_share: float = 0.8
    escalate_on_breach: bool = True


# P0 is around the clock; the rest count office hours (Mon-Fri 09:00-17:00 UTC until edited).
DEFAULT_POLICIES = (
    PolicyDefaults("P0", "P0", None, 15, 4 * 60, None),
    PolicyDefaults("P1", "P1", None, 2 * 60, 16 * 60, _OFFICE),
    PolicyDefaults("P2", "P2", None, 48 * 60, 80 * 60, _OFFICE),
    PolicyDefaults("P3", "P3", None, None, None, _OFFICE),
    PolicyDefaults("P0 VIP", "P0", "vip", 10, 2 * 60, None),
    PolicyDefaults("P1 VIP", "P1", "vip", 30, 8 * 60, None),
    PolicyDefaults("P2 VIP", "P2", "vip", 2 * 60, 24 * 60, _OFFICE),
)


def calendar_of(business_hours: dict[str, Any] | None) -> Calendar | None:
    return None if business_hours is None else BusinessHours.model_validate(business_hours).calendar()


async def select_policy(session: AsyncSession, priority: str, tier: str) -> SlaPolicy | None:
    """The policy of the customer's tier for this priority, else the one for every tier."""
    async def every_policy() -> list[SlaPolicy]:
        return detached_copies(await list_policies(session))

    candidates = [p for p in await cached(session, "sla_policies", every_policy) if p.priority == priority]
    tier = tier.lower()
    return (next((p for p in candidates if p.customer_tier and p.customer_tier.lower() == tier), None)
            or next((p for p in candidates if p.customer_tier is None), None))


def _sync_ticket(ticket: Ticket, clock: SlaClock) -> None:
    if clock.target == "first_response":
        ticket.first_response_due_at = clock.due_at
    else:
        ticket.resolution_due_at = clock.due_at


def _new_clock(ticket: Ticket, policy: SlaPolicy, calendar: Calendar | None, target: str, minutes: int,
               since: datetime, now: datetime) -> SlaClock:
    return SlaClock(
        ticket_id=ticket.id, target=target, policy=policy.name, target_minutes=minutes,
        warn_at_share=policy.warn_at_share, business_hours=policy.business_hours,
        escalate_on_breach=policy.escalate_on_breach, started_at=since,
        warn_at=add_working_minutes(calendar, since, minutes * policy.warn_at_share),
        due_at=add_working_minutes(calendar, since, minutes),
        paused_at=now if ticket.status == "pending" else None,
    )


def first_clocks(ticket: Ticket, policy: SlaPolicy | None, now: datetime) -> list[SlaClock]:
    """The clocks of a ticket not yet stored, with its policy and due times set on it, so the ticket's own
    INSERT carries them: no query for clocks it cannot have yet, no UPDATE after. Add the clocks to the
    session once the ticket is flushed (they reference it)."""
    ticket.sla_policy = policy.name if policy else None
    calendar = calendar_of(policy.business_hours) if policy else None
    clocks = []
    for target in TARGETS:
        minutes = getattr(policy, f"{target}_minutes") if policy else None
        if minutes is None or policy is None:
            setattr(ticket, f"{target}_due_at", None)
            continue
        clock = _new_clock(ticket, policy, calendar, target, minutes, now, now)
        clocks.append(clock)
        _sync_ticket(ticket, clock)
    return clocks


async def start_clocks(session: AsyncSession, ticket: Ticket, policy: SlaPolicy | None, now: datetime,
                       since: datetime | None = None) -> None:
    """Start a stored ticket's clocks under `policy`, counting from `since` (default now). After a priority
    change the running clocks are replaced by ones counted from the ticket's creation (time paused
    before is not deducted then); finished or breached clocks stay as they were."""
    since = since or now
    existing = {c.target: c for c in await clocks_of(session, ticket.id)}
    ticket.sla_policy = policy.name if policy else None
    calendar = calendar_of(policy.business_hours) if policy else None
    for target in TARGETS:
        minutes = getattr(policy, f"{target}_minutes") if policy else None
        clock = existing.get(target)
        if clock is not None and (clock.stopped_at is not None or clock.breached_at is not None):
            continue  # done or already breached: history stays as it was
        if clock is not None:
            await session.delete(clock)
            await session.flush()
        if minutes is None or policy is None:
            setattr(ticket, f"{target}_due_at", None)
            continue
        if target == "first_response" and ticket.first_responded_at is not None:
            continue
        clock = _new_clock(ticket, policy, calendar, target, minutes, since, now)
        session.add(clock)
        _sync_ticket(ticket, clock)


async def clocks_of(session: AsyncSession, ticket_id: str) -> list[SlaClock]:
    return list(await session.scalars(select(SlaClock).where(SlaClock.ticket_id == ticket_id)
                                      .order_by(SlaClock.target)))


async def pause_clocks(session: AsyncSession, ticket: Ticket, now: datetime) -> None:
    for clock in await clocks_of(session, ticket.id):
        if clock.stopped_at is None and clock.paused_at is None:
            clock.paused_at = now


def _resume(clock: SlaClock, now: datetime) -> None:
    paused_at = clock.paused_at
    if paused_at is None:
        return
    calendar = calendar_of(clock.business_hours)
    clock.due_at = add_working_minutes(calendar, now, working_minutes_between(calendar, paused_at, clock.due_at))
    if clock.warned_at is None:
        clock.warn_at = add_working_minutes(calendar, now,
                                            working_minutes_between(calendar, paused_at, clock.warn_at))
    clock.paused_at = None


async def resume_clocks(session: AsyncSession, ticket: Ticket, now: datetime) -> None:
    for clock in await clocks_of(session, ticket.id):
        if clock.stopped_at is None:
            _resume(clock, now)
            _sync_ticket(ticket, clock)


async def stop_clock(session: AsyncSession, ticket: Ticket, target: str, now: datetime) -> None:
    for clock in await clocks_of(session, ticket.id):
        if clock.target == target and clock.stopped_at is None:
            clock.stopped_at = now
            if clock.paused_at is None:
                clock.paused_at = now  # so a reopen resumes from here


async def restart_resolution_clock(session: AsyncSession, ticket: Ticket, now: datetime) -> None:
    """Reopen: the resolution clock runs on from where it stopped."""
    for clock in await clocks_of(session, ticket.id):
        if clock.target == "resolution" and clock.stopped_at is not None:
            clock.stopped_at = None
            _resume(clock, now)
            _sync_ticket(ticket, clock)


def warning_may_go_out(clock: SlaClock, now: datetime) -> bool:
    """No warnings outside business hours unless the policy is 24/7."""
    return is_working_time(calendar_of(clock.business_hours), now)

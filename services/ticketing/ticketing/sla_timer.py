"""The SLA timer: a background worker that finds clocks past their warning or due instant and
announces them (`ticket.sla_warning.v1`, `ticket.sla_breached.v1`), escalating at breach.

Several replicas may run it at once. Each pass claims clock rows and their tickets with
`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, so a row is handled by one replica; the marks
`warned_at` / `breached_at` commit in the same transaction as the outbox event, and a replica whose
snapshot is older re-checks the condition on the locked row, so nothing is announced twice and a
row skipped because it was locked is taken on a later pass. On SQLite every write transaction
begins with BEGIN IMMEDIATE, which serialises the passes the same way.
"""

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.events import TicketSlaBreachedV1, TicketSlaWarningV1
from closedloop.worker import BackgroundWorker
from ticketing.assignment import assign, pick_agent
from ticketing.audit import audit
from ticketing.clock import Clock
from ticketing.models import SlaClock, Ticket, outbox
from ticketing.sla import warning_may_go_out
from ticketing.snapshots import raise_priority, snapshot

log = logging.getLogger(__name__)


class SlaTimer(BackgroundWorker):
    name = "sla-timer"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock,
                 lead_of: Callable[[str], str | None], poll_seconds: float = 5.0, batch_size: int = 100,
                 reassign_unanswered: bool = False) -> None:
        self.sessions = sessions
        self.clock = clock
        self.lead_of = lead_of
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        # At the first-response warning, hand a still unanswered ticket to another available agent.
        self.reassign_unanswered = reassign_unanswered

    def between_passes(self) -> float:
        return self.poll_seconds

    async def run_pass(self) -> bool:
        return await self.run_once() >= self.batch_size  # a full batch: more clocks are due

    async def run_once(self) -> int:
        """One pass over due clocks; returns how many events were staged."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            postgres = session.bind.dialect.name == "postgresql"
            query = (select(SlaClock)
                     .where(SlaClock.stopped_at.is_(None), SlaClock.paused_at.is_(None),
                            or_(and_(SlaClock.breached_at.is_(None), SlaClock.due_at <= now),
                                and_(SlaClock.warned_at.is_(None), SlaClock.warn_at <= now)))
                     .order_by(SlaClock.due_at, SlaClock.id).limit(self.batch_size))
            if postgres:
                query = query.with_for_update(skip_locked=True)
            clocks = list(await session.scalars(query))
            if not clocks:
                return 0
            ticket_query = select(Ticket).where(Ticket.id.in_({c.ticket_id for c in clocks}))
            if postgres:
                # A ticket being changed by a request right now is left for the next pass.
                ticket_query = ticket_query.with_for_update(skip_locked=True)
            tickets = {t.id: t for t in await session.scalars(ticket_query)}
            staged = 0
            for clock in clocks:
                ticket = tickets.get(clock.ticket_id)
                if ticket is not None:
                    staged += await self._handle(session, clock, ticket, now)
            return staged

    async def _handle(self, session: AsyncSession, clock: SlaClock, ticket: Ticket, now: datetime) -> int:
        if clock.breached_at is None and clock.due_at <= now:
            clock.breached_at = now
            if clock.warned_at is None:
                clock.warned_at = now  # a warning after the breach would only confuse
            ticket.sla_breached = True
            previous = ticket.priority
            lead = self.lead_of(ticket.team)
            escalated = clock.escalate_on_breach and raise_priority(ticket)
            ticket.updated_at = now
            audit(session, ticket.id, "sla-timer", "sla_breached", now, target=clock.target,
                  due_at=clock.due_at.isoformat(), escalated_to=lead if clock.escalate_on_breach else None,
                  priority=[previous, ticket.priority] if escalated else None)
            outbox.add(session, TicketSlaBreachedV1(
                ticket=snapshot(ticket, lead), target=clock.target, due_at=clock.due_at,  # type: ignore[arg-type]
                escalated_to=lead if clock.escalate_on_breach else None,
                previous_priority=previous if escalated else None))
            return 1
        if clock.warned_at is None and clock.warn_at <= now:
            if not warning_may_go_out(clock, now):
                return 0  # outside business hours: it goes out when they begin
            clock.warned_at = now
            audit(session, ticket.id, "sla-timer", "sla_warning", now, target=clock.target,
                  due_at=clock.due_at.isoformat())
            outbox.add(session, TicketSlaWarningV1(ticket=snapshot(ticket, self.lead_of(ticket.team)),
                                                   target=clock.target, due_at=clock.due_at))  # type: ignore[arg-type]
            if (self.reassign_unanswered and clock.target == "first_response" and ticket.assignee
                    and ticket.first_responded_at is None):
                silent = ticket.assignee
                other = await pick_agent(session, ticket, exclude={silent})
                if other is not None:
                    assign(session, ticket, other, "sla-timer", now, f"{silent} did not respond in time",
                           self.lead_of(ticket.team))
            return 1
        return 0

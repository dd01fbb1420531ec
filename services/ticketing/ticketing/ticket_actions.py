"""What agents do to a ticket over the API: change it, move it through its lifecycle, comment, merge and
link. Each function is one request's unit of work: it opens the transaction (`async with session.begin():`,
ADR 0014), locks the ticket on PostgreSQL, reads what decides the change and calls the lifecycle in
`tickets.py`, whose functions run in the caller's transaction (the consumers' too)."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import get_or_404
from closedloop.errors import conflict, field_problem
from ticketing import tickets as lifecycle
from ticketing.assignment import assign
from ticketing.audit import audit
from ticketing.macros import record_use
from ticketing.models import Agent, Comment, Macro, Ticket
from ticketing.routing import RoutingTable
from ticketing.schemas.tickets import CommentIn, StatusChangeIn, TicketPatchIn
from ticketing.tickets import TicketOptions


async def ticket_for_update(session: AsyncSession, ticket_id: str) -> Ticket:
    """The ticket, locked for the rest of the transaction on PostgreSQL."""
    return await get_or_404(session, Ticket, ticket_id, "Ticket",
                            with_for_update=session.bind.dialect.name == "postgresql")


async def update_ticket(session: AsyncSession, ticket_id: str, change: TicketPatchIn, actor: str,
                        table: RoutingTable, now: datetime) -> Ticket:
    """Priority (an audited override), team, category, assignee or tags: only the fields sent."""
    async with session.begin():
        ticket = await ticket_for_update(session, ticket_id)
        sent = change.model_fields_set
        if change.team is not None and change.team not in table.teams:
            raise field_problem("body.team", f"unknown team {change.team!r}")
        agent = None
        if change.assignee is not None:
            agent = await session.get(Agent, change.assignee)
            if agent is None:
                raise field_problem("body.assignee", f"unknown agent {change.assignee!r}")
        if ticket.merged_into is not None:
            raise conflict(f"ticket was merged into {ticket.merged_into}", slug="merged")
        if change.category is not None:
            await lifecycle.recategorize(session, ticket, change.category, change.category_label, actor, now)
        if change.team is not None:
            await lifecycle.change_team(session, ticket, change.team, actor, now, table)
        if change.priority is not None:
            await lifecycle.override_priority(session, ticket, change.priority, actor, change.reason, now)
        if "assignee" in sent:
            assign(session, ticket, agent, actor, now, change.reason or "assigned by hand",
                   table.lead_of(ticket.team))
        if change.tags is not None and change.tags != (ticket.tags or []):
            audit(session, ticket.id, actor, "tags_changed", now, tags=[ticket.tags or [], change.tags])
            ticket.tags = change.tags
            ticket.updated_at = now
    return ticket


async def change_status(session: AsyncSession, ticket_id: str, change: StatusChangeIn, actor: str,
                        table: RoutingTable, now: datetime, options: TicketOptions) -> Ticket:
    """The next lifecycle step; resolving with a `message` sends it to the customer first."""
    async with session.begin():
        ticket = await ticket_for_update(session, ticket_id)
        if change.message is not None:
            if change.status != "resolved":
                raise field_problem("body.message", "a message goes with status resolved only")
            if ticket.status not in ("resolved", "closed") and ticket.merged_into is None and \
                    "resolved" in lifecycle.TRANSITIONS.get(ticket.status, set()):
                await lifecycle.add_comment(session, ticket, author=actor, author_type="agent", public=True,
                                            body=change.message, now=now, table=table, options=options,
                                            kind="resolution")
        await lifecycle.change_status(session, ticket, change.status, actor, now, table, options)
    return ticket


async def add_comment(session: AsyncSession, ticket_id: str, comment: CommentIn, actor: str, table: RoutingTable,
                      now: datetime, options: TicketOptions) -> Comment:
    """A public reply or an internal note; a public agent reply started from a macro teaches suggestions."""
    async with session.begin():
        ticket = await ticket_for_update(session, ticket_id)
        macro = None
        if comment.macro_id is not None:
            macro = await session.get(Macro, comment.macro_id)
            if macro is None:
                raise field_problem("body.macro_id", f"no macro {comment.macro_id}")
        row = await lifecycle.add_comment(session, ticket, author=actor, author_type=comment.author_type,
                                          public=comment.public, body=comment.body, now=now, table=table,
                                          options=options, macro_id=comment.macro_id,
                                          channel=None if comment.author_type == "agent" else "api")
        if macro is not None and comment.public and comment.author_type == "agent":
            record_use(session, macro, ticket, now)
    return row


async def merge(session: AsyncSession, ticket_id: str, into_ticket_id: str, actor: str, now: datetime) -> Ticket:
    """Merge the ticket into another; returns the one that survives."""
    async with session.begin():
        source = await ticket_for_update(session, ticket_id)
        target = await session.get(Ticket, into_ticket_id)
        if target is None:
            raise field_problem("body.into_ticket_id", f"no ticket {into_ticket_id}")
        await lifecycle.merge_tickets(session, source, target, actor, now)
    return target


async def link(session: AsyncSession, ticket_id: str, other_id: str, actor: str, now: datetime) -> Ticket:
    """Link a related ticket, both ways."""
    async with session.begin():
        ticket = await ticket_for_update(session, ticket_id)
        other = await session.get(Ticket, other_id)
        if other is None:
            raise field_problem("body.ticket_id", f"no ticket {other_id}")
        await lifecycle.link_tickets(session, ticket, other, actor, now)
    return ticket

"""Reading tickets for the API: the filtered list (paged by keyset, `closedloop.pagination`), one ticket
as the API shows it (with its links and attached feedback), and a ticket's comments, audit log and SLA
clocks. Read-only: no transaction of their own (ADR 0014)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import get_or_404
from closedloop.db import UTCDateTime
from closedloop.errors import field_problem
from closedloop.pagination import decode_cursor, encode_cursor, invalid_cursor, keyset_page
from ticketing.assignment import ACTIVE_STATUSES
from ticketing.models import AttachedFeedback, AuditEntry, Comment, SlaClock, Ticket, TicketLink
from ticketing.schemas.tickets import CustomerPublic, TicketPage, TicketPublic
from ticketing.sla import clocks_of


@dataclass(frozen=True)
class TicketFilter:
    """What `GET /v1/tickets` narrows the list to; None (or empty) does not narrow."""

    status: str | None = None
    team: str | None = None
    priority: str | None = None
    category: str | None = None  # a top level matches its children
    feedback_id: str | None = None
    assignee: str | None = None  # `none`: unassigned
    breached: bool | None = None
    text: str | None = None  # in the title or description, case-insensitive
    active: bool | None = None  # not yet resolved (new, open, pending)
    due_before: datetime | None = None  # the next SLA due time is before this


# The next SLA time a ticket is held to: its first response while nobody answered, then its resolution.
_next_due = case((and_(Ticket.first_responded_at.is_(None), Ticket.first_response_due_at.is_not(None)),
                  Ticket.first_response_due_at), else_=Ticket.resolution_due_at)
# Far beyond any due time, so tickets without one sort last on every database (NULLS LAST differs).
_NO_DUE = datetime(9999, 1, 1, tzinfo=UTC)


def _conditions(wanted: TicketFilter) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if wanted.active is not None:
        filters.append(Ticket.status.in_(ACTIVE_STATUSES) if wanted.active else Ticket.status.not_in(ACTIVE_STATUSES))
    if wanted.due_before is not None:
        if wanted.due_before.tzinfo is None:
            raise field_problem("query.due_before", "needs a time zone, e.g. Z")
        filters.append(_next_due < wanted.due_before)
    if wanted.status:
        filters.append(Ticket.status == wanted.status)
    if wanted.team:
        filters.append(Ticket.team == wanted.team)
    if wanted.assignee:
        filters.append(Ticket.assignee.is_(None) if wanted.assignee == "none" else Ticket.assignee == wanted.assignee)
    if wanted.breached is not None:
        filters.append(Ticket.sla_breached.is_(wanted.breached))
    if wanted.text:
        needle = wanted.text.lower()
        filters.append(or_(func.lower(Ticket.title).contains(needle, autoescape=True),
                           func.lower(Ticket.description).contains(needle, autoescape=True)))
    if wanted.priority:
        filters.append(Ticket.priority == wanted.priority)
    if wanted.category:
        filters.append(or_(Ticket.category == wanted.category, Ticket.category.startswith(wanted.category + "/")))
    if wanted.feedback_id:
        filters.append(Ticket.feedback_id == wanted.feedback_id)
    return filters


def _checked_cursor(cursor: str) -> tuple[datetime, str]:
    """The (time, id) a ticket cursor holds, or the 400 problem: both sorts key on a time and the id."""
    at, ticket_id = decode_cursor(cursor, 2)
    if not isinstance(at, datetime) or not isinstance(ticket_id, str):
        raise invalid_cursor()
    return at, ticket_id


async def list_tickets(session: AsyncSession, wanted: TicketFilter, sort: Literal["created", "due"], limit: int,
                       cursor: str | None) -> TicketPage:
    """Newest first (`created`) or the next SLA due time first (`due`), with the total over all pages."""
    query = select(Ticket).where(*_conditions(wanted))
    if sort == "due":
        return await _page_by_due(session, query, limit, cursor)
    if cursor:
        _checked_cursor(cursor)  # a cursor of other values would fail only when bound to the columns
    page = await keyset_page(session, query, order=(Ticket.created_at, Ticket.id), limit=limit, cursor=cursor)
    return TicketPage(items=await public_tickets(session, page.rows), total=page.total, next_cursor=page.next_cursor)


async def _page_by_due(session: AsyncSession, query: Select[tuple[Ticket]], limit: int,
                       cursor: str | None) -> TicketPage:
    """Tickets by next due time (earliest first, none last), id as the tie-break: `keyset_page` cannot order
    by an expression, so this is its own keyset query; the cursor is the last row's (due, id)."""
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    due_key = func.coalesce(_next_due, literal(_NO_DUE, UTCDateTime()))
    if cursor:
        due, ticket_id = _checked_cursor(cursor)
        query = query.where(or_(due_key > due, and_(due_key == due, Ticket.id > ticket_id)))
    rows = list(await session.scalars(query.order_by(due_key, Ticket.id).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([_ticket_next_due(last) or _NO_DUE, last.id])
    return TicketPage(items=await public_tickets(session, rows[:limit]), total=total, next_cursor=next_cursor)


def _ticket_next_due(ticket: Ticket) -> datetime | None:
    if ticket.first_responded_at is None and ticket.first_response_due_at is not None:
        return ticket.first_response_due_at
    return ticket.resolution_due_at


async def get_ticket(session: AsyncSession, ticket_id: str) -> TicketPublic:
    return (await public_tickets(session, [await get_or_404(session, Ticket, ticket_id, "Ticket")]))[0]


async def comments_of(session: AsyncSession, ticket_id: str) -> list[Comment]:
    """Replies and internal notes, oldest first."""
    await get_or_404(session, Ticket, ticket_id, "Ticket")
    return list(await session.scalars(select(Comment).where(Comment.ticket_id == ticket_id).order_by(Comment.id)))


async def audit_of(session: AsyncSession, ticket_id: str) -> list[AuditEntry]:
    """Every change to the ticket, oldest first."""
    await get_or_404(session, Ticket, ticket_id, "Ticket")
    return list(await session.scalars(select(AuditEntry).where(AuditEntry.ticket_id == ticket_id)
                                      .order_by(AuditEntry.id)))


async def sla_clocks_of(session: AsyncSession, ticket_id: str) -> list[SlaClock]:
    await get_or_404(session, Ticket, ticket_id, "Ticket")
    return await clocks_of(session, ticket_id)


async def public_tickets(session: AsyncSession, tickets: list[Ticket]) -> list[TicketPublic]:
    """The tickets as the API shows them, with their related tickets and attached feedback."""
    ids = [t.id for t in tickets]
    related: dict[str, list[str]] = {i: [] for i in ids}
    attached: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        for link in await session.scalars(select(TicketLink).where(TicketLink.ticket_id.in_(ids))):
            related[link.ticket_id].append(link.related_id)
        for row in await session.scalars(select(AttachedFeedback).where(AttachedFeedback.ticket_id.in_(ids))
                                         .order_by(AttachedFeedback.attached_at)):
            attached[row.ticket_id].append(row.feedback_id)
    return [to_public(t, related[t.id], attached[t.id]) for t in tickets]


async def public_ticket(session: AsyncSession, ticket: Ticket) -> TicketPublic:
    return (await public_tickets(session, [ticket]))[0]


def to_public(ticket: Ticket, related: list[str] | None = None, attached: list[str] | None = None) -> TicketPublic:
    return TicketPublic(
        id=ticket.id, feedback_id=ticket.feedback_id, title=ticket.title, description=ticket.description,
        channel=ticket.channel,
        customer=CustomerPublic(id=ticket.customer_id, tier=ticket.customer_tier,
                                email=ticket.customer_email, name=ticket.customer_name),
        category=ticket.category, category_label=ticket.category_label,
        category_confidence=ticket.category_confidence, sentiment=ticket.sentiment,
        sentiment_score=ticket.sentiment_score, priority=ticket.priority, team=ticket.team,
        routing_reason=ticket.routing_reason, status=ticket.status, assignee=ticket.assignee,
        public_token=ticket.public_token, created_at=ticket.created_at, updated_at=ticket.updated_at,
        language=ticket.language, severity=ticket.severity, tags=list(ticket.tags or []),
        priority_score=ticket.priority_score, sla_policy=ticket.sla_policy,
        first_response_due_at=ticket.first_response_due_at, resolution_due_at=ticket.resolution_due_at,
        sla_breached=bool(ticket.sla_breached), first_responded_at=ticket.first_responded_at,
        resolved_at=ticket.resolved_at, closed_at=ticket.closed_at, merged_into=ticket.merged_into,
        related_ticket_ids=sorted(related or []), attached_feedback_ids=attached or [],
    )

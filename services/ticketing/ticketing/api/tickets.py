"""Tickets: list, read and change them, their conversation, audit log and SLA clocks."""

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Query
from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.db import UTCDateTime
from closedloop.errors import FieldError, ProblemError, conflict, field_problem, problem_responses
from closedloop.limits import SAFE_ID_MAX_LENGTH, SAFE_ID_PATTERN
from ticketing import tickets as lifecycle
from ticketing.api.deps import NowDep, OptionsDep, TableDep, WriterDep, ticket_for_update
from ticketing.assignment import ACTIVE_STATUSES, assign
from ticketing.audit import audit
from ticketing.macros import record_use
from ticketing.models import Agent, AttachedFeedback, AuditEntry, Comment, Macro, Ticket, TicketLink
from ticketing.schemas import (
    AuditPublic,
    CommentIn,
    CommentPublic,
    CustomerPublic,
    LinkIn,
    MergeIn,
    Priority,
    SlaClockPublic,
    Status,
    StatusChange,
    TeamPublic,
    TicketPage,
    TicketPublic,
    TicketUpdate,
)
from ticketing.sla import clocks_of

router = api_router("tickets", 400)


def _encode_cursor(ticket: Ticket) -> str:
    return base64.urlsafe_b64encode(f"{ticket.created_at.isoformat()}|{ticket.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, ticket_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        created_at = datetime.fromisoformat(created)
        if created_at.tzinfo is None:
            raise ValueError("cursor time without a zone")
        return created_at, ticket_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ProblemError(400, "Invalid cursor", "Use the next_cursor of a previous page.", slug="invalid-cursor",
                           errors=[FieldError(field="query.cursor", message="not a cursor from this API")]) from None


@router.get("/tickets", dependencies=needs("tickets:read"),
            response_model=TicketPage, summary="List tickets, newest first")
async def list_tickets(
    session: SessionDep,
    status: Status | None = None,
    team: str | None = None,
    priority: Priority | None = None,
    category: Annotated[str | None, Query(description="A taxonomy key; a top level matches its children.")] = None,
    feedback_id: str | None = None,
    assignee: Annotated[str | None, Query(description="An agent id; `none` for unassigned tickets.",
                                          pattern=SAFE_ID_PATTERN, max_length=SAFE_ID_MAX_LENGTH)] = None,
    breached: Annotated[bool | None, Query(description="Only tickets that did (not) breach an SLA target.")] = None,
    text: Annotated[str | None, Query(min_length=1, max_length=200,
                                      description="Case-insensitive text in the title or description.")] = None,
    active: Annotated[bool | None, Query(description="Only tickets not yet resolved (new, open, pending).")] = None,
    due_before: Annotated[datetime | None, Query(description="Only tickets whose next SLA due time is before this "
                                                             "(e.g. the queue of tickets breaching soon).")] = None,
    sort: Annotated[Literal["created", "due"], Query(
        description="`created`: newest first (the default); `due`: the next SLA due time first (first response "
                    "while unanswered, then resolution), tickets without one last.")] = "created",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> TicketPage:
    filters = []
    if active is not None:
        filters.append(Ticket.status.in_(ACTIVE_STATUSES) if active else Ticket.status.not_in(ACTIVE_STATUSES))
    if due_before is not None:
        if due_before.tzinfo is None:
            raise field_problem("query.due_before", "needs a time zone, e.g. Z")
        filters.append(_next_due < due_before)
    if status:
        filters.append(Ticket.status == status)
    if team:
        filters.append(Ticket.team == team)
    if assignee:
        filters.append(Ticket.assignee.is_(None) if assignee == "none" else Ticket.assignee == assignee)
    if breached is not None:
        filters.append(Ticket.sla_breached.is_(breached))
    if text:
        needle = text.lower()
        filters.append(or_(func.lower(Ticket.title).contains(needle, autoescape=True),
                           func.lower(Ticket.description).contains(needle, autoescape=True)))
    if priority:
        filters.append(Ticket.priority == priority)
    if category:
        filters.append(or_(Ticket.category == category, Ticket.category.startswith(category + "/")))
    if feedback_id:
        filters.append(Ticket.feedback_id == feedback_id)
    total = await session.scalar(select(func.count()).select_from(Ticket).where(*filters)) or 0
    query = select(Ticket).where(*filters)
    if sort == "due":
        return await _page_by_due(session, query, filters, total, limit, cursor)
    if cursor:
        created, ticket_id = _decode_cursor(cursor)
        query = query.where(or_(Ticket.created_at < created,
                                and_(Ticket.created_at == created, Ticket.id < ticket_id)))
    rows = list(await session.scalars(query.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit + 1)))
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return TicketPage(items=await to_public_many(session, rows[:limit]), total=total, next_cursor=next_cursor)


# The next SLA time a ticket is held to: its first response while nobody answered, then its resolution.
_next_due = case((and_(Ticket.first_responded_at.is_(None), Ticket.first_response_due_at.is_not(None)),
                  Ticket.first_response_due_at), else_=Ticket.resolution_due_at)
# Far beyond any due time, so tickets without one sort last on every database (NULLS LAST differs).
_NO_DUE = datetime(9999, 1, 1, tzinfo=UTC)


async def _page_by_due(session: AsyncSession, query, filters, total: int, limit: int,  # type: ignore[no-untyped-def]
                       cursor: str | None) -> TicketPage:
    """Tickets by next due time (earliest first), id as the tie-break; the cursor is the last row's (due, id)."""
    due_key = func.coalesce(_next_due, literal(_NO_DUE, UTCDateTime()))
    if cursor:
        due, ticket_id = _decode_cursor(cursor)
        query = query.where(or_(due_key > due, and_(due_key == due, Ticket.id > ticket_id)))
    rows = list(await session.scalars(query.order_by(due_key, Ticket.id).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        last_due = _ticket_next_due(last) or _NO_DUE
        next_cursor = base64.urlsafe_b64encode(f"{last_due.isoformat()}|{last.id}".encode()).decode()
    return TicketPage(items=await to_public_many(session, rows[:limit]), total=total, next_cursor=next_cursor)


def _ticket_next_due(ticket: Ticket) -> datetime | None:
    if ticket.first_responded_at is None and ticket.first_response_due_at is not None:
        return ticket.first_response_due_at
    return ticket.resolution_due_at


@router.get("/tickets/{ticket_id}", dependencies=needs("tickets:read"),
            response_model=TicketPublic, responses=problem_responses(404),
            summary="One ticket")
async def get_ticket(ticket_id: str, session: SessionDep) -> TicketPublic:
    ticket = await get_or_404(session, Ticket, ticket_id, "Ticket")
    return (await to_public_many(session, [ticket]))[0]


@router.patch("/tickets/{ticket_id}", response_model=TicketPublic, responses=problem_responses(404, 409),
              summary="Change priority (an audited override), team, category, assignee or tags")
async def update_ticket(ticket_id: str, change: TicketUpdate, session: SessionDep, table: TableDep,
                        now: NowDep, writer: WriterDep) -> TicketPublic:
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
        await lifecycle.recategorize(session, ticket, change.category, change.category_label, writer.actor, now)
    if change.team is not None:
        await lifecycle.change_team(session, ticket, change.team, writer.actor, now, table)
    if change.priority is not None:
        await lifecycle.override_priority(session, ticket, change.priority, writer.actor, change.reason, now)
    if "assignee" in sent:
        assign(session, ticket, agent, writer.actor, now, change.reason or "assigned by hand",
               table.lead_of(ticket.team))
    if change.tags is not None and change.tags != (ticket.tags or []):
        audit(session, ticket.id, writer.actor, "tags_changed", now, tags=[ticket.tags or [], change.tags])
        ticket.tags = change.tags
        ticket.updated_at = now
    await session.commit()
    return (await to_public_many(session, [ticket]))[0]


@router.post("/tickets/{ticket_id}/status", response_model=TicketPublic, responses=problem_responses(404, 409),
             summary="Move a ticket through its lifecycle (new → open → pending → resolved → closed, reopen)")
async def change_status(ticket_id: str, change: StatusChange, session: SessionDep, table: TableDep, now: NowDep,
                        options: OptionsDep, writer: WriterDep) -> TicketPublic:
    ticket = await ticket_for_update(session, ticket_id)
    if change.message is not None:
        if change.status != "resolved":
            raise field_problem("body.message", "a message goes with status resolved only")
        if ticket.status not in ("resolved", "closed") and ticket.merged_into is None and \
                "resolved" in lifecycle.TRANSITIONS.get(ticket.status, set()):
            await lifecycle.add_comment(session, ticket, author=writer.actor, author_type="agent", public=True,
                                        body=change.message, now=now, table=table, options=options,
                                        kind="resolution")
    await lifecycle.change_status(session, ticket, change.status, writer.actor, now, table, options)
    await session.commit()
    return (await to_public_many(session, [ticket]))[0]


@router.post("/tickets/{ticket_id}/comments", response_model=CommentPublic, status_code=201,
             responses=problem_responses(404), summary="Add a public reply or an internal note",
             description="A public agent reply is announced as `ticket.replied.v1` and delivered to the customer "
                         "over the channel the feedback came from (its `delivery_status` follows notify's "
                         "outcome); the first one is the first response. Internal notes never leave ticketing. "
                         "Pass `macro_id` when the text started from a macro: suggestions learn from it.")
async def add_comment(ticket_id: str, comment: CommentIn, session: SessionDep, table: TableDep, now: NowDep,
                      options: OptionsDep, writer: WriterDep) -> CommentPublic:
    ticket = await ticket_for_update(session, ticket_id)
    macro = None
    if comment.macro_id is not None:
        macro = await session.get(Macro, comment.macro_id)
        if macro is None:
            raise field_problem("body.macro_id", f"no macro {comment.macro_id}")
    row = await lifecycle.add_comment(session, ticket, author=writer.actor, author_type=comment.author_type,
                                      public=comment.public, body=comment.body, now=now, table=table,
                                      options=options, macro_id=comment.macro_id,
                                      channel=None if comment.author_type == "agent" else "api")
    if macro is not None and comment.public and comment.author_type == "agent":
        record_use(session, macro, ticket, now)
    await session.commit()
    return CommentPublic.model_validate(row, from_attributes=True)


@router.get("/tickets/{ticket_id}/comments", dependencies=needs("tickets:read"),
            response_model=list[CommentPublic], responses=problem_responses(404),
            summary="Replies and internal notes, oldest first")
async def list_comments(ticket_id: str, session: SessionDep) -> list[CommentPublic]:
    await _existing(session, ticket_id)
    rows = await session.scalars(select(Comment).where(Comment.ticket_id == ticket_id).order_by(Comment.id))
    return [CommentPublic.model_validate(r, from_attributes=True) for r in rows]


@router.get("/tickets/{ticket_id}/audit", dependencies=needs("tickets:read"),
            response_model=list[AuditPublic], responses=problem_responses(404),
            summary="Every change to the ticket, with actor and time, oldest first")
async def audit_log(ticket_id: str, session: SessionDep) -> list[AuditPublic]:
    await _existing(session, ticket_id)
    rows = await session.scalars(select(AuditEntry).where(AuditEntry.ticket_id == ticket_id).order_by(AuditEntry.id))
    return [AuditPublic.model_validate(r, from_attributes=True) for r in rows]


@router.get("/tickets/{ticket_id}/sla", dependencies=needs("tickets:read"),
            response_model=list[SlaClockPublic], responses=problem_responses(404),
            summary="The ticket's SLA clocks: targets, warning and due times, pauses, warnings and breaches")
async def sla_clocks(ticket_id: str, session: SessionDep) -> list[SlaClockPublic]:
    await _existing(session, ticket_id)
    return [SlaClockPublic.model_validate(c, from_attributes=True) for c in await clocks_of(session, ticket_id)]


@router.post("/tickets/{ticket_id}/merge", response_model=TicketPublic, responses=problem_responses(404, 409),
             summary="Merge this ticket into another (it is closed; its feedback and history move over)")
async def merge(ticket_id: str, body: MergeIn, session: SessionDep, now: NowDep, writer: WriterDep) -> TicketPublic:
    source = await ticket_for_update(session, ticket_id)
    target = await session.get(Ticket, body.into_ticket_id)
    if target is None:
        raise field_problem("body.into_ticket_id", f"no ticket {body.into_ticket_id}")
    await lifecycle.merge_tickets(session, source, target, writer.actor, now)
    await session.commit()
    return (await to_public_many(session, [target]))[0]


@router.post("/tickets/{ticket_id}/links", response_model=TicketPublic, responses=problem_responses(404),
             summary="Link a related ticket (both ways)")
async def link(ticket_id: str, body: LinkIn, session: SessionDep, now: NowDep, writer: WriterDep) -> TicketPublic:
    ticket = await ticket_for_update(session, ticket_id)
    other = await session.get(Ticket, body.ticket_id)
    if other is None:
        raise field_problem("body.ticket_id", f"no ticket {body.ticket_id}")
    await lifecycle.link_tickets(session, ticket, other, writer.actor, now)
    await session.commit()
    return (await to_public_many(session, [ticket]))[0]


async def _existing(session: AsyncSession, ticket_id: str) -> Ticket:
    return await get_or_404(session, Ticket, ticket_id, "Ticket")


@router.get("/teams", dependencies=needs("tickets:read"),
            response_model=list[TeamPublic], summary="Teams of the routing table")
async def list_teams(table: TableDep) -> list[TeamPublic]:
    return [TeamPublic(key=key, name=team.name, lead=team.lead) for key, team in table.teams.items()]


async def to_public_many(session: AsyncSession, tickets: list[Ticket]) -> list[TicketPublic]:
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

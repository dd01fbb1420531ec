"""Tickets over HTTP: the list, one ticket, its changes and lifecycle, comments, audit log and SLA clocks.
The work is in `ticket_queries` (reads) and `ticket_actions` (each change one transaction)."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query

from closedloop.api import SessionDep, api_router
from closedloop.auth import needs
from closedloop.errors import problem_responses
from closedloop.limits import SAFE_ID_MAX_LENGTH, SAFE_ID_PATTERN
from closedloop.pagination import Cursor
from ticketing import ticket_actions, ticket_queries
from ticketing.api.deps import NowDep, OptionsDep, TableDep, WriterDep
from ticketing.schemas.tickets import (
    AuditPublic,
    CommentIn,
    CommentPublic,
    LinkIn,
    MergeIn,
    Priority,
    SlaClockPublic,
    Status,
    StatusChangeIn,
    TeamPublic,
    TicketPage,
    TicketPatchIn,
    TicketPublic,
)

router = api_router("tickets", 400)


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
    cursor: Cursor = None,
) -> TicketPage:
    wanted = ticket_queries.TicketFilter(
        status=status, team=team, priority=priority, category=category, feedback_id=feedback_id, assignee=assignee,
        breached=breached, text=text, active=active, due_before=due_before)
    return await ticket_queries.list_tickets(session, wanted, sort, limit, cursor)


@router.get("/tickets/{ticket_id}", dependencies=needs("tickets:read"),
            response_model=TicketPublic, responses=problem_responses(404),
            summary="One ticket")
async def get_ticket(ticket_id: str, session: SessionDep) -> TicketPublic:
    return await ticket_queries.get_ticket(session, ticket_id)


@router.patch("/tickets/{ticket_id}", response_model=TicketPublic, responses=problem_responses(404, 409),
              summary="Change priority (an audited override), team, category, assignee or tags")
async def update_ticket(ticket_id: str, change: TicketPatchIn, session: SessionDep, table: TableDep,
                        now: NowDep, writer: WriterDep) -> TicketPublic:
    ticket = await ticket_actions.update_ticket(session, ticket_id, change, writer.actor, table, now)
    return await ticket_queries.public_ticket(session, ticket)


@router.post("/tickets/{ticket_id}/status", response_model=TicketPublic, responses=problem_responses(404, 409),
             summary="Move a ticket through its lifecycle (new → open → pending → resolved → closed, reopen)")
async def change_status(ticket_id: str, change: StatusChangeIn, session: SessionDep, table: TableDep, now: NowDep,
                        options: OptionsDep, writer: WriterDep) -> TicketPublic:
    ticket = await ticket_actions.change_status(session, ticket_id, change, writer.actor, table, now, options)
    return await ticket_queries.public_ticket(session, ticket)


@router.post("/tickets/{ticket_id}/comments", response_model=CommentPublic, status_code=201,
             responses=problem_responses(404), summary="Add a public reply or an internal note",
             description="A public agent reply is announced as `ticket.replied.v1` and delivered to the customer "
                         "over the channel the feedback came from (its `delivery_status` follows notify's "
                         "outcome); the first one is the first response. Internal notes never leave ticketing. "
                         "Pass `macro_id` when the text started from a macro: suggestions learn from it.")
async def add_comment(ticket_id: str, comment: CommentIn, session: SessionDep, table: TableDep, now: NowDep,
                      options: OptionsDep, writer: WriterDep) -> CommentPublic:
    row = await ticket_actions.add_comment(session, ticket_id, comment, writer.actor, table, now, options)
    return CommentPublic.model_validate(row, from_attributes=True)


@router.get("/tickets/{ticket_id}/comments", dependencies=needs("tickets:read"),
            response_model=list[CommentPublic], responses=problem_responses(404),
            summary="Replies and internal notes, oldest first")
async def list_comments(ticket_id: str, session: SessionDep) -> list[CommentPublic]:
    return [CommentPublic.model_validate(r, from_attributes=True)
            for r in await ticket_queries.comments_of(session, ticket_id)]


@router.get("/tickets/{ticket_id}/audit", dependencies=needs("tickets:read"),
            response_model=list[AuditPublic], responses=problem_responses(404),
            summary="Every change to the ticket, with actor and time, oldest first")
async def audit_log(ticket_id: str, session: SessionDep) -> list[AuditPublic]:
    return [AuditPublic.model_validate(r, from_attributes=True)
            for r in await ticket_queries.audit_of(session, ticket_id)]


@router.get("/tickets/{ticket_id}/sla", dependencies=needs("tickets:read"),
            response_model=list[SlaClockPublic], responses=problem_responses(404),
            summary="The ticket's SLA clocks: targets, warning and due times, pauses, warnings and breaches")
async def sla_clocks(ticket_id: str, session: SessionDep) -> list[SlaClockPublic]:
    return [SlaClockPublic.model_validate(c, from_attributes=True)
            for c in await ticket_queries.sla_clocks_of(session, ticket_id)]


@router.post("/tickets/{ticket_id}/merge", response_model=TicketPublic, responses=problem_responses(404, 409),
             summary="Merge this ticket into another (it is closed; its feedback and history move over)")
async def merge(ticket_id: str, body: MergeIn, session: SessionDep, now: NowDep, writer: WriterDep) -> TicketPublic:
    target = await ticket_actions.merge(session, ticket_id, body.into_ticket_id, writer.actor, now)
    return await ticket_queries.public_ticket(session, target)


@router.post("/tickets/{ticket_id}/links", response_model=TicketPublic, responses=problem_responses(404),
             summary="Link a related ticket (both ways)")
async def link(ticket_id: str, body: LinkIn, session: SessionDep, now: NowDep, writer: WriterDep) -> TicketPublic:
    ticket = await ticket_actions.link(session, ticket_id, body.ticket_id, writer.actor, now)
    return await ticket_queries.public_ticket(session, ticket)


@router.get("/teams", dependencies=needs("tickets:read"),
            response_model=list[TeamPublic], summary="Teams of the routing table")
async def list_teams(table: TableDep) -> list[TeamPublic]:
    return [TeamPublic(key=key, name=team.name, lead=team.lead) for key, team in table.teams.items()]

import base64
import binascii
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query, Request
from sqlalchemy import and_, func, or_, select

from closedloop.api import SessionDep, api_router
from closedloop.errors import FieldError, NotFound, ProblemError, problem_responses
from ticketing.models import Ticket
from ticketing.schemas import CustomerPublic, TeamPublic, TicketPage, TicketPublic

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


@router.get("/tickets", response_model=TicketPage, summary="List tickets, newest first")
async def list_tickets(
    session: SessionDep,
    status: str | None = None,
    team: str | None = None,
    priority: Literal["P0", "P1", "P2", "P3"] | None = None,
    category: Annotated[str | None, Query(description="A taxonomy key; a top level matches its children.")] = None,
    feedback_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> TicketPage:
    filters = []
    if status:
        filters.append(Ticket.status == status)
    if team:
        filters.append(Ticket.team == team)
    if priority:
        filters.append(Ticket.priority == priority)
    if category:
        filters.append(or_(Ticket.category == category, Ticket.category.startswith(category + "/")))
    if feedback_id:
        filters.append(Ticket.feedback_id == feedback_id)
    total = await session.scalar(select(func.count()).select_from(Ticket).where(*filters)) or 0
    query = select(Ticket).where(*filters)
    if cursor:
        created, ticket_id = _decode_cursor(cursor)
        query = query.where(or_(Ticket.created_at < created,
                                and_(Ticket.created_at == created, Ticket.id < ticket_id)))
    rows = list(await session.scalars(query.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit + 1)))
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return TicketPage(items=[to_public(t) for t in rows[:limit]], total=total, next_cursor=next_cursor)


@router.get("/tickets/{ticket_id}", response_model=TicketPublic, responses=problem_responses(404),
            summary="One ticket")
async def get_ticket(ticket_id: str, session: SessionDep) -> TicketPublic:
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("Ticket", ticket_id)
    return to_public(ticket)


@router.get("/teams", response_model=list[TeamPublic], summary="Teams of the routing table")
async def list_teams(request: Request) -> list[TeamPublic]:
    table = request.app.state.routing_table
    return [TeamPublic(key=key, name=team.name, lead=team.lead) for key, team in table.teams.items()]


def to_public(ticket: Ticket) -> TicketPublic:
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
    )

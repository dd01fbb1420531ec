"""What a customer does with their ticket, by its public token (the unguessable token is the credential):
read its progress, reply, rate the resolution. Both the JSON routes (`api/public.py`) and the HTML pages
(`api/pages.py`) call these; each change is one transaction (`async with session.begin():`) with the ticket
locked on PostgreSQL. Its refusals are problems (404, 409 `ticket-closed` or `not-resolved`, 422) that
the pages render as HTML."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.errors import ProblemError, conflict, field_problem
from ticketing.conversation import record_csat
from ticketing.models import Agent, Comment, CsatResponse, Ticket
from ticketing.routing import RoutingTable
from ticketing.schemas.public import CsatPublic, PublicReply, PublicTicket
from ticketing.tickets import TicketOptions, add_comment, agent_id_of

REPLY_MAX_CHARS = 20_000


class TicketNotFound(ProblemError):
    def __init__(self) -> None:
        super().__init__(404, "Ticket not found", "No ticket with this token.", slug="not-found")


async def ticket_by_token(session: AsyncSession, token: str, lock: bool = False) -> Ticket | None:
    query = select(Ticket).where(Ticket.public_token == token)
    if lock and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    return await session.scalar(query)


async def _existing(session: AsyncSession, token: str) -> Ticket:
    ticket = await ticket_by_token(session, token, lock=True)
    if ticket is None:
        raise TicketNotFound()
    return ticket


async def reply(session: AsyncSession, token: str, body: str, table: RoutingTable, now: datetime,
                options: TicketOptions) -> Ticket:
    """The customer's message joins the conversation (resuming a ticket waiting on them, reopening a
    resolved one); a closed ticket takes no more (new feedback opens a new one)."""
    async with session.begin():
        ticket = await _existing(session, token)
        if ticket.status == "closed":
            raise conflict("The ticket is closed; please send new feedback.", slug="ticket-closed",
                           field="path.token", message="ticket is closed")
        if not body or len(body) > REPLY_MAX_CHARS:
            raise field_problem("body.body", f"1 to {REPLY_MAX_CHARS} characters")
        await add_comment(session, ticket, author=ticket.customer_id, author_type="customer", public=True,
                          body=body, now=now, table=table, options=options, channel="web")
    return ticket


async def rate(session: AsyncSession, token: str, score: int | None, comment: str | None, table: RoutingTable,
               now: datetime) -> CsatResponse:
    """The customer's 1–5 rating of a resolved (or closed) ticket; a later one replaces it."""
    async with session.begin():
        ticket = await _existing(session, token)
        if ticket.status not in ("resolved", "closed"):
            raise conflict("Ratings open once the ticket is resolved.", slug="not-resolved", field="path.token",
                           message=f"ticket is {ticket.status}")
        if score is None or not 1 <= score <= 5:
            raise field_problem("body.score", "a score from 1 to 5")
        return await record_csat(session, ticket, score, comment, "page", now, table)


async def public_view(session: AsyncSession, ticket: Ticket) -> PublicTicket:
    """What the customer sees: status, expected times, public replies (never internal notes) and their rating."""
    replies = await public_comments(session, ticket)
    csat = await session.get(CsatResponse, ticket.id)
    return PublicTicket(
        title=ticket.title, status=ticket.status, created_at=ticket.created_at,  # type: ignore[arg-type]
        expected_first_response_by=ticket.first_response_due_at if ticket.first_responded_at is None else None,
        first_responded_at=ticket.first_responded_at,
        expected_resolution_by=ticket.resolution_due_at if ticket.resolved_at is None else None,
        resolved_at=ticket.resolved_at,
        replies=[PublicReply(author_type=c.author_type, body=c.body, created_at=c.created_at) for c in replies],
        csat=CsatPublic(score=csat.score, comment=csat.comment, created_at=csat.created_at) if csat else None,
    )


async def public_comments(session: AsyncSession, ticket: Ticket) -> list[Comment]:
    return list(await session.scalars(select(Comment).where(Comment.ticket_id == ticket.id, Comment.public.is_(True))
                                      .order_by(Comment.id)))


async def agent_names(session: AsyncSession, comments: list[Comment]) -> dict[str, str]:
    """The names the page shows for the agents who wrote `comments` (an author without an agent: none)."""
    authors = {c.author: agent_id_of(c.author) for c in comments if c.author_type == "agent"}
    if not authors:
        return {}
    found = {a.id: a.name for a in await session.scalars(select(Agent).where(Agent.id.in_(set(authors.values()))))}
    return {author: found[agent] for author, agent in authors.items() if agent in found}

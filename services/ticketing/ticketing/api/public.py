"""What customers see, by the ticket's public token and without an API key: status, expected
response and resolution times and public replies (never internal notes); CSAT after resolution."""

from fastapi import APIRouter, Depends
from sqlalchemy import select

from closedloop.api import SessionDep
from closedloop.auth import public
from closedloop.errors import ProblemError, conflict, problem_responses
from closedloop.http import require_json_body
from closedloop.ratelimit import rate_limit
from ticketing.api.deps import NowDep, OptionsDep, TableDep
from ticketing.conversation import record_csat
from ticketing.models import Comment, CsatResponse, Ticket
from ticketing.schemas import CsatIn, CsatPublic, CustomerReplyIn, PublicReply, PublicTicket
from ticketing.tickets import add_comment

_responses = problem_responses(401, 404, 409, 415, 422, 429)
_responses[401] = {**_responses[401], "description": "Never: these routes need no API key (the token is the secret)."}
router = APIRouter(prefix="/v1/public", tags=["public"],
                   dependencies=[Depends(public("the customer's token pages: the unguessable token is the secret")),
                                 Depends(require_json_body),
                                 # Per client IP (TICKETING_RATE_LIMIT_IP_*): guessing tokens stays slow.
                                 Depends(rate_limit("public", per_credential=False))],
                   responses=_responses)


class TicketNotFound(ProblemError):
    def __init__(self) -> None:
        super().__init__(404, "Ticket not found", "No ticket with this token.", slug="not-found")


async def _by_token(session: SessionDep, token: str, lock: bool = False) -> Ticket:
    query = select(Ticket).where(Ticket.public_token == token)
    if lock and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    ticket = await session.scalar(query)
    if ticket is None:
        raise TicketNotFound()
    return ticket


async def _view(session: SessionDep, ticket: Ticket) -> PublicTicket:
    replies = await session.scalars(select(Comment).where(Comment.ticket_id == ticket.id, Comment.public.is_(True))
                                    .order_by(Comment.id))
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


@router.get("/tickets/{token}", response_model=PublicTicket, summary="A ticket's progress, for the customer")
async def public_ticket(token: str, session: SessionDep) -> PublicTicket:
    return await _view(session, await _by_token(session, token))


@router.post("/tickets/{token}/replies", response_model=PublicTicket, status_code=201,
             summary="The customer replies (resumes a ticket waiting on them, reopens a resolved one)")
async def customer_reply(token: str, body: CustomerReplyIn, session: SessionDep, table: TableDep, now: NowDep,
                         options: OptionsDep) -> PublicTicket:
    ticket = await _by_token(session, token, lock=True)
    if ticket.status == "closed":
        raise conflict("The ticket is closed; please send new feedback.", slug="ticket-closed", field="path.token",
                       message="ticket is closed")
    await add_comment(session, ticket, author=ticket.customer_id, author_type="customer", public=True,
                      body=body.body, now=now, table=table, options=options, channel="web")
    await session.commit()
    return await _view(session, ticket)


@router.post("/tickets/{token}/csat", response_model=CsatPublic, status_code=201,
             summary="Rate the resolution 1–5 with an optional comment (a later rating replaces it)")
async def rate(token: str, body: CsatIn, session: SessionDep, now: NowDep, table: TableDep) -> CsatPublic:
    ticket = await _by_token(session, token, lock=True)
    if ticket.status not in ("resolved", "closed"):
        raise conflict("Ratings open once the ticket is resolved.", slug="not-resolved", field="path.token",
                       message=f"ticket is {ticket.status}")
    row = await record_csat(session, ticket, body.score, body.comment, "page", now, table)
    await session.commit()
    return CsatPublic(score=row.score, comment=row.comment, created_at=row.created_at)

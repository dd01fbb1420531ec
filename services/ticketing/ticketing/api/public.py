"""What customers see, by the ticket's public token and without an API key: status, expected
response and resolution times and public replies (never internal notes); CSAT after resolution.
The work is in `ticketing.customer_tickets`."""

from fastapi import APIRouter, Depends

from closedloop.api import SessionDep
from closedloop.auth import public
from closedloop.errors import problem_responses
from closedloop.http import require_json_body
from closedloop.ratelimit import rate_limit
from ticketing import customer_tickets
from ticketing.api.deps import NowDep, OptionsDep, TableDep
from ticketing.customer_tickets import TicketNotFound
from ticketing.schemas.public import CsatIn, CsatPublic, CustomerReplyIn, PublicTicket

_responses = problem_responses(401, 404, 409, 415, 422, 429)
_responses[401] = {**_responses[401], "description": "Never: these routes need no API key (the token is the secret)."}
router = APIRouter(prefix="/v1/public", tags=["public"],
                   dependencies=[Depends(public("the customer's token pages: the unguessable token is the secret")),
                                 Depends(require_json_body),
                                 # Per client IP (TICKETING_RATE_LIMIT_IP_*): guessing tokens stays slow.
                                 Depends(rate_limit("public", per_credential=False))],
                   responses=_responses)


@router.get("/tickets/{token}", response_model=PublicTicket, summary="A ticket's progress, for the customer")
async def public_ticket(token: str, session: SessionDep) -> PublicTicket:
    ticket = await customer_tickets.ticket_by_token(session, token)
    if ticket is None:
        raise TicketNotFound()
    return await customer_tickets.public_view(session, ticket)


@router.post("/tickets/{token}/replies", response_model=PublicTicket, status_code=201,
             summary="The customer replies (resumes a ticket waiting on them, reopens a resolved one)")
async def customer_reply(token: str, body: CustomerReplyIn, session: SessionDep, table: TableDep, now: NowDep,
                         options: OptionsDep) -> PublicTicket:
    ticket = await customer_tickets.reply(session, token, body.body, table, now, options)
    return await customer_tickets.public_view(session, ticket)


@router.post("/tickets/{token}/csat", response_model=CsatPublic, status_code=201,
             summary="Rate the resolution 1–5 with an optional comment (a later rating replaces it)")
async def rate(token: str, body: CsatIn, session: SessionDep, now: NowDep, table: TableDep) -> CsatPublic:
    row = await customer_tickets.rate(session, token, body.score, body.comment, table, now)
    return CsatPublic(score=row.score, comment=row.comment, created_at=row.created_at)

"""Dependencies the ticketing routes share."""

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from closedloop.api import SessionDep, get_or_404
from closedloop.auth import Principal, require
from ticketing.models import Ticket
from ticketing.routing import RoutingTable
from ticketing.tickets import TicketOptions


def get_table(request: Request) -> RoutingTable:
    return request.app.state.routing_table


def get_now(request: Request) -> datetime:
    return request.app.state.clock.now()


def get_options(request: Request) -> TicketOptions:
    return request.app.state.ticket_options


TableDep = Annotated[RoutingTable, Depends(get_table)]
NowDep = Annotated[datetime, Depends(get_now)]
OptionsDep = Annotated[TicketOptions, Depends(get_options)]
# Who works the ticket: the audit log names this principal.
WriterDep = Annotated[Principal, Depends(require("tickets:write"))]


async def ticket_for_update(session: SessionDep, ticket_id: str) -> Ticket:
    """The ticket, locked for the rest of the request's transaction on PostgreSQL."""
    return await get_or_404(session, Ticket, ticket_id, "Ticket",
                            with_for_update=session.bind.dialect.name == "postgresql")

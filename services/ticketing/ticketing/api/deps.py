"""Dependencies the ticketing routes share."""

from datetime import datetime
from typing import Annotated

from fastapi import Depends

from closedloop.api import app_state
from closedloop.auth import Principal, require
from ticketing.clock import Clock
from ticketing.routing import RoutingTable
from ticketing.settings import TicketingSettings
from ticketing.tickets import TicketOptions


async def get_now(clock: Annotated[Clock, app_state("clock")]) -> datetime:
    return clock.now()


SettingsDep = Annotated[TicketingSettings, app_state("settings")]
TableDep = Annotated[RoutingTable, app_state("routing_table")]
NowDep = Annotated[datetime, Depends(get_now)]
OptionsDep = Annotated[TicketOptions, app_state("ticket_options")]
# Who works the ticket: the audit log names this principal.
WriterDep = Annotated[Principal, Depends(require("tickets:write"))]


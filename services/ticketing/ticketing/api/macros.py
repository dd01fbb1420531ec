"""Macros (reply templates per language) over HTTP, and the replies suggested for a ticket; the work is
in `ticketing.macros`."""

from typing import Annotated

from fastapi import Query

from closedloop.api import SessionDep, api_router
from closedloop.auth import needs
from closedloop.errors import problem_responses
from ticketing import macros
from ticketing.api.deps import NowDep
from ticketing.models import Macro
from ticketing.schemas.macros import MacroIn, MacroPatchIn, MacroPublic, SuggestedReply

router = api_router("macros", 400)


def _public(macro: Macro) -> MacroPublic:
    return MacroPublic.model_validate(macro, from_attributes=True)


@router.get("/macros", dependencies=needs("tickets:read"),
            response_model=list[MacroPublic], summary="Macros, by name")
async def list_macros(session: SessionDep, language: str | None = None, category: str | None = None,
                      active: bool | None = None) -> list[MacroPublic]:
    return [_public(m) for m in await macros.list_macros(session, language, category, active)]


@router.post("/macros", dependencies=needs("config:write"),
             response_model=MacroPublic, status_code=201, summary="Add a macro")
async def create_macro(body: MacroIn, session: SessionDep, now: NowDep) -> MacroPublic:
    return _public(await macros.create_macro(session, body, now))


@router.get("/macros/{macro_id}", dependencies=needs("tickets:read"),
            response_model=MacroPublic, responses=problem_responses(404), summary="One macro")
async def get_macro(macro_id: str, session: SessionDep) -> MacroPublic:
    return _public(await macros.get_macro(session, macro_id))


@router.patch("/macros/{macro_id}", dependencies=needs("config:write"),
              response_model=MacroPublic, responses=problem_responses(404),
              summary="Change a macro (shipped ones too)")
async def update_macro(macro_id: str, change: MacroPatchIn, session: SessionDep, now: NowDep) -> MacroPublic:
    return _public(await macros.update_macro(session, macro_id, change, now))


@router.delete("/macros/{macro_id}", dependencies=needs("config:write"),
               status_code=204, responses=problem_responses(404),
               summary="Delete a macro (a shipped one is deactivated, so it does not come back at the next start)")
async def delete_macro(macro_id: str, session: SessionDep, now: NowDep) -> None:
    await macros.delete_macro(session, macro_id, now)


@router.get("/tickets/{ticket_id}/suggested-replies", dependencies=needs("tickets:read"),
            response_model=list[SuggestedReply],
            responses=problem_responses(404), summary="Macros ranked for this ticket, filled in for it",
            description="Ranked by the ticket's category, the customer's emotions and language: a prior from what "
                        "each macro was written for, pulled towards the macros agents sent on similar tickets "
                        "(`macro_id` on their replies). Macros in the ticket's language, else English.")
async def suggested_replies(ticket_id: str, session: SessionDep, now: NowDep,
                            limit: Annotated[int, Query(ge=1, le=20)] = 5) -> list[SuggestedReply]:
    return await macros.suggested_replies(session, ticket_id, now, limit)

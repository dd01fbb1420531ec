"""Macros (reply templates per language) over the API, and the replies suggested for a ticket."""

from typing import Annotated
from uuid import uuid4

from fastapi import Query
from sqlalchemy import select

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import field_problem, problem_responses
from ticketing import macros
from ticketing.api.deps import NowDep
from ticketing.models import Macro, Ticket
from ticketing.schemas import MacroIn, MacroPublic, MacroUpdate, SuggestedReply

router = api_router("macros", 400)


def _check_body(body: str | None) -> None:
    unknown = macros.unknown_placeholders(body or "")
    if unknown:
        detail = f"unknown placeholder(s) {', '.join(unknown)}; use {', '.join(macros.PLACEHOLDERS)}"
        raise field_problem("body.body", detail)


def _public(macro: Macro) -> MacroPublic:
    return MacroPublic.model_validate(macro, from_attributes=True)


async def _macro(session: SessionDep, macro_id: str) -> Macro:
    return await get_or_404(session, Macro, macro_id, "Macro")


@router.get("/macros", dependencies=needs("tickets:read"),
            response_model=list[MacroPublic], summary="Macros, by name")
async def list_macros(session: SessionDep, language: str | None = None, category: str | None = None,
                      active: bool | None = None) -> list[MacroPublic]:
    query = select(Macro).order_by(Macro.name, Macro.language)
    if language:
        query = query.where(Macro.language == language)
    if category:
        query = query.where(Macro.category == category)
    if active is not None:
        query = query.where(Macro.active.is_(active))
    return [_public(m) for m in await session.scalars(query)]


@router.post("/macros", dependencies=needs("config:write"),
             response_model=MacroPublic, status_code=201, summary="Add a macro")
async def create_macro(body: MacroIn, session: SessionDep, now: NowDep) -> MacroPublic:
    _check_body(body.body)
    macro = Macro(id=str(uuid4()), **body.model_dump(), builtin=False, created_at=now, updated_at=now)
    session.add(macro)
    await session.commit()
    return _public(macro)


@router.get("/macros/{macro_id}", dependencies=needs("tickets:read"),
            response_model=MacroPublic, responses=problem_responses(404), summary="One macro")
async def get_macro(macro_id: str, session: SessionDep) -> MacroPublic:
    return _public(await _macro(session, macro_id))


@router.patch("/macros/{macro_id}", dependencies=needs("config:write"),
              response_model=MacroPublic, responses=problem_responses(404),
              summary="Change a macro (shipped ones too)")
async def update_macro(macro_id: str, change: MacroUpdate, session: SessionDep, now: NowDep) -> MacroPublic:
    macro = await _macro(session, macro_id)
    _check_body(change.body)
    for name, value in change.model_dump(exclude_unset=True).items():
        if value is None and name not in ("category",):
            continue
        setattr(macro, name, value)
    macro.updated_at = now
    await session.commit()
    return _public(macro)


@router.delete("/macros/{macro_id}", dependencies=needs("config:write"),
               status_code=204, responses=problem_responses(404),
               summary="Delete a macro (a shipped one is deactivated, so it does not come back at the next start)")
async def delete_macro(macro_id: str, session: SessionDep, now: NowDep) -> None:
    macro = await _macro(session, macro_id)
    if macro.builtin:
        macro.active, macro.updated_at = False, now
    else:
        await session.delete(macro)
    await session.commit()


@router.get("/tickets/{ticket_id}/suggested-replies", dependencies=needs("tickets:read"),
            response_model=list[SuggestedReply],
            responses=problem_responses(404), summary="Macros ranked for this ticket, filled in for it",
            description="Ranked by the ticket's category, the customer's emotions and language: a prior from what "
                        "each macro was written for, pulled towards the macros agents sent on similar tickets "
                        "(`macro_id` on their replies). Macros in the ticket's language, else English.")
async def suggested_replies(ticket_id: str, session: SessionDep, now: NowDep,
                            limit: Annotated[int, Query(ge=1, le=20)] = 5) -> list[SuggestedReply]:
    ticket = await get_or_404(session, Ticket, ticket_id, "Ticket")
    result = []
    for suggestion in await macros.suggest(session, ticket, limit):
        values = macros.placeholder_values(ticket, suggestion.macro.language, now)
        result.append(SuggestedReply(
            macro_id=suggestion.macro.id, name=suggestion.macro.name, language=suggestion.macro.language,
            score=suggestion.score, prior=suggestion.prior, similar_uses=suggestion.similar_uses,
            reasons=suggestion.reasons, text=macros.render(suggestion.macro.body, values)))
    return result

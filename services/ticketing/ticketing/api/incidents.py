"""Incidents and the auto-reply rules over HTTP; the work is in `ticketing.incidents` and `ticketing.autoreply`."""

from typing import Annotated

from fastapi import Query

from closedloop.api import SessionDep, api_router
from closedloop.auth import needs
from closedloop.errors import problem_responses
from closedloop.pagination import Cursor
from ticketing import autoreply, incidents
from ticketing.api.deps import NowDep
from ticketing.autoreply import AutoReplyRules
from ticketing.schemas.incidents import IncidentConfirmIn, IncidentIn, IncidentPage, IncidentPatchIn, IncidentPublic

router = api_router("incidents", 400)


@router.get("/incidents", dependencies=needs("tickets:read"),
            response_model=IncidentPage, summary="Incidents, newest first, a page at a time")
async def list_incidents(session: SessionDep, status: str | None = None,
                         limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: Cursor = None) -> IncidentPage:
    return await incidents.list_incidents(session, status, limit, cursor)


@router.post("/incidents", dependencies=needs("tickets:write"),
             response_model=IncidentPublic, status_code=201,
             summary="Declare an incident: matching new feedback gets its public message and is linked to it")
async def declare_incident(body: IncidentIn, session: SessionDep, now: NowDep) -> IncidentPublic:
    return await incidents.public_incident(session, await incidents.declare_incident(session, body, now))


@router.get("/incidents/{incident_id}", dependencies=needs("tickets:read"),
            response_model=IncidentPublic, responses=problem_responses(404),
            summary="One incident")
async def get_incident(incident_id: str, session: SessionDep) -> IncidentPublic:
    return await incidents.public_incident(session, await incidents.get_incident(session, incident_id))


@router.patch("/incidents/{incident_id}", dependencies=needs("tickets:write"),
              response_model=IncidentPublic, responses=problem_responses(404),
              summary="Change an incident's message, categories or keywords")
async def update_incident(incident_id: str, change: IncidentPatchIn, session: SessionDep, now: NowDep
                          ) -> IncidentPublic:
    return await incidents.public_incident(session, await incidents.update_incident(session, incident_id, change,
                                                                                    now))


@router.post("/incidents/{incident_id}/confirm", dependencies=needs("tickets:write"),
             response_model=IncidentPublic, responses=problem_responses(404, 409),
             summary="Confirm a spike alert as an incident (it is open from now on)")
async def confirm_incident(incident_id: str, body: IncidentConfirmIn, session: SessionDep, now: NowDep
                           ) -> IncidentPublic:
    return await incidents.public_incident(session, await incidents.confirm_incident(session, incident_id, body,
                                                                                     now))


@router.post("/incidents/{incident_id}/resolve", dependencies=needs("tickets:write"),
             response_model=IncidentPublic, responses=problem_responses(404),
             summary="The incident is over: new feedback no longer matches it")
async def resolve_incident(incident_id: str, session: SessionDep, now: NowDep) -> IncidentPublic:
    return await incidents.public_incident(session, await incidents.resolve_incident(session, incident_id, now))


@router.get("/auto-reply", dependencies=needs("tickets:read"),
            response_model=AutoReplyRules, summary="The auto-reply rules")
async def get_rules(session: SessionDep) -> AutoReplyRules:
    return await autoreply.load_rules(session)


@router.put("/auto-reply", dependencies=needs("config:write"),
            response_model=AutoReplyRules,
            summary="Replace the auto-reply rules (praise, incidents, categories switched off)")
async def put_rules(rules: AutoReplyRules, session: SessionDep, now: NowDep) -> AutoReplyRules:
    await autoreply.save_rules(session, rules, now)
    return rules

"""Declared incidents (and spike alerts proposed as incidents), and the auto-reply rules."""

from uuid import uuid4

from sqlalchemy import func, select

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import ProblemError, conflict, problem_responses
from ticketing.api.deps import NowDep
from ticketing.autoreply import SETTING_KEY, AutoReplyRules, load_rules
from ticketing.models import Incident, Setting, Ticket
from ticketing.schemas import IncidentConfirm, IncidentIn, IncidentPublic, IncidentUpdate

router = api_router("incidents", 400)



async def _incident(session: SessionDep, incident_id: str) -> Incident:
    return await get_or_404(session, Incident, incident_id, "Incident")


async def _public(session: SessionDep, incident: Incident) -> IncidentPublic:
    count = await session.scalar(select(func.count()).select_from(Ticket).where(Ticket.incident_id == incident.id))
    return IncidentPublic.model_validate({**{c: getattr(incident, c) for c in IncidentPublic.model_fields
                                            if c != "ticket_count"}, "ticket_count": count or 0})


def _conflict(detail: str) -> ProblemError:
    return conflict(detail, slug="invalid-transition", field="path.incident_id")


@router.get("/incidents", dependencies=needs("tickets:read"),
            response_model=list[IncidentPublic], summary="Incidents, newest first")
async def list_incidents(session: SessionDep, status: str | None = None) -> list[IncidentPublic]:
    query = select(Incident).order_by(Incident.created_at.desc())
    if status:
        query = query.where(Incident.status == status)
    return [await _public(session, i) for i in await session.scalars(query)]


@router.post("/incidents", dependencies=needs("tickets:write"),
             response_model=IncidentPublic, status_code=201,
             summary="Declare an incident: matching new feedback gets its public message and is linked to it")
async def declare_incident(body: IncidentIn, session: SessionDep, now: NowDep) -> IncidentPublic:
    incident = Incident(id=str(uuid4()), **body.model_dump(), status="open", source="declared", alert=None,
                        confirmed_by=None, created_at=now, updated_at=now)
    session.add(incident)
    await session.commit()
    return await _public(session, incident)


@router.get("/incidents/{incident_id}", dependencies=needs("tickets:read"),
            response_model=IncidentPublic, responses=problem_responses(404),
            summary="One incident")
async def get_incident(incident_id: str, session: SessionDep) -> IncidentPublic:
    return await _public(session, await _incident(session, incident_id))


@router.patch("/incidents/{incident_id}", dependencies=needs("tickets:write"),
              response_model=IncidentPublic, responses=problem_responses(404),
              summary="Change an incident's message, categories or keywords")
async def update_incident(incident_id: str, change: IncidentUpdate, session: SessionDep, now: NowDep
                          ) -> IncidentPublic:
    incident = await _incident(session, incident_id)
    for name, value in change.model_dump(exclude_none=True).items():
        setattr(incident, name, value)
    incident.updated_at = now
    await session.commit()
    return await _public(session, incident)


@router.post("/incidents/{incident_id}/confirm", dependencies=needs("tickets:write"),
             response_model=IncidentPublic, responses=problem_responses(404, 409),
             summary="Confirm a spike alert as an incident (it is open from now on)")
async def confirm_incident(incident_id: str, body: IncidentConfirm, session: SessionDep, now: NowDep
                           ) -> IncidentPublic:
    incident = await _incident(session, incident_id)
    if incident.status != "proposed":
        raise _conflict(f"the incident is {incident.status}, not proposed")
    incident.public_message, incident.categories, incident.keywords = (body.public_message, body.categories,
                                                                       body.keywords)
    if body.description:
        incident.description = body.description
    incident.status, incident.confirmed_by, incident.updated_at = "open", "operator", now
    await session.commit()
    return await _public(session, incident)


@router.post("/incidents/{incident_id}/resolve", dependencies=needs("tickets:write"),
             response_model=IncidentPublic, responses=problem_responses(404),
             summary="The incident is over: new feedback no longer matches it")
async def resolve_incident(incident_id: str, session: SessionDep, now: NowDep) -> IncidentPublic:
    incident = await _incident(session, incident_id)
    incident.status, incident.updated_at = "resolved", now
    await session.commit()
    return await _public(session, incident)


@router.get("/auto-reply", dependencies=needs("tickets:read"),
            response_model=AutoReplyRules, summary="The auto-reply rules")
async def get_rules(session: SessionDep) -> AutoReplyRules:
    return await load_rules(session)


@router.put("/auto-reply", dependencies=needs("config:write"),
            response_model=AutoReplyRules,
            summary="Replace the auto-reply rules (praise, incidents, categories switched off)")
async def put_rules(rules: AutoReplyRules, session: SessionDep, now: NowDep) -> AutoReplyRules:
    stored = await session.get(Setting, SETTING_KEY)
    if stored is None:
        session.add(Setting(key=SETTING_KEY, document=rules.model_dump(mode="json"), updated_at=now,
                            updated_by="api"))
    else:
        stored.document, stored.updated_at, stored.updated_by = rules.model_dump(mode="json"), now, "api"
    await session.commit()
    return rules

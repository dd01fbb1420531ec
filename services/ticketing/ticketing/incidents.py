"""Incidents: declared by an operator, or proposed from a spike alert (`conversation.on_alert_raised`) and
confirmed or not. While one is open, matching new feedback gets its public message and is linked to it
(`autoreply`). Each change is one transaction (`async with session.begin():`)."""

from datetime import datetime
from uuid import uuid4

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import get_or_404
from closedloop.errors import conflict
from closedloop.pagination import keyset_page
from ticketing.models import Incident, Ticket
from ticketing.schemas.incidents import IncidentConfirmIn, IncidentIn, IncidentPage, IncidentPatchIn, IncidentPublic


async def public_incident(session: AsyncSession, incident: Incident) -> IncidentPublic:
    """The incident with how many tickets are linked to it."""
    count = await session.scalar(select(func.count()).select_from(Ticket).where(Ticket.incident_id == incident.id))
    return IncidentPublic.model_validate({**{c: getattr(incident, c) for c in IncidentPublic.model_fields
                                            if c != "ticket_count"}, "ticket_count": count or 0})


async def get_incident(session: AsyncSession, incident_id: str) -> Incident:
    return await get_or_404(session, Incident, incident_id, "Incident")


async def list_incidents(session: AsyncSession, status: str | None, limit: int, cursor: str | None) -> IncidentPage:
    """Newest first, one page (proposed incidents from alerts accumulate: the list grows with use)."""
    query = select(Incident)
    if status:
        query = query.where(Incident.status == status)
    page = await keyset_page(session, query, order=(Incident.created_at, Incident.id), limit=limit, cursor=cursor)
    return IncidentPage(items=[await public_incident(session, i) for i in page.rows], total=page.total,
                        next_cursor=page.next_cursor)


async def declare_incident(session: AsyncSession, body: IncidentIn, now: datetime) -> Incident:
    async with session.begin():
        incident = Incident(id=str(uuid4()), **body.model_dump(), status="open", source="declared", alert=None,
                            confirmed_by=None, created_at=now, updated_at=now)
        session.add(incident)
    return incident


async def update_incident(session: AsyncSession, incident_id: str, change: IncidentPatchIn,
                          now: datetime) -> Incident:
    """The message, categories or keywords: only the fields sent."""
    async with session.begin():
        incident = await get_incident(session, incident_id)
        for name, value in change.model_dump(exclude_none=True).items():
            setattr(incident, name, value)
        incident.updated_at = now
    return incident


async def confirm_incident(session: AsyncSession, incident_id: str, body: IncidentConfirmIn,
                           now: datetime) -> Incident:
    """A proposed incident (a spike alert) becomes open, with its public message."""
    async with session.begin():
        incident = await get_incident(session, incident_id)
        if incident.status != "proposed":
            raise conflict(f"the incident is {incident.status}, not proposed", slug="invalid-transition",
                           field="path.incident_id")
        incident.public_message, incident.categories, incident.keywords = (body.public_message, body.categories,
                                                                           body.keywords)
        if body.description:
            incident.description = body.description
        incident.status, incident.confirmed_by, incident.updated_at = "open", "operator", now
    return incident


async def resolve_incident(session: AsyncSession, incident_id: str, now: datetime) -> Incident:
    """The incident is over: new feedback no longer matches it."""
    async with session.begin():
        incident = await get_incident(session, incident_id)
        incident.status, incident.updated_at = "resolved", now
    return incident

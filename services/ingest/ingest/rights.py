"""Data rights, ingest's part: it receives the erasure request (it owns the customers), announces it to
every service, erases its own rows when the announcement comes back to it like to everyone else, and
records each service's completion. The export gathers what every service holds over their HTTP APIs."""

import hashlib
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID, uuid4

import httpx
from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.erasure import ERASED, chunks, empty_wal_after_commit, pseudonym
from closedloop.events import CustomerErasureCompletedV1, CustomerErasureRequestedV1
from ingest.models import (
    Customer,
    Erasure,
    Feedback,
    FeedbackDuplicate,
    IdempotencyKey,
    Invitation,
    OutboxMessage,
    outbox,
)
from ingest.schemas.customers import to_profile
from ingest.schemas.feedback import to_public


def customer_hash(customer_id: str) -> str:
    return hashlib.sha256(customer_id.encode()).hexdigest()


async def request_erasure(session: AsyncSession, customer_id: str, requested_by: str | None) -> Erasure:
    """Record the request and stage the event that reaches every service (ingest included)."""
    async with session.begin():
        rows = (await session.execute(select(Feedback.id, Feedback.ticket_id, Feedback.customer_email)
                                      .where(Feedback.customer_id == customer_id))).all()
        profile = await session.get(Customer, customer_id)
        email = (profile.email if profile else None) or next((r.customer_email for r in rows if r.customer_email), None)
        erasure = Erasure(id=str(uuid4()), customer_hash=customer_hash(customer_id), requested_by=requested_by,
                          requested_at=datetime.now(UTC), services={})
        session.add(erasure)
        # The event's id is the erasure's: once every service completed, its outbox row (which names the
        # customer) is deleted by that id.
        outbox.add(session, CustomerErasureRequestedV1(
            event_id=UUID(erasure.id), erasure_id=UUID(erasure.id), customer_id=customer_id, customer_email=email,
            feedback_ids=[r.id for r in rows], ticket_ids=sorted({r.ticket_id for r in rows if r.ticket_id})))
        return erasure


async def erase_customer(session: AsyncSession, event: CustomerErasureRequestedV1) -> dict[str, int]:
    """Ingest's rows: feedback texts and originals, personal fields and metadata; profile, invitations,
    idempotency keys and duplicate records. Feedback rows stay (their ids are referenced downstream)."""
    customer_id = event.customer_id
    ids = list((await session.scalars(select(Feedback.id).where(Feedback.customer_id == customer_id))).all())
    ids = sorted({*ids, *event.feedback_ids})
    erased = {"feedback": 0, "customers": 0, "feedback_invitations": 0, "idempotency_keys": 0,
              "feedback_duplicates": 0}
    for group in chunks(ids):
        result = cast(CursorResult[Any], await session.execute(update(Feedback).where(Feedback.id.in_(group)).values(
            text=ERASED, original_text=None, subject=None, original_subject=None, customer_id=pseudonym(
                event.erasure_id), customer_email=None, customer_name=None, customer_locale=None, extra={},
            external_id=None, thread_id=None, text_hash=None, updated_at=datetime.now(UTC))))
        erased["feedback"] += result.rowcount or 0
        erased["idempotency_keys"] += cast(CursorResult[Any], await session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.feedback_id.in_(group)))).rowcount or 0
        erased["feedback_duplicates"] += cast(CursorResult[Any], await session.execute(delete(FeedbackDuplicate).where(
            or_(FeedbackDuplicate.feedback_id.in_(group), FeedbackDuplicate.customer_id == customer_id)))
        ).rowcount or 0
    erased["customers"] = cast(CursorResult[Any], await session.execute(
        delete(Customer).where(Customer.id == customer_id))).rowcount or 0
    erased["feedback_invitations"] = cast(CursorResult[Any], await session.execute(
        delete(Invitation).where(Invitation.customer_id == customer_id))).rowcount or 0
    return erased


async def record_completion(session: AsyncSession, event: CustomerErasureCompletedV1,
                            erasure_services: list[str]) -> None:
    """A service reported its part of an erasure done; once all of `erasure_services` did, the request's
    outbox row (it names the customer) is deleted."""
    erasure = await session.get(Erasure, str(event.erasure_id))
    if erasure is None:
        return  # requested through another ingest database (not ours to track)
    erasure.services = {**(erasure.services or {}), event.service: {
        "completed_at": event.occurred_at.isoformat(), "erased": event.erased}}
    if set(erasure_services) <= set(erasure.services):
        # Every service received the request, so its outbox row was published: the last copy of the id goes.
        await session.execute(delete(OutboxMessage).where(OutboxMessage.event_id == erasure.id,
                                                          OutboxMessage.published_at.is_not(None)))
        empty_wal_after_commit(session)


def erasure_status(erasure: Erasure, expected: list[str]) -> dict[str, Any]:
    services = {name: {"status": "completed", **erasure.services[name]} if name in (erasure.services or {})
                else {"status": "pending"} for name in dict.fromkeys([*expected, *(erasure.services or {})])}
    done = all(entry["status"] == "completed" for entry in services.values())
    return {"id": erasure.id, "status": "completed" if done else "pending",
            "requested_at": erasure.requested_at, "requested_by": erasure.requested_by, "services": services}


# --- export ---------------------------------------------------------------------------------------


async def export_customer(session: AsyncSession, customer_id: str, service_urls: dict[str, str],
                          auth_headers: dict[str, str], max_items: int) -> dict[str, Any]:
    """Everything held about the customer: ingest's rows here, the rest asked from each service's API
    (classifications per feedback item, tickets with their comments, deliveries per ticket)."""
    profile = await session.get(Customer, customer_id)
    feedback = list((await session.scalars(select(Feedback).where(Feedback.customer_id == customer_id)
                                           .order_by(Feedback.received_at).limit(max_items))).all())
    invitations = list((await session.scalars(select(Invitation).where(Invitation.customer_id == customer_id)
                                              .order_by(Invitation.invited_at))).all())
    ingest_part = {
        "customer": to_profile(profile).model_dump(mode="json") if profile else None,
        "feedback": [{**to_public(f).model_dump(mode="json"), "original_text": f.original_text,
                      "original_subject": f.original_subject} for f in feedback],
        "invitations": [{"id": i.id, "channel": i.channel, "campaign": i.campaign,
                         "invited_at": i.invited_at.isoformat()} for i in invitations],
    }
    result: dict[str, Any] = {"customer_id": customer_id, "exported_at": datetime.now(UTC).isoformat(),
                              "services": {"ingest": ingest_part}, "errors": []}
    feedback_ids = [f.id for f in feedback]
    async with httpx.AsyncClient(headers=auth_headers, timeout=10) as client:
        async def get(service: str, path: str, **params: Any) -> Any:
            base = service_urls.get(service)
            if not base:
                return None
            try:
                response = await client.get(base.rstrip("/") + path, params=params)
            except httpx.HTTPError as exc:
                result["errors"].append({"service": service, "path": path, "error": str(exc)})
                return None
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                result["errors"].append({"service": service, "path": path, "status": response.status_code})
                return None
            return response.json()

        classifications = [c for c in [await get("classify", f"/v1/classifications/{i}") for i in feedback_ids] if c]
        tickets: list[dict[str, Any]] = []
        for feedback_id in feedback_ids:
            page = await get("ticketing", "/v1/tickets", feedback_id=feedback_id)
            for ticket in (page or {}).get("items", []):
                ticket["comments"] = await get("ticketing", f"/v1/tickets/{ticket['id']}/comments") or []
                tickets.append(ticket)
        deliveries: list[dict[str, Any]] = []
        for ticket_id in sorted({t["id"] for t in tickets} | {f.ticket_id for f in feedback if f.ticket_id}):
            page = await get("notify", "/v1/deliveries", ticket_id=ticket_id, limit=500)
            deliveries += (page or {}).get("items", [])
    result["services"].update({"classify": {"classifications": classifications},
                               "ticketing": {"tickets": tickets}, "notify": {"deliveries": deliveries}})
    return result

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query
from sqlalchemy import func, select

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import conflict, problem_responses
from closedloop.limits import Offset
from closedloop.wakeup import wake_after_commit
from notify.dispatcher import DELIVERIES_CHANNEL
from notify.models import Delivery
from notify.schemas import ChannelName, DeliveryDetail, DeliveryPage, DeliveryPublic, DeliveryStatus

router = api_router("deliveries", 400)


def to_public(delivery: Delivery) -> DeliveryPublic:
    return DeliveryPublic.model_validate(delivery, from_attributes=True)


@router.get("/deliveries", dependencies=needs("tickets:read"),
            response_model=DeliveryPage, summary="List deliveries, newest first",
            description="Every notification notify planned, on every channel. `?status=failed` is the dead-letter "
                        "list (deliveries that gave up after the last attempt or on a permanent error; inspect with "
                        "`GET /v1/deliveries/{id}`, send again with `POST /v1/deliveries/{id}/replay`); "
                        "`?status=suppressed` lists what the no-spam rules held back, each with its `reason`.")
async def list_deliveries(
    session: SessionDep,
    status: DeliveryStatus | None = None,
    channel: ChannelName | None = None,
    recipient: str | None = None,
    event_type: str | None = None,
    endpoint_id: str | None = None,
    source_event_id: str | None = None,
    ticket_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> DeliveryPage:
    filters = []
    if status:
        filters.append(Delivery.status == status)
    if channel:
        filters.append(Delivery.channel == channel)
    if recipient:
        filters.append(Delivery.recipient == recipient)
    if ticket_id:
        filters.append(Delivery.ticket_id == ticket_id)
    if event_type:
        filters.append(Delivery.event_type == event_type)
    if endpoint_id:
        filters.append(Delivery.endpoint_id == endpoint_id)
    if source_event_id:
        filters.append(Delivery.source_event_id == source_event_id)
    total = await session.scalar(select(func.count()).select_from(Delivery).where(*filters)) or 0
    rows = await session.scalars(select(Delivery).where(*filters)
                                 .order_by(Delivery.created_at.desc(), Delivery.id).limit(limit).offset(offset))
    return DeliveryPage(items=[to_public(d) for d in rows], total=total)


@router.get("/deliveries/{delivery_id}", dependencies=needs("tickets:read"),
            response_model=DeliveryDetail, responses=problem_responses(404),
            summary="One delivery with its payload")
async def get_delivery(delivery_id: str, session: SessionDep) -> DeliveryDetail:
    delivery = await get_or_404(session, Delivery, delivery_id, "Delivery")
    return DeliveryDetail.model_validate(delivery, from_attributes=True)


@router.post("/deliveries/{delivery_id}/replay", dependencies=needs("config:write"),
             status_code=202, response_model=DeliveryPublic,
             responses=problem_responses(404, 409), summary="Send a failed (dead-lettered) delivery again",
             description="Also sends a delivered one again, or a suppressed one despite its reason. The payload is "
                         "sent exactly as planned; attempts start again from zero.")
async def replay_delivery(delivery_id: str, session: SessionDep) -> DeliveryPublic:
    delivery = await get_or_404(session, Delivery, delivery_id, "Delivery")
    if delivery.status == "pending":
        raise conflict("It is already scheduled to be sent.", slug="delivery-pending", title="Delivery still pending")
    if not delivery.payload:
        raise conflict("This delivery could not be rendered: " + (delivery.reason or ""), slug="delivery-empty",
                       title="Nothing to send")
    if delivery.status == "suppressed":
        delivery.reason = f"replayed despite: {delivery.reason}"
    delivery.status, delivery.attempts = "pending", 0
    delivery.next_attempt_at, delivery.leased_until = datetime.now(UTC), None
    wake_after_commit(session, DELIVERIES_CHANNEL)
    await session.commit()
    return to_public(delivery)

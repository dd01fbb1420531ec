from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Query
from sqlalchemy import func, select

from closedloop.api import SessionDep, api_router
from closedloop.errors import NotFound, ProblemError, problem_responses
from notify.models import Delivery
from notify.schemas import DeliveryDetail, DeliveryPage, DeliveryPublic

router = api_router("deliveries", 400)


def to_public(delivery: Delivery) -> DeliveryPublic:
    return DeliveryPublic.model_validate(delivery, from_attributes=True)


@router.get("/deliveries", response_model=DeliveryPage, summary="List deliveries, newest first")
async def list_deliveries(
    session: SessionDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    event_type: str | None = None,
    endpoint_id: str | None = None,
    source_event_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DeliveryPage:
    filters = []
    if status:
        filters.append(Delivery.status == status)
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


@router.get("/deliveries/{delivery_id}", response_model=DeliveryDetail, responses=problem_responses(404),
            summary="One delivery with its payload")
async def get_delivery(delivery_id: str, session: SessionDep) -> DeliveryDetail:
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound("Delivery", delivery_id)
    return DeliveryDetail.model_validate(delivery, from_attributes=True)


@router.post("/deliveries/{delivery_id}/replay", status_code=202, response_model=DeliveryPublic,
             responses=problem_responses(404, 409), summary="Send a failed delivery again")
async def replay_delivery(delivery_id: str, session: SessionDep) -> DeliveryPublic:
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound("Delivery", delivery_id)
    if delivery.status == "pending":
        raise ProblemError(409, "Delivery still pending", "It is already scheduled to be sent.",
                           slug="delivery-pending")
    delivery.status, delivery.attempts = "pending", 0
    delivery.next_attempt_at, delivery.leased_until = datetime.now(UTC), None
    await session.commit()
    return to_public(delivery)

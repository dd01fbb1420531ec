"""Deliveries over HTTP: the record of what notify sent or held back, and replays (notify.delivery_log)."""

from typing import Annotated

from fastapi import Query

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import problem_responses
from closedloop.limits import DB_INT_MAX
from closedloop.pagination import Cursor
from notify import delivery_log
from notify.models import Delivery
from notify.schemas.deliveries import ChannelName, DeliveryDetail, DeliveryPage, DeliveryPublic, DeliveryStatus

router = api_router("deliveries", 400)

# Kept for clients written before the cursor (docs/operations.md lists the deprecated parameters).
DeprecatedOffset = Annotated[int, Query(ge=0, le=DB_INT_MAX, deprecated=True,
                                        description="Deprecated: use `cursor`. Rows to skip; ignored with a "
                                                    "`cursor`.")]


def to_public(delivery: Delivery) -> DeliveryPublic:
    return DeliveryPublic.model_validate(delivery, from_attributes=True)


@router.get("/deliveries", dependencies=needs("tickets:read"),
            response_model=DeliveryPage, summary="List deliveries, newest first",
            description="Every notification notify planned, on every channel. `?status=failed` is the dead-letter "
                        "list (deliveries that gave up after the last attempt or on a permanent error; inspect with "
                        "`GET /v1/deliveries/{id}`, send again with `POST /v1/deliveries/{id}/replay`); "
                        "`?status=suppressed` lists what the no-spam rules held back, each with its `reason`. "
                        "Pass `next_cursor` back as `cursor` for the next page.")
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
    cursor: Cursor = None,
    offset: DeprecatedOffset = 0,
) -> DeliveryPage:
    page = await delivery_log.find_deliveries(
        session, status=status, channel=channel, recipient=recipient, event_type=event_type,
        endpoint_id=endpoint_id, source_event_id=source_event_id, ticket_id=ticket_id, limit=limit, cursor=cursor,
        offset=offset)
    return DeliveryPage(items=[to_public(d) for d in page.rows], total=page.total, next_cursor=page.next_cursor)


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
    return to_public(await delivery_log.replay_delivery(session, delivery_id))

"""Feedback status follows classify and ticketing events read from a real nats-server."""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from nats.js.errors import NotFoundError
from sqlalchemy import func, select

from closedloop.events import (
    Classification,
    CustomerRef,
    Event,
    FeedbackClassifiedV1,
    TicketCreatedV1,
    TicketFeedbackAttachedV1,
    TicketResolvedV1,
    TicketSnapshot,
)
from closedloop.testing import eventually, running_app
from ingest.models import InboxMessage

CLASSIFIED_CONSUMER = ("FEEDBACK", "ingest-feedback-classified")
TICKET_CONSUMER = ("TICKET", "ingest-ticket-events")
GOOD = {"channel": "app", "text": "The app crashes when I pay", "customer": {"id": "c-1", "tier": "vip"}}


def classified(feedback_id: str, category: str = "billing/payment_failure", **extra) -> FeedbackClassifiedV1:
    return FeedbackClassifiedV1(
        feedback_id=UUID(feedback_id), channel="app", text=GOOD["text"], customer=CustomerRef(id="c-1", tier="vip"),
        classification=Classification(
            category=category, category_label=category, top_level=category.split("/")[0], confidence=0.9,
            sentiment="negative", sentiment_score=0.8, taxonomy_version="t1", model_version="m1"),
        **extra,
    )


def ticket_event(kind: type[TicketCreatedV1 | TicketResolvedV1], feedback_id: str, ticket_id: UUID,
                 **extra) -> Event:
    snapshot = TicketSnapshot(ticket_id=ticket_id, feedback_id=UUID(feedback_id), title="Crash", status="new",
                              priority="P1", team="payments", category="billing/payment_failure",
                              sentiment="negative", customer=CustomerRef(id="c-1", tier="vip"))
    if kind is TicketResolvedV1:
        extra.setdefault("resolved_at", datetime.now(UTC))
    return kind(ticket=snapshot, **extra)


async def publish(app, event: Event, msg_id: str | None = None) -> None:
    """Publish as a producing service's outbox relay would (Nats-Msg-Id = event id unless told)."""
    await app.state.runtime.broker.publish(event.nats_subject, event.model_dump_json().encode(), {},
                                           msg_id=msg_id or str(event.event_id))


async def handled(app, durable: str, event: Event) -> bool:
    async with app.state.runtime.sessions() as session:
        return bool(await session.get(InboxMessage, (durable, str(event.event_id))))


async def caught_up(app, stream: str, durable: str) -> bool:
    """The consumer has been handed, and has acknowledged, every message of its stream."""
    try:
        info = await app.state.runtime.broker.js.consumer_info(stream, durable)
    except NotFoundError:
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq > 0


async def submit(client) -> str:
    response = await client.post("/v1/feedback", json=GOOD)
    assert response.status_code == 202, response.text
    return response.json()["id"]


async def show(client, feedback_id: str) -> dict:
    response = await client.get(f"/v1/feedback/{feedback_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def test_status_moves_to_classified_then_ticket_opened_then_resolved(app):
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        feedback_id = await submit(client)
        assert (await show(client, feedback_id))["status"] == "received"

        await publish(app, classified(feedback_id))

        async def is_classified():
            shown = await show(client, feedback_id)
            return shown if shown["status"] == "classified" else None

        shown = await eventually(is_classified, timeout=10)
        assert shown["category"] == "billing/payment_failure"
        assert shown["sentiment"] == "negative"
        assert shown["ticket_id"] is None

        ticket_id = uuid4()
        await publish(app, ticket_event(TicketCreatedV1, feedback_id, ticket_id))

        async def has_ticket():
            shown = await show(client, feedback_id)
            return shown if shown["status"] == "ticket_opened" else None

        shown = await eventually(has_ticket, timeout=10)
        assert shown["ticket_id"] == str(ticket_id)
        assert shown["category"] == "billing/payment_failure"

        await publish(app, ticket_event(TicketResolvedV1, feedback_id, ticket_id))

        async def is_resolved():
            return (await show(client, feedback_id))["status"] == "resolved"

        await eventually(is_resolved, timeout=10)


async def test_older_events_arriving_late_do_not_move_status_backwards(app):
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        feedback_id = await submit(client)
        ticket_id = uuid4()
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)

        # Ticketing was faster than the classification reached us (two different streams).
        await publish(app, ticket_event(TicketResolvedV1, feedback_id, ticket_id))

        async def is_resolved():
            return (await show(client, feedback_id))["status"] == "resolved"

        await eventually(is_resolved, timeout=10)

        late_created = ticket_event(TicketCreatedV1, feedback_id, uuid4(), occurred_at=an_hour_ago)
        late_classified = classified(feedback_id, category="technical/crash", occurred_at=an_hour_ago)
        await publish(app, late_created)
        await publish(app, late_classified)

        await eventually(lambda: handled(app, "ingest-ticket-events", late_created), timeout=10)
        await eventually(lambda: handled(app, "ingest-feedback-classified", late_classified), timeout=10)
        shown = await show(client, feedback_id)
        assert shown["status"] == "resolved"
        assert shown["ticket_id"] == str(ticket_id), "the first ticket stays the feedback's ticket"
        assert shown["category"] == "technical/crash", "a late classification still records the category"


async def test_the_same_event_delivered_twice_is_handled_once(app):
    async with running_app(app) as client:
        broker = app.state.runtime.broker
        await broker.wait_connected(10)
        feedback_id = await submit(client)
        event = ticket_event(TicketCreatedV1, feedback_id, uuid4())

        await publish(app, event)

        async def opened():
            shown = await show(client, feedback_id)
            return shown if shown["status"] == "ticket_opened" else None

        first = await eventually(opened, timeout=10)
        await eventually(lambda: caught_up(app, *TICKET_CONSUMER), timeout=10)

        # Redelivered with another message id, so JetStream's own de-duplication does not catch it.
        await publish(app, event, msg_id=f"{event.event_id}-again")
        assert (await broker.js.stream_info("TICKET")).state.messages == 2
        await eventually(lambda: caught_up(app, *TICKET_CONSUMER), timeout=10)

        after = await show(client, feedback_id)
        assert after["updated_at"] == first["updated_at"], "the handler ran a second time"
        assert after["status"] == "ticket_opened"
        async with app.state.runtime.sessions() as session:
            rows = await session.scalar(select(func.count()).select_from(InboxMessage)
                                        .where(InboxMessage.event_id == str(event.event_id)))
        assert rows == 1


async def test_events_for_unknown_feedback_are_acknowledged_and_ignored(app):
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        feedback_id = await submit(client)
        stranger = classified(str(uuid4()))
        await publish(app, stranger)
        await eventually(lambda: handled(app, "ingest-feedback-classified", stranger), timeout=10)
        await eventually(lambda: caught_up(app, *CLASSIFIED_CONSUMER), timeout=10)
        assert (await show(client, feedback_id))["status"] == "received"


async def test_attached_feedback_shows_the_ticket_and_is_resolved_with_it(app):
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        first = await submit(client)
        again = {**GOOD, "text": "Still crashing when I pay, again"}
        second = (await client.post("/v1/feedback", json=again)).json()["id"]
        ticket_id = uuid4()
        await publish(app, ticket_event(TicketCreatedV1, first, ticket_id))
        opened = ticket_event(TicketCreatedV1, first, ticket_id)
        await publish(app, TicketFeedbackAttachedV1(ticket=opened.ticket, feedback_id=UUID(second),
                                                    reason="same customer and category"))

        async def attached():
            shown = (await client.get(f"/v1/feedback/{second}")).json()
            return shown if shown["status"] == "ticket_opened" else None
        shown = await eventually(attached)
        assert shown["ticket_id"] == str(ticket_id)

        await publish(app, ticket_event(TicketResolvedV1, first, ticket_id))

        async def both_resolved():
            statuses = [(await client.get(f"/v1/feedback/{i}")).json()["status"] for i in (first, second)]
            return statuses == ["resolved", "resolved"]
        await eventually(both_resolved)

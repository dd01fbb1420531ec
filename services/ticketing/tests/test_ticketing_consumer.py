"""Classified feedback read from a real nats-server opens exactly one ticket and announces it."""

import json
from uuid import UUID, uuid4

import nats
import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import func, select

from closedloop.events import Classification, CustomerRef, FeedbackClassifiedV1
from closedloop.testing import eventually, running_app
from ticketing.main import create_app
from ticketing.models import OutboxMessage, Ticket
from ticketing.settings import TicketingSettings

DURABLE = "ticketing-feedback-classified"


@pytest.fixture
def app(database_url, nats_server):
    return create_app(TicketingSettings(database_url=database_url, nats_url=nats_server.url, log_json=False,
                                        outbox_poll_seconds=0.05, consumer_fetch_timeout_seconds=0.1))


def classified(feedback_id: UUID | None = None, *, category="billing/refund", sentiment="negative", score=0.9,
               tier="standard", subject: str | None = "Refund never arrived") -> FeedbackClassifiedV1:
    return FeedbackClassifiedV1(
        feedback_id=feedback_id or uuid4(), channel="email", subject=subject,
        text="I asked for a refund three weeks ago.\nStill nothing.",
        customer=CustomerRef(id="cust-9", tier=tier, email="ana@example.com", name="Ana"),
        classification=Classification(
            category=category, category_label="Refund", top_level=category.split("/")[0], confidence=0.82,
            sentiment=sentiment, sentiment_score=score, taxonomy_version="t1", model_version="m1"),
    )


async def publish(app, event, msg_id: str | None = None) -> None:
    await app.state.runtime.broker.publish(event.nats_subject, event.model_dump_json().encode(), {},
                                           msg_id=msg_id or str(event.event_id))


async def tickets_for(app, feedback_id: UUID) -> list[Ticket]:
    async with app.state.runtime.sessions() as session:
        return list(await session.scalars(select(Ticket).where(Ticket.feedback_id == str(feedback_id))))


async def caught_up(app) -> bool:
    try:
        info = await app.state.runtime.broker.js.consumer_info("FEEDBACK", DURABLE)
    except NotFoundError:
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq > 0


async def outbox_flushed(app) -> bool:
    async with app.state.runtime.sessions() as session:
        return await session.scalar(select(func.count()).select_from(OutboxMessage)
                                    .where(OutboxMessage.published_at.is_(None))) == 0


async def test_classified_feedback_opens_one_ticket_and_announces_it(app, nats_server):
    nc = await nats.connect(nats_server.url)
    try:
        async with running_app(app) as client:
            await app.state.runtime.broker.wait_connected(10)
            created_events = await nc.jetstream().subscribe("ticket.created.v1")
            event = classified()

            await publish(app, event)
            await publish(app, event, msg_id=f"{event.event_id}-redelivered")

            msg = await created_events.next_msg(timeout=10)
            announced = json.loads(msg.data)
            ticket = announced["ticket"]
            assert ticket["feedback_id"] == str(event.feedback_id)
            assert (ticket["team"], ticket["priority"]) == ("payments", "P1")  # P2, raised for strong negativity
            assert ticket["status"] == "new"
            assert ticket["category"] == "billing/refund"
            assert ticket["customer"]["id"] == "cust-9"
            assert msg.headers["Nats-Msg-Id"] == announced["event_id"]

            await eventually(lambda: caught_up(app), timeout=10)
            await eventually(lambda: outbox_flushed(app), timeout=10)
            assert [t.id for t in await tickets_for(app, event.feedback_id)] == [ticket["ticket_id"]]
            assert (await app.state.runtime.broker.js.stream_info("FEEDBACK")).state.messages == 2
            assert (await app.state.runtime.broker.js.stream_info("TICKET")).state.messages == 1

            shown = (await client.get(f"/v1/tickets/{ticket['ticket_id']}")).json()
            assert shown["title"] == "Refund never arrived"
            assert shown["description"] == event.text
            assert shown["priority"] == "P1"
            assert "strongly negative" in shown["routing_reason"]
    finally:
        await nc.close()


async def test_a_second_classification_of_the_same_feedback_does_not_open_another_ticket(app):
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        feedback_id = uuid4()
        first = classified(feedback_id, category="technical/outage", sentiment="neutral", score=0.5)
        # A different event (e.g. classify re-ran after a crash) about the same feedback item.
        second = classified(feedback_id, category="billing/refund")

        await publish(app, first)
        await eventually(lambda: tickets_for(app, feedback_id), timeout=10)
        await publish(app, second)
        await eventually(lambda: caught_up(app), timeout=10)

        [ticket] = await tickets_for(app, feedback_id)
        assert (ticket.team, ticket.priority, ticket.category) == ("sre", "P0", "technical/outage")
        page = (await client.get("/v1/tickets", params={"feedback_id": str(feedback_id)})).json()
        assert page["total"] == 1
        async with app.state.runtime.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


async def test_vip_positive_and_fallback_routing_end_to_end(app):
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        events = {
            "vip": classified(category="account/login", sentiment="neutral", score=0.4, tier="vip", subject=None),
            "positive": classified(category="billing/payment_failure", sentiment="positive", score=0.9),
            "fallback": classified(category="weather/rain", sentiment="neutral", score=0.3),
        }
        for event in events.values():
            await publish(app, event)
        await eventually(lambda: caught_up(app), timeout=10)

        routed = {}
        for name, event in events.items():
            [ticket] = await tickets_for(app, event.feedback_id)
            routed[name] = (ticket.team, ticket.priority)
        assert routed == {"vip": ("accounts", "P1"), "positive": ("payments", "P3"),
                          "fallback": ("general-support", "P2")}
        vip = (await client.get("/v1/tickets", params={"feedback_id": str(events["vip"].feedback_id)})).json()
        assert vip["items"][0]["title"] == "I asked for a refund three weeks ago."

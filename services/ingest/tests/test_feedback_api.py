"""The feedback API against a real database and a real nats-server."""

import json

import nats
import pytest
from sqlalchemy import func, select

from closedloop.testing import eventually, running_app
from ingest.models import Feedback, OutboxMessage

GOOD = {"channel": "app", "text": "  The app   crashes\n\n\n\nwhen I pay  ", "customer": {"id": "c-1", "tier": "VIP"}}


@pytest.fixture
def app(make_app):
    return make_app(fast=False)  # the default polling intervals


async def count(app, model) -> int:
    async with app.state.runtime.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_accepts_cleans_stores_and_publishes(app, nats_server):
    nc = await nats.connect(nats_server.url)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        sub = await nc.jetstream().subscribe("feedback.received.v1", durable="t")
        response = await client.post("/v1/feedback", json=GOOD)
        assert response.status_code == 202, response.text
        feedback_id = response.json()["id"]

        shown = (await client.get(f"/v1/feedback/{feedback_id}")).json()
        assert shown["text"] == "The app crashes\n\nwhen I pay"
        assert shown["status"] == "received"
        assert shown["customer"]["tier"] == "vip"

        msg = await sub.next_msg(timeout=10)
        event = json.loads(msg.data)
        assert event["feedback_id"] == feedback_id
        assert event["text"] == "The app crashes\n\nwhen I pay"
        assert msg.headers["Nats-Msg-Id"] == event["event_id"]

        assert await count(app, Feedback) == 1

        async def outbox_published() -> bool:
            async with app.state.runtime.sessions() as session:
                row = await session.scalar(select(OutboxMessage))
                return row is not None and row.published_at is not None and row.event_id == event["event_id"]

        await eventually(outbox_published, timeout=10)
        assert await count(app, OutboxMessage) == 1
    await nc.close()

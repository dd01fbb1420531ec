"""Region and product: optional first-class fields, stored, shown and carried in feedback.received.v1."""

import json

import nats
import pytest
from sqlalchemy import func, select

from closedloop.testing import running_app
from ingest.models import Feedback

BODY = {"channel": "app", "text": "The export button does nothing", "customer": {"id": "c-7"}}


@pytest.fixture
def app(make_app):
    return make_app(fast=False)  # the default polling intervals


async def test_region_and_product_are_stored_shown_and_announced(app, nats_server):
    nc = await nats.connect(nats_server.url)
    try:
        async with running_app(app) as client:
            await app.state.runtime.broker.wait_connected(10)
            sub = await nc.jetstream().subscribe("feedback.received.v1", durable="t")
            response = await client.post("/v1/feedback", json={**BODY, "region": "EMEA", "product": "Mobile-App"})
            assert response.status_code == 202, response.text
            shown = (await client.get(f"/v1/feedback/{response.json()['id']}")).json()
            assert (shown["region"], shown["product"]) == ("emea", "mobile-app")
            event = json.loads((await sub.next_msg(timeout=10)).data)
            assert (event["region"], event["product"]) == ("emea", "mobile-app")

            without = await client.post("/v1/feedback", json={**BODY, "text": "Another one, no dimensions"})
            assert without.status_code == 202
            event = json.loads((await sub.next_msg(timeout=10)).data)
            assert event["region"] is None and event["product"] is None
    finally:
        await nc.close()


async def test_a_bad_region_or_product_is_named_and_nothing_is_stored(app):
    async with running_app(app) as client:
        for field, value in (("region", "north america"), ("product", ""), ("region", "x" * 51)):
            response = await client.post("/v1/feedback", json={**BODY, field: value})
            assert response.status_code == 422, (field, value)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert [e["field"] for e in response.json()["errors"]] == [f"body.{field}"]
        async with app.state.runtime.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Feedback)) == 0

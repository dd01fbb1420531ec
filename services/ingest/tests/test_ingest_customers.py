"""Customer profiles travel with feedback events; invitations at most once per cool-down. Real DB and NATS."""

import asyncio
import json
from datetime import datetime, timedelta

import nats
import pytest
from sqlalchemy import func, select

from closedloop.testing import running_app
from ingest.main import create_app
from ingest.models import Customer, Invitation
from ingest.settings import IngestSettings

PROFILE = {"email": "Ana@Example.com", "name": "Ana Lima", "tier": "VIP", "value": 125000.0, "locale": "pt-BR"}


async def count(app, model, *where) -> int:
    async with app.state.runtime.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_put_creates_then_replaces_and_get_shows_the_profile(app):
    async with running_app(app) as client:
        created = await client.put("/v1/customers/cust-1", json=PROFILE)
        assert created.status_code == 201, created.text
        assert created.headers["Location"] == "/v1/customers/cust-1"
        assert created.json() | {"created_at": None, "updated_at": None} == {
            "id": "cust-1", "email": "ana@example.com", "name": "Ana Lima", "tier": "vip", "value": 125000.0,
            "locale": "pt-BR", "created_at": None, "updated_at": None}
        replaced = await client.put("/v1/customers/cust-1", json={"tier": "standard"})
        assert replaced.status_code == 200
        shown = (await client.get("/v1/customers/cust-1")).json()
        assert (shown["tier"], shown["email"], shown["locale"]) == ("standard", None, None)
        assert shown["created_at"] == created.json()["created_at"]
        assert await count(app, Customer) == 1

        missing = await client.get("/v1/customers/nobody")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("body", "field"), [
    ({"email": "not-an-email"}, "body.email"),
    ({"tier": " "}, "body.tier"),
    ({"value": -1}, "body.value"),
    ({"locale": "not a locale"}, "body.locale"),
    ({"vip": True}, "body.vip"),
])
async def test_bad_profile_is_a_problem_naming_the_field(app, body, field):
    async with running_app(app) as client:
        response = await client.put("/v1/customers/cust-1", json=body)
        assert response.status_code == 422, response.text
        assert field in [error["field"] for error in response.json()["errors"]]
        assert await count(app, Customer) == 0


async def test_the_profile_travels_with_each_feedback_event(app, nats_server):
    nc = await nats.connect(nats_server.url)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        sub = await nc.jetstream().subscribe("feedback.received.v1", durable="t")
        await client.put("/v1/customers/cust-1", json=PROFILE)

        plain = await client.post("/v1/feedback", json={"channel": "app", "text": "The app is slow",
                                                         "customer": {"id": "cust-1"}})
        assert plain.status_code == 202, plain.text
        event = json.loads((await sub.next_msg(timeout=10)).data)
        assert event["customer"] == {"id": "cust-1", "tier": "vip", "email": "ana@example.com", "name": "Ana Lima",
                                     "locale": "pt-BR", "value": 125000.0}

        # What the request says wins over the profile.
        override = await client.post("/v1/feedback", json={
            "channel": "app", "text": "Another problem", "customer": {"id": "cust-1", "tier": "standard",
                                                                      "email": "work@example.com"}})
        assert override.status_code == 202
        event = json.loads((await sub.next_msg(timeout=10)).data)
        assert (event["customer"]["tier"], event["customer"]["email"], event["customer"]["locale"]) == \
            ("standard", "work@example.com", "pt-BR")

        # An e-mail from the profile's address is that customer's feedback.
        raw = (b"From: ANA@example.com\r\nSubject: Slow\r\nMessage-ID: <x-1@example.com>\r\n"
               b"Content-Type: text/plain\r\n\r\nEverything is slow today.\r\n")
        mail = await client.post("/v1/channels/email", content=raw, headers={"Content-Type": "message/rfc822"})
        assert mail.status_code == 202, mail.text
        event = json.loads((await sub.next_msg(timeout=10)).data)
        assert (event["customer"]["id"], event["customer"]["tier"]) == ("cust-1", "vip")
        assert (await client.get(mail.json()["status_url"])).json()["customer"]["value"] == 125000.0
    await nc.close()


async def test_a_customer_is_invited_at_most_once_per_cool_down(app):
    async with running_app(app) as client:
        first = await client.post("/v1/invitations", json={"customer_id": "cust-1", "campaign": "csat"})
        assert first.status_code == 200, first.text
        assert first.json()["allowed"] is True and first.json()["invitation_id"]
        second = (await client.post("/v1/invitations", json={"customer_id": "cust-1", "channel": "app"})).json()
        assert second["allowed"] is False
        assert "30 days" in second["reason"]
        invited = datetime.fromisoformat(first.json()["next_allowed_at"]) - timedelta(days=30)
        assert datetime.fromisoformat(second["next_allowed_at"]) == invited + timedelta(days=30)
        assert datetime.fromisoformat(second["last_invited_at"]) == invited
        other = (await client.post("/v1/invitations", json={"customer_id": "cust-2", "dry_run": True})).json()
        assert other["allowed"] is True and other["invitation_id"] is None
        assert await count(app, Invitation) == 1

        bad = await client.post("/v1/invitations", json={"customer_id": "", "channel": "fax"})
        assert bad.status_code == 422
        assert {"body.customer_id", "body.channel"} <= {error["field"] for error in bad.json()["errors"]}


async def test_concurrent_invitations_for_one_customer_allow_exactly_one(app):
    async with running_app(app) as client:
        answers = await asyncio.gather(*(client.post("/v1/invitations", json={"customer_id": "cust-9"})
                                         for _ in range(6)))
        assert [a.status_code for a in answers] == [200] * 6
        assert sorted(a.json()["allowed"] for a in answers) == [False] * 5 + [True]
        assert await count(app, Invitation) == 1


async def test_after_the_cool_down_a_customer_may_be_invited_again(database_url, nats_server):
    app = create_app(IngestSettings(database_url=database_url, nats_url=nats_server.url, log_json=False,
                                    invitation_cooldown_days=0))
    async with running_app(app) as client:
        for _ in range(2):
            assert (await client.post("/v1/invitations", json={"customer_id": "cust-1"})).json()["allowed"] is True
        assert await count(app, Invitation) == 2

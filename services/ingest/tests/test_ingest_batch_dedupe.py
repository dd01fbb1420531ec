"""PII masked downstream, same-text duplicates and the batch API, against a real database and nats-server."""

import asyncio
import json

import nats
import pytest
from sqlalchemy import func, select

from closedloop.testing import running_app
from ingest.main import create_app
from ingest.models import Feedback, FeedbackDuplicate, IdempotencyKey, OutboxMessage
from ingest.settings import IngestSettings

REPLY = {
    "channel": "email", "customer": {"id": "c-9", "email": "ana@example.com"}, "subject": "Call me: +351 912 345 678",
    "text": "The invoice is wrong, call me on +44 20 7946 0958.\n\nCheers,\nAna\n\n"
            "On Mon, 2 Mar 2026, Support <help@closedloop.dev> wrote:\n> Your card 4111 1111 1111 1111 is fine.",
}


@pytest.fixture
def app(make_app):
    return make_app(max_text_chars=200)


async def count(app, model, *where) -> int:
    async with app.state.runtime.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_reply_thread_and_phone_never_travel_downstream_but_the_original_is_kept(app, nats_server):
    nc = await nats.connect(nats_server.url)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        sub = await nc.jetstream().subscribe("feedback.received.v1", durable="t")
        response = await client.post("/v1/feedback", json=REPLY)
        assert response.status_code == 202, response.text
        event = json.loads((await sub.next_msg(timeout=10)).data)
        assert event["text"] == "The invoice is wrong, call me on [phone]."
        assert event["subject"] == "Call me: [phone]"
        assert event["pii_masked"] == ["phone"]
        assert "4111" not in json.dumps(event) and "7946" not in json.dumps(event)

        shown = (await client.get(response.headers["Location"])).json()
        assert shown["text"] == event["text"]
        assert shown["pii_masked"] == ["phone"]
        async with app.state.runtime.sessions() as session:
            stored = await session.get(Feedback, response.json()["id"])
        assert stored.original_text == "The invoice is wrong, call me on +44 20 7946 0958."
        assert stored.original_subject == REPLY["subject"]
    await nc.close()


async def test_same_customer_same_text_within_the_window_is_a_recorded_duplicate(app):
    item = {"channel": "app", "text": "Checkout fails with error 500", "customer": {"id": "c-1"}}
    async with running_app(app) as client:
        first = await client.post("/v1/feedback", json=item)
        # Another channel, other spacing and case: still the same message from the same customer.
        again = await client.post("/v1/feedback", json={**item, "channel": "chat",
                                                         "text": "checkout   FAILS with error 500!"})
        other_customer = await client.post("/v1/feedback", json={**item, "customer": {"id": "c-2"}})
        assert first.status_code == 202
        assert again.status_code == 200, again.text
        assert (again.json()["id"], again.json()["duplicate_reason"]) == (first.json()["id"], "same_text")
        assert other_customer.status_code == 202
        assert (await client.get(f"/v1/feedback/{first.json()['id']}")).json()["duplicate_count"] == 1
        assert await count(app, Feedback) == 2
        assert await count(app, OutboxMessage) == 2
        assert await count(app, FeedbackDuplicate, FeedbackDuplicate.feedback_id == first.json()["id"],
                           FeedbackDuplicate.channel == "chat") == 1


async def test_same_text_after_the_window_is_a_new_item(database_url, nats_server):
    app = create_app(IngestSettings(database_url=database_url, nats_url=nats_server.url, log_json=False,
                                    duplicate_window_seconds=0))
    item = {"channel": "app", "text": "Checkout fails with error 500", "customer": {"id": "c-1"}}
    async with running_app(app) as client:
        first = await client.post("/v1/feedback", json=item)
        again = await client.post("/v1/feedback", json=item)
        assert (first.status_code, again.status_code) == (202, 202)
        assert first.json()["id"] != again.json()["id"]


async def test_batch_answers_per_item_and_stores_each_item_on_its_own(app):
    items = [
        {"channel": "app", "text": "Login is slow", "customer": {"id": "b-1"}, "idempotency_key": "row-1"},
        {"channel": "app", "text": "", "customer": {"id": "b-2"}},
        {"channel": "web", "text": "asdfghjkl", "customer": {"id": "b-3"}},
        {"channel": "app", "text": "Login is slow", "customer": {"id": "b-1"}},
        {"channel": "fax", "text": "Hello there", "customer": {}},
        {"channel": "app", "text": "x y " * 200, "customer": {"id": "b-4"}},
        {"channel": "survey", "text": "Great support", "customer": {"id": "b-5"}, "nps": 10, "external_id": "r-1"},
        {"channel": "survey", "text": "Great support!", "customer": {"id": "b-6"}, "external_id": "r-1"},
        "not an object",
    ]
    async with running_app(app) as client:
        response = await client.post("/v1/feedback/batch", json={"items": items})
        assert response.status_code == 200, response.text
        result = response.json()
        assert [r["status"] for r in result["results"]] == [
            "accepted", "rejected", "rejected", "duplicate", "rejected", "rejected", "accepted", "duplicate",
            "rejected"]
        assert (result["accepted"], result["duplicates"], result["rejected"]) == (2, 2, 5)
        by_index = result["results"]
        assert by_index[3]["duplicate_reason"] == "same_text" and by_index[3]["id"] == by_index[0]["id"]
        assert by_index[7]["duplicate_reason"] == "source_id" and by_index[7]["id"] == by_index[6]["id"]
        fields = {r["index"]: [e["field"] for e in r["problem"]["errors"]] for r in by_index if r["problem"]}
        assert fields[1] == ["body.items.1.text"]
        assert fields[2] == ["body.items.2.text"]
        assert "keyboard" in by_index[2]["problem"]["errors"][0]["message"]
        assert set(fields[4]) == {"body.items.4.channel", "body.items.4.customer.id"}
        assert fields[5] == ["body.items.5.text"]
        assert by_index[5]["problem"]["status"] == 422
        assert by_index[1]["problem"]["instance"] == "/v1/feedback/batch"
        assert fields[8] == ["body.items.8"]

        shown = (await client.get(f"/v1/feedback/{by_index[6]['id']}")).json()
        assert (shown["nps"], shown["rating"]) == (10, 10.0)
        assert await count(app, Feedback) == 2
        assert await count(app, OutboxMessage) == 2
        assert await count(app, IdempotencyKey) == 1

        # Sent again: the keyed row is answered from its key, nothing new is stored.
        again = (await client.post("/v1/feedback/batch", json={"items": items[:1]})).json()
        assert again["results"][0] | {"index": 0} == {"index": 0, "status": "duplicate", "id": by_index[0]["id"],
                                                        "duplicate_reason": "idempotency_key", "problem": None}
        reused = (await client.post("/v1/feedback/batch", json={"items": [
            {**items[0], "text": "Something else entirely"}]})).json()
        assert reused["results"][0]["problem"]["status"] == 409
        assert reused["results"][0]["problem"]["errors"][0]["field"] == "body.items.0.idempotency_key"
        assert await count(app, Feedback) == 2


@pytest.mark.parametrize(("payload", "field"), [
    ({"items": []}, "body.items"),
    ({"items": [{}] * 1001}, "body.items"),
    ({}, "body.items"),
])
async def test_batch_itself_is_validated(app, payload, field):
    async with running_app(app) as client:
        response = await client.post("/v1/feedback/batch", json=payload)
        assert response.status_code == 422, response.text
        assert field in [e["field"] for e in response.json()["errors"]]
        assert await count(app, Feedback) == 0


async def test_batch_items_take_the_customer_profile(app):
    async with running_app(app) as client:
        await client.put("/v1/customers/p-1", json={"tier": "vip", "locale": "de-DE", "email": "p1@example.com"})
        result = (await client.post("/v1/feedback/batch", json={"items": [
            {"channel": "app", "text": "Invoices are late", "customer": {"id": "p-1"}},
            {"channel": "app", "text": "Invoices are late", "customer": {"id": "p-2"}},
        ]})).json()
        assert [r["status"] for r in result["results"]] == ["accepted", "accepted"]
        first, second = [(await client.get(f"/v1/feedback/{r['id']}")).json()["customer"] for r in result["results"]]
        assert (first["tier"], first["locale"], first["email"]) == ("vip", "de-DE", "p1@example.com")
        assert (second["tier"], second["locale"]) == ("standard", None)


async def test_concurrent_same_text_from_one_customer_stores_one_item(app):
    item = {"channel": "chat", "text": "The refund never came", "customer": {"id": "race-1"}}
    async with running_app(app) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/feedback", json=item) for _ in range(5)),
            client.post("/v1/feedback/batch", json={"items": [item, item]}),
        )
        singles, batch = responses[:-1], responses[-1].json()
        statuses = sorted(r.status_code for r in singles) + [r["status"] for r in batch["results"]]
        assert statuses.count(202) + statuses.count("accepted") == 1, statuses
        assert len({r.json()["id"] for r in singles} | {r["id"] for r in batch["results"]}) == 1
        assert await count(app, Feedback) == 1
        assert await count(app, FeedbackDuplicate) == 6

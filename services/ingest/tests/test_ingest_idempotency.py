"""Re-submissions: Idempotency-Key and (channel, external_id) never store feedback twice."""

import asyncio

from sqlalchemy import func, select

from closedloop.testing import running_app
from ingest.models import Feedback, IdempotencyKey, OutboxMessage

GOOD = {"channel": "email", "text": "I was charged twice this month.", "customer": {"id": "c-7", "tier": "vip"}}


async def count(app, model) -> int:
    async with app.state.runtime.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_same_key_and_body_answers_the_first_submission(app):
    async with running_app(app) as client:
        first = await client.post("/v1/feedback", json=GOOD, headers={"Idempotency-Key": "k-1"})
        again = await client.post("/v1/feedback", json=GOOD, headers={"Idempotency-Key": "k-1"})

        assert first.status_code == 202, first.text
        assert first.json()["duplicate"] is False
        assert again.status_code == 200, again.text
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["duplicate"] is True
        assert again.headers["Location"] == f"/v1/feedback/{first.json()['id']}"
        assert (await count(app, Feedback), await count(app, OutboxMessage), await count(app, IdempotencyKey)) \
            == (1, 1, 1)


async def test_same_key_with_another_body_is_a_conflict(app):
    async with running_app(app) as client:
        first = await client.post("/v1/feedback", json=GOOD, headers={"Idempotency-Key": "k-2"})
        other = {**GOOD, "text": "Something else entirely."}
        conflict = await client.post("/v1/feedback", json=other, headers={"Idempotency-Key": "k-2"})

        assert first.status_code == 202
        assert conflict.status_code == 409, conflict.text
        assert conflict.headers["content-type"] == "application/problem+json"
        problem = conflict.json()
        assert problem["type"].endswith("/idempotency-key-reused")
        assert [error["field"] for error in problem["errors"]] == ["header.Idempotency-Key"]
        assert await count(app, Feedback) == 1
        assert await count(app, OutboxMessage) == 1
        shown = (await client.get(f"/v1/feedback/{first.json()['id']}")).json()
        assert shown["text"] == GOOD["text"]


async def test_different_keys_store_separate_feedback(app):
    async with running_app(app) as client:
        # Another text: the same text from the same customer would be a duplicate whatever the key.
        one = await client.post("/v1/feedback", json=GOOD, headers={"Idempotency-Key": "k-a"})
        two = await client.post("/v1/feedback", json={**GOOD, "text": "And the refund never came."},
                                headers={"Idempotency-Key": "k-b"})
        assert (one.status_code, two.status_code) == (202, 202)
        assert one.json()["id"] != two.json()["id"]
        assert await count(app, Feedback) == 2


async def test_same_external_id_on_the_same_channel_is_a_duplicate(app):
    async with running_app(app) as client:
        first = await client.post("/v1/feedback", json={**GOOD, "external_id": "msg-881"})
        # No Idempotency-Key, and even a different text: the source id alone identifies it.
        again = await client.post("/v1/feedback", json={**GOOD, "external_id": "msg-881", "text": "edited"})
        elsewhere = await client.post("/v1/feedback", json={**GOOD, "external_id": "msg-881", "channel": "chat",
                                                             "text": "Chat: the refund never came."})

        assert first.status_code == 202
        assert again.status_code == 200, again.text
        ignore = {"duplicate": None, "duplicate_reason": None}
        assert again.json() | ignore == first.json() | ignore
        assert again.json()["duplicate"] is True
        assert again.json()["duplicate_reason"] == "source_id"
        assert elsewhere.status_code == 202, "the same external id on another channel is another item"
        assert elsewhere.json()["id"] != first.json()["id"]
        assert await count(app, Feedback) == 2
        assert await count(app, OutboxMessage) == 2


async def test_concurrent_submissions_with_one_key_store_one_item(app):
    async with running_app(app) as client:
        responses = await asyncio.gather(*(
            client.post("/v1/feedback", json=GOOD, headers={"Idempotency-Key": "k-race"}) for _ in range(6)
        ))
        assert sorted(r.status_code for r in responses) == [200] * 5 + [202], [r.text for r in responses]
        assert len({r.json()["id"] for r in responses}) == 1
        assert await count(app, Feedback) == 1
        assert await count(app, OutboxMessage) == 1

"""The classify service over HTTP and NATS, in-process with a real nats-server and a real database:
taxonomy versions, bulk examples, a background training run, activation and rollback, thresholds and
modes; feedback in → classification out with the new fields; corrections as training data; spike alerts."""

from __future__ import annotations

import asyncio
import csv
import json
from collections import defaultdict
from pathlib import Path
from uuid import uuid4

import nats

from classify.main import create_app
from classify.settings import ClassifySettings
from closedloop.events import CustomerRef, FeedbackReceivedV1, TicketRecategorizedV1, utcnow
from closedloop.testing import eventually, running_app

SAMPLE = Path(__file__).parent / "data" / "banking77_sample.csv"
LABELS = ["card_arrival", "card_not_working", "pin_blocked", "terminate_account", "cancel_transfer",
          "atm_support", "automatic_top_up", "getting_virtual_card"]
PROBLEM = "application/problem+json"


def sample_examples(per_label: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(training examples, held-out examples) for LABELS, as the API takes them."""
    by_label: dict[str, list[str]] = defaultdict(list)
    with SAMPLE.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["category"] in LABELS:
                by_label[row["category"]].append(row["text"])
    train, held = [], []
    for label, texts in by_label.items():
        train += [{"text": t, "label": f"banking/{label}"} for t in texts[:per_label]]
        held += [{"text": t, "label": f"banking/{label}"} for t in texts[per_label:]]
    return train, held


def settings_for(database_url: str, nats_url: str, **overrides: object) -> ClassifySettings:
    return ClassifySettings(database_url=database_url, nats_url=nats_url, log_json=False,
                            outbox_poll_seconds=0.05, consumer_fetch_timeout_seconds=0.1, **overrides)


async def wait_for_model(client, model_id: str) -> dict:
    async def ready() -> dict | None:
        body = (await client.get(f"/v1/models/{model_id}")).json()
        assert body["status"] != "failed", body["error"]
        return body if body["status"] == "ready" else None

    return await eventually(ready, timeout=60, interval=0.2)


async def test_taxonomy_training_activation_and_rollback(database_url, nats_server):
    app = create_app(settings_for(database_url, nats_server.url, sentiment_mode="suggest"))
    async with running_app(app) as client:
        # Settings give the defaults of the run-time config.
        assert (await client.get("/v1/config")).json()["sentiment_mode"] == "suggest"
        angry = (await client.post("/v1/classify", json={"text": "Awful, I hate this app"})).json()
        assert angry["sentiment"] == "neutral" and angry["suggestions"]["sentiment"]["value"] == "negative"
        file_version = (await client.get("/v1/taxonomy")).json()["version"]
        before = (await client.post("/v1/classify", json={"text": "Where is my new card?"})).json()
        assert before["model_version"].startswith("zero-shot") and not before["calibrated"]

        # A new taxonomy version over the API; the file's version stays retrievable.
        nodes = [{"path": f"banking/{label}", "description": label.replace("_", " ")} for label in LABELS]
        put = await client.put("/v1/taxonomy", json={"nodes": nodes})
        assert put.status_code == 200 and put.json()["created"] is True
        version = put.json()["version"]
        assert version != file_version
        assert (await client.put("/v1/taxonomy", json={"nodes": nodes})).json()["created"] is False
        versions = {v["version"]: v for v in (await client.get("/v1/taxonomy/versions")).json()}
        assert versions[version]["active"] and not versions[file_version]["active"]
        old = await client.get(f"/v1/taxonomy/versions/{file_version}")
        assert old.status_code == 200 and any(n["key"] == "billing/refund" for n in old.json()["nodes"])
        missing = await client.get("/v1/taxonomy/versions/nope")
        assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
        added = await client.post("/v1/taxonomy/nodes", json={"path": "banking/fraud", "examples": ["Not my payment"]})
        assert added.status_code == 200 and added.json()["created"]
        assert any(n["key"] == "banking/fraud" and n["leaf"] for n in added.json()["nodes"])
        removed = await client.delete("/v1/taxonomy/nodes/banking/fraud")
        assert removed.status_code == 200 and removed.json()["version"] == version  # the same content again
        assert (await client.delete("/v1/taxonomy/nodes/banking/nope")).status_code == 404
        bad = await client.put("/v1/taxonomy", json={"nodes": [{"path": "a//b"}]})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.nodes"

        # Nothing to train on yet.
        assert (await client.post("/v1/models", json={})).status_code == 409

        # Unknown labels: 422 naming each, nothing stored.
        train, held = sample_examples(per_label=18)
        rejected = await client.post("/v1/training-examples", json={
            "examples": [*train[:3], {"text": "hello", "label": "billing/refund"}]})
        assert rejected.status_code == 422 and rejected.headers["content-type"] == PROBLEM
        assert [e["field"] for e in rejected.json()["errors"]] == ["body.examples[3].label"]
        assert (await client.get("/v1/training-examples")).json()["total"] == 0

        posted = await client.post("/v1/training-examples", json={"examples": train})
        assert posted.status_code == 201 and posted.json() == {"accepted": len(train), "duplicates": 0,
                                                               "total": len(train)}
        assert (await client.post("/v1/training-examples", json={"examples": train[:10]})).json()["duplicates"] == 10
        # Paged by cursor, oldest first; the deprecated `after` id still pages too.
        first = (await client.get("/v1/training-examples", params={"limit": 5})).json()
        following = (await client.get("/v1/training-examples", params={"limit": 5,
                                                                        "cursor": first["next_cursor"]})).json()
        assert first["total"] == following["total"] == len(train)
        assert [e["id"] for e in first["items"]] == sorted(e["id"] for e in first["items"])
        assert following["items"][0]["id"] > first["items"][-1]["id"]
        after = (await client.get("/v1/training-examples", params={"limit": 5,
                                                                    "after": first["items"][-1]["id"]})).json()
        assert after["items"] == following["items"] and after["total"] == len(train)

        queued = await client.post("/v1/models", json={})
        assert queued.status_code == 202 and queued.json()["status"] == "queued"
        model = await wait_for_model(client, queued.json()["id"])
        metrics = model["metrics"]
        assert model["progress"] == 1.0 and model["n_examples"] == len(train)
        assert metrics["accuracy"] >= 0.7 and metrics["macro_f1"] > 0.6
        assert set(metrics["per_class"]) == {f"banking/{label}" for label in LABELS}
        assert all("precision" in c and "coverage" in c for c in metrics["per_class"].values())

        # Ready is not active: zero-shot still answers until activation.
        assert (await client.get("/v1/models/active")).json()["mode"] == "zero-shot"
        activated = await client.post(f"/v1/models/{model['id']}/activate")
        assert activated.status_code == 200 and activated.json()["active"]
        batch = await client.post("/v1/classify", json={"items": [{"text": e["text"]} for e in held]})
        results = batch.json()["results"]
        assert len(results) == len(held)
        assert all(r["calibrated"] and r["model_version"] == "trained-v1" for r in results)
        correct = sum(r["label"] == e["label"] or (r["needs_triage"] and r["suggestions"]["category"]["value"]
                                                  == e["label"]) for r, e in zip(results, held, strict=True))
        assert correct / len(held) >= 0.8, correct / len(held)

        # A second model, activated at once; rollback returns to the first, and to zero-shot after deactivate.
        second = await client.post("/v1/models", json={"activate": True, "params": {"knn_k": 5}})
        await wait_for_model(client, second.json()["id"])

        async def second_active() -> bool:
            return (await client.get("/v1/models/active")).json()["model_version"] == "trained-v2"

        await eventually(second_active, timeout=10)
        models = (await client.get("/v1/models", params={"limit": 1})).json()
        assert models["total"] == 2 and [m["version"] for m in models["items"]] == [2]
        older = (await client.get("/v1/models", params={"cursor": models["next_cursor"]})).json()
        assert [m["version"] for m in older["items"]] == [1] and older["next_cursor"] is None
        back = await client.post("/v1/models/rollback")
        assert back.json()["model_version"] == "trained-v1"
        assert (await client.post("/v1/models/deactivate")).json()["mode"] == "zero-shot"
        assert (await client.post("/v1/models/nope/activate")).status_code == 404
        bad_params = await client.post("/v1/models", json={"params": {"knn_k": 0}})
        assert bad_params.status_code == 422 and bad_params.json()["errors"][0]["field"].startswith("body.params")

        # Thresholds and modes over the API.
        await client.post(f"/v1/models/{model['id']}/activate")
        config = await client.put("/v1/config", json={"triage_threshold": 1.0, "language_mode": "off"})
        assert config.json()["triage_threshold"] == 1.0
        unsure = (await client.post("/v1/classify", json={"text": held[0]["text"]})).json()
        assert unsure["label"] == "needs_triage" and unsure["needs_triage"] and unsure["language"] is None
        assert unsure["suggestions"]["category"]["value"].startswith("banking/")
        wrong_mode = await client.put("/v1/config", json={"category_mode": "sometimes"})
        assert wrong_mode.status_code == 422 and wrong_mode.json()["errors"][0]["field"] == "body.category_mode"

        for body in ({}, {"text": ""}, {"text": "a", "items": [{"text": "b"}]}, {"items": []}, {"texts": ["old"]}):
            response = await client.post("/v1/classify", json=body)
            assert response.status_code == 422 and response.headers["content-type"] == PROBLEM, body
            assert response.json()["errors"][0]["field"].startswith("body"), response.json()


async def published(nc, subject: str) -> list[dict]:
    received: list[dict] = []

    async def collect(msg) -> None:  # type: ignore[no-untyped-def]
        received.append(json.loads(msg.data))

    await nc.subscribe(subject, cb=collect)
    return received


async def test_feedback_events_corrections_and_alerts(database_url, nats_server):
    app = create_app(settings_for(database_url, nats_server.url, alert_check_seconds=0.3, alert_min_volume=5,
                                  duplicate_similarity=0.8, retrain_after_corrections=1))
    nc = await nats.connect(nats_server.url)
    try:
        async with running_app(app) as client:
            await app.state.runtime.broker.wait_connected(10)
            classified = await published(nc, "feedback.classified.v1")
            alerts = await published(nc, "alert.raised.v1")
            texts = [
                "Someone hacked my account and moved money out, I will call my lawyer!",
                "My payment was declined three times, this is ridiculous",
                "Your app crashes every time I open my invoices",
                "The app crashes whenever I open my invoices, fix it",
                "Meine Karte wurde zweimal belastet, das ist eine Frechheit",
                "Terrible service, nobody answers my emails",
            ]
            events = [FeedbackReceivedV1(feedback_id=uuid4(), channel="app", text=text, received_at=utcnow(),
                                         customer=CustomerRef(id=f"c{i}")) for i, text in enumerate(texts)]
            for event in events[:3]:
                await app.state.runtime.broker.publish(event.nats_subject, event.model_dump_json().encode(), {},
                                                       msg_id=str(event.event_id))
            await eventually(lambda: _length_at_least(classified, 3), timeout=30)
            for event in events[3:]:
                await app.state.runtime.broker.publish(event.nats_subject, event.model_dump_json().encode(), {},
                                                       msg_id=str(event.event_id))
            await eventually(lambda: _length_at_least(classified, 6), timeout=30)
            by_id = {m["feedback_id"]: m for m in classified}
            hacked = by_id[str(events[0].feedback_id)]["classification"]
            assert hacked["severity"] == "critical" and {"security", "legal_threat"} <= set(hacked["signals"])
            assert hacked["language"] == "en" and hacked["language_confidence"] > 0.5
            assert "payment_failure" in by_id[str(events[1].feedback_id)]["classification"]["signals"]
            assert by_id[str(events[4].feedback_id)]["classification"]["language"] == "de"
            repeat = by_id[str(events[3].feedback_id)]
            assert repeat["duplicate_of"] == str(events[2].feedback_id), repeat
            assert repeat["near_duplicates"][0]["feedback_id"] == str(events[2].feedback_id)
            stored = (await client.get(f"/v1/classifications/{events[3].feedback_id}")).json()
            assert stored["duplicate_of"] == str(events[2].feedback_id) and stored["severity"]
            critical_ids = {c["feedback_id"] for c in (await client.get(
                "/v1/classifications", params={"severity": "critical"})).json()["items"]}
            assert str(events[0].feedback_id) in critical_ids and str(events[5].feedback_id) not in critical_ids
            # Newest first, paged by cursor; the deprecated `before` still narrows by time.
            pages, cursor = [], None
            while True:
                page = (await client.get("/v1/classifications", params={"limit": 4, "cursor": cursor})).json()
                pages.append(page["items"])
                if (cursor := page["next_cursor"]) is None:
                    break
            paged_ids = [c["feedback_id"] for items in pages for c in items]
            assert [len(items) for items in pages] == [4, 2] and len(set(paged_ids)) == 6
            newest = pages[0][0]["created_at"]
            before = (await client.get("/v1/classifications", params={"before": newest})).json()["items"]
            assert pages[0][0]["feedback_id"] not in {c["feedback_id"] for c in before}

            # Six negative messages out of six: a critical negative-share alert, announced and listed.
            async def critical() -> list[dict]:
                return [a for a in alerts if a["kind"] == "negative_share" and a["severity"] == "critical"]

            raised = await eventually(critical, timeout=20)
            assert raised[0]["metrics"]["negative_share"] > 0.4
            listed = (await client.get("/v1/alerts")).json()["items"]
            assert listed and listed[0]["kind"] == "negative_share"
            await asyncio.sleep(1.0)
            assert len(await critical()) == 1  # not raised again within the cooldown

            topics = (await client.get("/v1/topics", params={"window_hours": 1})).json()
            assert topics["messages"] == 6
            assert any(t["volume"] >= 2 and t["trend"] == "new" for t in topics["topics"]), topics

            # An agent's correction becomes a training example, and (retrain_after_corrections=1) queues a
            # training run whose model is activated, as none is active yet.
            seed = [{"text": f"The app crashes when I tap {thing}", "label": "technical/bug"}
                    for thing in ("save", "export", "print", "share", "undo", "search")]
            seed += [{"text": f"Please refund my {thing} order", "label": "billing/refund"}
                     for thing in ("March", "April", "shoe", "book", "phone", "laptop")]
            assert (await client.post("/v1/training-examples", json={"examples": seed})).status_code == 201
            correction = TicketRecategorizedV1(ticket_id=uuid4(), feedback_id=events[2].feedback_id,
                                               text=texts[2], previous_category="general/other",
                                               category="technical/bug", actor="agent-7")
            await app.state.runtime.broker.publish(correction.nats_subject, correction.model_dump_json().encode(),
                                                   {}, msg_id=str(correction.event_id))

            async def stored_example() -> list[dict]:
                page = (await client.get("/v1/training-examples", params={"source": "recategorized"})).json()
                return page["items"]

            (example,) = await eventually(stored_example, timeout=20)
            assert (example["label"], example["feedback_id"]) == ("technical/bug", str(events[2].feedback_id))

            async def retrained() -> dict | None:
                active = (await client.get("/v1/models/active")).json()
                return active if active["mode"] == "trained" else None

            active = await eventually(retrained, timeout=30)
            assert active["model"]["params"]["activate"] == "if_better" and active["model"]["n_examples"] == 13
    finally:
        await nc.close()


async def _length_at_least(items: list, n: int) -> bool:
    return len(items) >= n

"""Webhook delivery end to end: events from a real nats-server, sent to a real local HTTP receiver."""

import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from nats.js.errors import NotFoundError

from closedloop.events import AlertRaisedV1, CustomerRef, Event, TicketCreatedV1, TicketResolvedV1, TicketSnapshot
from closedloop.testing import eventually, running_app
from notify import signing
from notify.main import create_app
from notify.settings import NotifySettings


@pytest.fixture
def receiver(http_receiver):
    """The scripted HTTP receiver of conftest.py, under the name these tests use."""
    return http_receiver


@pytest.fixture
def app(database_url, nats_server):
    return create_app(NotifySettings(
        database_url=database_url, nats_url=nats_server.url, log_json=False,
        webhook_backoff_base_seconds=0.05, dispatch_poll_seconds=0.05, webhook_timeout_seconds=5,
        outbox_poll_seconds=0.05, consumer_fetch_timeout_seconds=0.1,
    ))


def ticket_created(**extra) -> TicketCreatedV1:
    return TicketCreatedV1(ticket=snapshot(), **extra)


def snapshot() -> TicketSnapshot:
    return TicketSnapshot(ticket_id=uuid4(), feedback_id=uuid4(), title="Charged twice", status="new",
                          priority="P1", team="payments", category="billing/payment_failure",
                          sentiment="negative", customer=CustomerRef(id="c-1", tier="vip"))


async def publish(app, event: Event) -> None:
    await app.state.runtime.broker.publish(event.nats_subject, event.model_dump_json().encode(), {},
                                           msg_id=str(event.event_id))


async def register(client, url: str, **extra) -> dict:
    response = await client.post("/v1/webhooks", json={"name": "crm", "url": url, **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries(client, **params) -> dict:
    response = await client.get("/v1/deliveries", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def the_delivery(client, status: str, attempts: int | None = None, **params):
    """A check for `eventually`: the one delivery matching `params` once it has `status`."""

    async def check():
        page = await deliveries(client, **params)
        if page["total"] != 1:
            return None
        delivery = page["items"][0]
        matched = delivery["status"] == status and attempts in (None, delivery["attempts"])
        return delivery if matched else None

    check.__name__ = f"delivery {params} is {status}"
    return check


async def last_event(app, subject: str) -> dict | None:
    try:
        msg = await app.state.runtime.broker.js.get_last_msg("NOTIFICATION", subject)
    except NotFoundError:
        return None
    return json.loads(msg.data)


def arrived(receiver, count: int = 1):
    """A check for `eventually`: the receiver's requests once there are `count` of them."""

    async def check():
        requests = receiver.received()
        return requests if len(requests) >= count else None

    check.__name__ = f"{count} request(s) arrived"
    return check


async def caught_up(app, stream: str, durable: str) -> bool:
    try:
        info = await app.state.runtime.broker.js.consumer_info(stream, durable)
    except NotFoundError:
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq > 0


def verified(request, secret: str) -> bool:
    return signing.verify(secret, request.body, request.headers[signing.HEADER])


async def test_ticket_event_is_delivered_signed(app, receiver):
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        webhook = await register(client, receiver.url())
        secret = webhook["secret"]
        assert len(secret) >= 32
        assert (webhook["event_types"], webhook["active"]) == (["ticket.*"], True)
        listed = (await client.get("/v1/webhooks")).json()
        assert [w["id"] for w in listed] == [webhook["id"]]
        assert "secret" not in listed[0], "the secret is shown only once"

        event = ticket_created()
        await publish(app, event)

        [request] = await eventually(arrived(receiver), timeout=10)
        assert request.path == "/hook"
        assert request.headers["Content-Type"] == "application/json"
        assert verified(request, secret)
        assert not signing.verify("not-the-secret-at-all", request.body, request.headers[signing.HEADER])
        body = json.loads(request.body)
        assert body["type"] == "ticket.created.v1" == request.headers["Closedloop-Event-Type"]
        assert body["id"] == request.headers["Closedloop-Delivery-Id"]
        assert body["data"]["event_id"] == str(event.event_id)
        assert body["data"]["ticket"]["ticket_id"] == str(event.ticket.ticket_id)
        assert body["data"]["ticket"]["priority"] == "P1"

        delivery = await eventually(the_delivery(client, "delivered", source_event_id=str(event.event_id)), 10)
        assert delivery["id"] == body["id"]
        assert (delivery["attempts"], delivery["last_status_code"], delivery["last_error"]) == (1, 200, None)
        assert (delivery["endpoint_id"], delivery["target"]) == (webhook["id"], receiver.url())
        assert delivery["delivered_at"] is not None
        detail = (await client.get(f"/v1/deliveries/{delivery['id']}")).json()
        assert detail["payload"].encode() == request.body

        announced = await eventually(lambda: last_event(app, "notification.delivered.v1"), timeout=10)
        assert announced["delivery_id"] == delivery["id"]
        assert announced["source_event_id"] == str(event.event_id)
        assert announced["attempts"] == 1

        assert (await client.delete(f"/v1/webhooks/{webhook['id']}")).status_code == 204
        assert (await client.get("/v1/webhooks")).json() == []
        assert (await deliveries(client))["total"] == 0, "a webhook's delivery history goes with it"
        assert (await client.delete(f"/v1/webhooks/{webhook['id']}")).status_code == 404


async def test_server_errors_are_retried_until_delivered(app, receiver):
    receiver.answer("/hook", 500, 500, 200)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        secret = "my-own-signing-secret-123"
        webhook = await register(client, receiver.url(), secret=secret)
        assert webhook["secret"] == secret
        event = ticket_created()
        await publish(app, event)

        delivery = await eventually(the_delivery(client, "delivered"), timeout=10)
        assert (delivery["attempts"], delivery["last_status_code"], delivery["last_error"]) == (3, 200, None)
        requests = receiver.received()
        assert len(requests) == 3
        assert {r.headers["Closedloop-Delivery-Id"] for r in requests} == {delivery["id"]}
        assert {json.loads(r.body)["data"]["event_id"] for r in requests} == {str(event.event_id)}
        assert all(verified(r, secret) for r in requests)


async def test_retry_after_as_an_http_date_is_understood(app, receiver):
    receiver.answer("/hook", (503, {"Retry-After": "Tue, 24 Nov 2020 12:00:00"}), 200)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        await register(client, receiver.url())
        await publish(app, ticket_created())

        delivery = await eventually(the_delivery(client, "delivered"), timeout=10)
        assert delivery["attempts"] == 2
        assert len(receiver.received()) == 2


async def test_client_error_fails_at_once_and_can_be_replayed(app, receiver):
    receiver.answer("/hook", 400, 200)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        await register(client, receiver.url())
        event = ticket_created()
        await publish(app, event)

        failed = await eventually(the_delivery(client, "failed"), timeout=10)
        assert (failed["attempts"], failed["last_status_code"]) == (1, 400)
        assert failed["last_error"].startswith("HTTP 400")
        assert len(receiver.received()) == 1
        announced = await eventually(lambda: last_event(app, "notification.failed.v1"), timeout=10)
        assert (announced["delivery_id"], announced["attempts"]) == (failed["id"], 1)

        replayed = await client.post(f"/v1/deliveries/{failed['id']}/replay")
        assert replayed.status_code == 202, replayed.text
        assert (replayed.json()["status"], replayed.json()["attempts"]) == ("pending", 0)

        delivered = await eventually(the_delivery(client, "delivered", attempts=1), timeout=10)
        assert delivered["id"] == failed["id"]
        assert len(receiver.received()) == 2
        assert receiver.received()[1].body == receiver.received()[0].body

        missing = await client.post(f"/v1/deliveries/{uuid4()}/replay")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


async def test_a_pending_delivery_cannot_be_replayed(app, receiver):
    receiver.answer("/hook", (503, {"Retry-After": "3600"}))  # the next attempt is far away
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        await register(client, receiver.url())
        await publish(app, ticket_created())

        waiting = await eventually(the_delivery(client, "pending", attempts=1), timeout=10)
        assert waiting["last_status_code"] == 503
        assert datetime.fromisoformat(waiting["next_attempt_at"]) > datetime.now(UTC)
        response = await client.post(f"/v1/deliveries/{waiting['id']}/replay")
        assert response.status_code == 409
        assert response.json()["type"].endswith("/delivery-pending")
        assert len(receiver.received()) == 1


async def test_deliveries_follow_subscriptions_and_can_be_filtered(app, receiver):
    receiver.answer("/b", 400)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        a = await register(client, receiver.url("/a"))
        b = await register(client, receiver.url("/b"), event_types=["ticket.resolved.v1"])
        created = ticket_created()
        resolved = TicketResolvedV1(ticket=snapshot(), resolved_at=datetime.now(UTC))
        alert = AlertRaisedV1(kind="spike", severity="warning", message="More complaints than usual")
        for event in (created, resolved, alert):
            await publish(app, event)

        async def settled():
            if not (await caught_up(app, "TICKET", "notify-ticket-events")
                    and await caught_up(app, "ALERT", "notify-alert-raised")):
                return False
            page = await deliveries(client)
            return page["total"] == 3 and (await deliveries(client, status="pending"))["total"] == 0

        await eventually(settled, timeout=10)

        async def ids(**params) -> set[tuple[str, str]]:
            page = await deliveries(client, **params)
            assert page["total"] == len(page["items"])
            return {(d["endpoint_id"], d["source_event_id"]) for d in page["items"]}

        a_created, a_resolved = (a["id"], str(created.event_id)), (a["id"], str(resolved.event_id))
        b_resolved = (b["id"], str(resolved.event_id))
        assert await ids() == {a_created, a_resolved, b_resolved}, "no webhook subscribed to alerts"
        assert await ids(status="delivered") == {a_created, a_resolved}
        assert await ids(status="failed") == {b_resolved}
        assert await ids(event_type="ticket.resolved.v1") == {a_resolved, b_resolved}
        assert await ids(event_type="ticket.created.v1") == {a_created}
        assert await ids(endpoint_id=b["id"]) == {b_resolved}
        assert await ids(source_event_id=str(created.event_id)) == {a_created}
        assert await ids(status="failed", endpoint_id=a["id"]) == set()

        paged = [await deliveries(client, limit=1, offset=offset) for offset in range(4)]
        assert [page["total"] for page in paged] == [3, 3, 3, 3]
        assert [len(page["items"]) for page in paged] == [1, 1, 1, 0]
        assert len({page["items"][0]["id"] for page in paged[:3]}) == 3

        # The cursor pages the same rows in the same order, and an offset page continues by cursor.
        walked, cursor = [], None
        while True:
            page = await deliveries(client, limit=1, **({"cursor": cursor} if cursor else {}))
            walked += [d["id"] for d in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert walked == [page["items"][0]["id"] for page in paged[:3]]
        assert [page["next_cursor"] is None for page in paged] == [False, False, True, True]
        after_offset = await deliveries(client, limit=1, cursor=paged[0]["next_cursor"])
        assert after_offset["items"] == paged[1]["items"]
        bad_cursor = await client.get("/v1/deliveries", params={"cursor": "not-a-cursor"})
        assert bad_cursor.status_code == 400

        bad = await client.get("/v1/deliveries", params={"status": "lost"})
        assert bad.status_code == 422
        assert "query.status" in [error["field"] for error in bad.json()["errors"]]

        assert {json.loads(r.body)["type"] for r in receiver.received("/a")} == {"ticket.created.v1",
                                                                                 "ticket.resolved.v1"}
        assert [json.loads(r.body)["type"] for r in receiver.received("/b")] == ["ticket.resolved.v1"]


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "not a url"}, "body.url"),
    ({"url": "ftp://files.example.com/hook"}, "body.url"),
    ({"url": "hooks.example.com/closedloop"}, "body.url"),
    ({"url": ""}, "body.url"),
    ({}, "body.url"),
    ({"url": "https://hooks.example.com/x", "secret": "short"}, "body.secret"),
    ({"url": "https://hooks.example.com/x", "event_types": []}, "body.event_types"),
    ({"url": "https://hooks.example.com/x", "name": ""}, "body.name"),
], ids=["words", "ftp", "no-scheme", "empty", "missing", "short-secret", "no-event-types", "empty-name"])
async def test_invalid_webhook_is_a_422_problem(app, body, field):
    async with running_app(app) as client:
        response = await client.post("/v1/webhooks", json={"name": "crm", **body})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [error["field"] for error in response.json()["errors"]]
        assert (await client.get("/v1/webhooks")).json() == []


async def test_unknown_delivery_is_404_and_openapi_documents_problems(app):
    async with running_app(app) as client:
        response = await client.get(f"/v1/deliveries/{uuid4()}")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        spec = (await client.get("/openapi.json")).json()
    for path, methods in spec["paths"].items():
        if path.startswith("/v1/"):
            for method, operation in methods.items():
                expected = {"401", "422"} | ({"404"} if "{" in path else set())
                assert expected <= set(operation["responses"]), (method, path)

"""Outbound targets cannot reach into our own networks (SSRF): loopback, link-local (cloud metadata)
and private addresses are refused when a webhook or Slack hook is registered, and again at delivery
(a name that resolves to such an address by then is not called: DNS rebinding), unless a setting
allows the network. Deliveries connect to the address that was checked, with the original Host."""

from ipaddress import ip_address
from uuid import uuid4

import pytest

from closedloop.events import CustomerRef, TicketCreatedV1, TicketSnapshot
from closedloop.outbound import OutboundPolicy, UnsafeTarget
from closedloop.testing import eventually, running_app
from notify.main import create_app
from notify.settings import NotifySettings
from notify.webhooks import create_endpoint

PROBLEM = "application/problem+json"


def settings(database_url, nats_url, **overrides) -> NotifySettings:
    return NotifySettings(database_url=database_url, nats_url=nats_url, log_json=False,
                          webhook_backoff_base_seconds=0.05, dispatch_poll_seconds=0.05, webhook_timeout_seconds=5,
                          outbox_poll_seconds=0.05, consumer_fetch_timeout_seconds=0.1, **overrides)


def ticket_created() -> TicketCreatedV1:
    return TicketCreatedV1(ticket=TicketSnapshot(
        ticket_id=uuid4(), feedback_id=uuid4(), title="Charged twice", status="new", priority="P1",
        team="payments", category="billing/payment_failure", sentiment="negative",
        customer=CustomerRef(id="c-1", tier="vip")))


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "169.254.169.254", "fe80::1", "10.1.2.3",
                                     "172.16.0.1", "192.168.1.1", "100.64.0.1", "fd00::1", "0.0.0.0",
                                     "::ffff:127.0.0.1", "::ffff:169.254.169.254", "224.0.0.1"])
def test_non_public_addresses_are_refused(address):
    with pytest.raises(UnsafeTarget):
        OutboundPolicy([]).check_address(ip_address(address), address)


def test_public_addresses_and_allowed_networks_pass():
    OutboundPolicy([]).check_address(ip_address("93.184.216.34"), "example.com")
    OutboundPolicy([]).check_address(ip_address("2606:2800:220:1::1"), "example.com")
    OutboundPolicy(["10.20.0.0/16"]).check_address(ip_address("10.20.3.4"), "in-house")
    with pytest.raises(UnsafeTarget):
        OutboundPolicy(["10.20.0.0/16"]).check_address(ip_address("10.21.0.1"), "elsewhere")
    # Unset: loopback only in development mode, nothing in production.
    dev = OutboundPolicy.from_settings(NotifySettings(environment="development"))
    dev.check_address(ip_address("127.0.0.1"), "localhost")
    with pytest.raises(UnsafeTarget):
        dev.check_address(ip_address("169.254.169.254"), "metadata")
    with pytest.raises(UnsafeTarget):
        OutboundPolicy.from_settings(NotifySettings(environment="production")).check_address(
            ip_address("127.0.0.1"), "localhost")


async def test_registration_refuses_internal_targets(database_url, nats_server):
    app = create_app(settings(database_url, nats_server.url, outbound_allowed_networks=[]))
    async with running_app(app) as client:
        for url in ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8080/hook", "http://localhost/x",
                    "http://[::1]/x", "http://10.0.0.5/hook", "http://2130706433/hook", "https://user@192.168.0.1/"]:
            response = await client.post("/v1/webhooks", json={"name": "x", "url": url})
            assert response.status_code == 422, (url, response.text)
            assert response.headers["content-type"] == PROBLEM
            assert response.json()["errors"][0]["field"] == "body.url", url
        slack = await client.post("/v1/subscriptions", json={
            "name": "ops", "event_types": ["ticket.*"], "channel": "slack", "target": "http://169.254.169.254/hook"})
        assert slack.status_code == 422 and slack.json()["errors"][0]["field"] == "body.target"
        # An unclosed IPv6 bracket in the host (found by schemathesis: it was a 500).
        for target in ("http://<~[x", "http://[::1/x"):
            broken = await client.post("/v1/subscriptions", json={
                "name": "ops", "event_types": ["ticket.*"], "channel": "slack", "target": target})
            assert broken.status_code == 422 and broken.json()["errors"][0]["field"] == "body.target", broken.text
        # A name that does not resolve (here: no DNS at all) is accepted and checked again at delivery.
        assert (await client.post("/v1/webhooks", json={"name": "later", "url": "https://hooks.invalid/x"})
                ).status_code == 201
        assert len((await client.get("/v1/webhooks")).json()) == 1


async def test_delivery_time_check_refuses_a_name_that_now_points_inside(database_url, nats_server, http_receiver):
    """DNS rebinding: the endpoint was registered when its name was public; now `localhost` resolves to
    127.0.0.1, so the delivery is refused for good and the receiver gets nothing."""
    app = create_app(settings(database_url, nats_server.url, outbound_allowed_networks=[]))
    port = http_receiver.server.server_port
    async with running_app(app) as client:
        async with app.state.runtime.sessions() as session:
            await create_endpoint(session, app.state.keyring, "rebound", f"http://localhost:{port}/hook",
                                  ["ticket.*"])
            await session.commit()
        await app.state.runtime.broker.wait_connected(10)
        event = ticket_created()
        await app.state.runtime.broker.publish(event.nats_subject, event.model_dump_json().encode(), {},
                                               msg_id=str(event.event_id))

        async def failed():
            page = (await client.get("/v1/deliveries", params={"status": "failed"})).json()
            return page["items"][0] if page["total"] == 1 else None

        delivery = await eventually(failed, timeout=20)
        assert delivery["attempts"] == 1 and "refused" in delivery["last_error"]
        assert "loopback" in delivery["last_error"]
        assert http_receiver.received() == []


async def test_allowed_loopback_is_delivered_to_the_checked_address_with_the_original_host(
        database_url, nats_server, http_receiver):
    app = create_app(settings(database_url, nats_server.url, outbound_allowed_networks=["127.0.0.0/8"]))
    port = http_receiver.server.server_port
    async with running_app(app) as client:
        created = await client.post("/v1/webhooks", json={"name": "local", "url": f"http://localhost:{port}/hook"})
        assert created.status_code == 201, created.text
        await app.state.runtime.broker.wait_connected(10)
        event = ticket_created()
        await app.state.runtime.broker.publish(event.nats_subject, event.model_dump_json().encode(), {},
                                               msg_id=str(event.event_id))

        async def arrived():
            return http_receiver.received() or None

        [request] = await eventually(arrived, timeout=20)
        assert request.headers["Host"] == f"localhost:{port}"
        assert request.path == "/hook"

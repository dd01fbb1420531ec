"""Subscriptions over the API, and deliveries that follow them by event type, team and priority."""

from datetime import UTC, datetime

import pytest

from closedloop.events import TicketAssignedV1, TicketCreatedV1, TicketSlaBreachedV1
from closedloop.testing import eventually, running_app


async def test_subscription_crud(make_app):
    async with running_app(make_app()) as client:
        body = {"name": "payments leads", "event_types": ["ticket.sla_*"], "teams": ["payments"],
                "priorities": ["P0", "P1"], "channel": "email", "target": "leads@example.com",
                "language": "pt-BR", "timezone": "America/Sao_Paulo"}
        created = await client.post("/v1/subscriptions", json=body)
        assert created.status_code == 201, created.text
        subscription = created.json()
        assert (subscription["language"], subscription["active"], subscription["template_key"]) == ("pt-br", True, None)
        assert [s["id"] for s in (await client.get("/v1/subscriptions")).json()] == [subscription["id"]]
        listed = await client.get("/v1/subscriptions", params={"event_type": "ticket.created.v1"})
        assert listed.json() == []

        replaced = await client.put(f"/v1/subscriptions/{subscription['id']}", json={**body, "active": False})
        assert (replaced.status_code, replaced.json()["active"]) == (200, False)
        assert (await client.get(f"/v1/subscriptions/{subscription['id']}")).json()["active"] is False
        assert (await client.delete(f"/v1/subscriptions/{subscription['id']}")).status_code == 204
        assert (await client.get(f"/v1/subscriptions/{subscription['id']}")).status_code == 404
        assert (await client.put(f"/v1/subscriptions/{subscription['id']}", json=body)).status_code == 404


@pytest.mark.parametrize(("change", "field"), [
    ({"target": "not-an-address"}, "body.target"),
    ({"channel": "slack", "target": "hooks.slack.com/x"}, "body.target"),
    ({"channel": "slack", "target": "http://\u0088\u00cc=B/hook"}, "body.target"),  # no IDNA form
    ({"channel": "slack", "target": "http://hooks.example.com:99999/x"}, "body.target"),
    ({"channel": "webhook", "target": "no-such-endpoint"}, "body.target"),
    ({"channel": "sms"}, "body.channel"),
    ({"priorities": ["P9"]}, "body.priorities.0"),
    ({"timezone": "Mars/Olympus"}, "body.timezone"),
    ({"event_types": []}, "body.event_types"),
], ids=["email", "slack-url", "slack-host", "slack-port", "unknown-webhook",
        "channel", "priority", "timezone", "no-events"])
async def test_invalid_subscription_is_422_naming_the_field(make_app, change, field):
    body = {"name": "x", "event_types": ["ticket.*"], "channel": "email", "target": "x@example.com", **change}
    async with running_app(make_app()) as client:
        response = await client.post("/v1/subscriptions", json=body)
        assert response.status_code == 422, response.text
        assert field in [e["field"] for e in response.json()["errors"]]
        assert (await client.get("/v1/subscriptions")).json() == []


async def test_deliveries_follow_team_and_priority_and_defaults_reach_assignee_and_lead(
        make_app, smtp_server, http_receiver, notify_kit):
    app = make_app(smtp_host="127.0.0.1", smtp_port=smtp_server.port,
                   team_lead_emails={"payments": "pay-lead@example.com"})
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        slack = await client.post("/v1/subscriptions", json={
            "name": "payments urgent", "event_types": ["ticket.created.v1"], "teams": ["payments"],
            "priorities": ["P0", "P1"], "channel": "slack", "target": http_receiver.url("/slack/payments")})
        assert slack.status_code == 201, slack.text
        hook = (await client.post("/v1/webhooks", json={"name": "bi", "url": http_receiver.url("/bi"),
                                                       "event_types": ["alert.*"]})).json()
        by_hook = await client.post("/v1/subscriptions", json={
            "name": "bi gets P0", "event_types": ["ticket.*"], "priorities": ["P0"], "channel": "webhook",
            "target": hook["id"]})
        assert by_hook.status_code == 201, by_hook.text

        matching = notify_kit.snapshot(priority="P1", team="payments")
        other_team = notify_kit.snapshot(priority="P0", team="accounts")
        low = notify_kit.snapshot(priority="P3", team="payments")
        for ticket in (matching, other_team, low):
            await notify_kit.publish(app, TicketCreatedV1(ticket=ticket))
        await notify_kit.publish(app, TicketAssignedV1(ticket=matching, assignee="agent.smith@example.com"))
        await notify_kit.publish(app, TicketSlaBreachedV1(ticket=matching, target="first_response",
                                                          due_at=datetime.now(UTC)))

        [to_slack] = await eventually(notify_kit.where(client, channel="slack", status="delivered"), timeout=15)
        assert to_slack["ticket_id"] == str(matching.ticket_id)
        assert to_slack["subscription_id"] == slack.json()["id"]
        [message] = http_receiver.received("/slack/payments")
        assert message.json()["text"].startswith("*ticket.created.v1* · [P1] Charged twice")

        [to_hook] = await eventually(notify_kit.where(client, channel="webhook", status="delivered"), timeout=15)
        assert to_hook["ticket_id"] == str(other_team.ticket_id), "only the P0 reaches the webhook subscription"

        assigned = await eventually(notify_kit.where(client, recipient="agent.smith@example.com",
                                                     status="delivered"), timeout=15)
        assert assigned[0]["template_key"] == "ticket.assigned.v1"
        breached = await eventually(notify_kit.where(client, recipient="pay-lead@example.com", status="delivered"),
                                    timeout=15)
        assert breached[0]["template_key"] == "ticket.sla_breached.v1"
        [mail] = smtp_server.to("pay-lead@example.com")
        assert mail["Subject"] == "[P1] SLA breached: Charged twice"
        assert smtp_server.to("agent.smith@example.com")[0]["Subject"] == "[P1] Assigned to you: Charged twice"

"""Routing rules over the API: seeded from routing.yaml, CRUD in order, dry run with reasons,
problems naming the field; scoring weights editable."""

from uuid import uuid4

import pytest

from closedloop.testing import running_app
from ticketing.routing import load_routing_table
from ticketing.testing import classified, open_from


async def dry_run(client, **message):
    response = await client.post("/v1/routing-rules/dry-run", json=message)
    assert response.status_code == 200, response.text
    return response.json()


async def test_rules_are_seeded_from_the_routing_table_most_specific_first(app):
    async with running_app(app) as client:
        rules = (await client.get("/v1/routing-rules")).json()
        table = load_routing_table()
        assert len(rules) == len(table.routes)
        assert [r["position"] for r in rules] == sorted(r["position"] for r in rules)
        names = [r["name"] for r in rules]
        assert names.index("technical/outage -> sre") < names.index("technical -> engineering-support")
        outage = await dry_run(client, category="technical/outage")
        assert (outage["team"], outage["priority"]) == ("sre", "P0")
        assert outage["fired_rule"]["name"] == "technical/outage -> sre"
        assert outage["evaluations"][-1]["matched"] is True
        assert all(not e["matched"] for e in outage["evaluations"][:-1])


async def test_create_order_replace_delete_and_dry_run_explains(app):
    async with running_app(app) as client:
        created = await client.post("/v1/routing-rules", json={
            "name": "German VIP chat", "position": 1,
            "conditions": {"languages": ["de"], "customer_tiers": ["VIP"], "channels": ["chat"]},
            "actions": {"team": "customer-success", "tags": ["vip", "de"], "priority": "P1"}})
        assert created.status_code == 201, created.text
        rule = created.json()
        assert rule["conditions"]["customer_tiers"] == ["vip"]

        hit = await dry_run(client, category="billing/refund", language="de", customer_tier="vip", channel="chat")
        assert hit["fired_rule"]["id"] == rule["id"]
        assert (hit["team"], hit["priority"], hit["tags"]) == ("customer-success", "P1", ["vip", "de"])
        assert hit["evaluations"] == [{"rule_id": rule["id"], "name": "German VIP chat", "position": 1,
                                       "matched": True, "reasons": [
                                           "language 'de' is in ['de']", "channel 'chat' is in ['chat']",
                                           "customer tier 'vip' is in ['vip']"]}]
        miss = await dry_run(client, category="billing/refund", language="de", customer_tier="vip", channel="email")
        assert miss["evaluations"][0]["reasons"] == ["language 'de' is in ['de']", "channel 'email' is not in ['chat']"]
        assert miss["team"] == "payments"

        replaced = await client.put(f"/v1/routing-rules/{rule['id']}", json={
            "name": "German VIP chat", "position": 1000, "conditions": {"languages": ["de"]},
            "actions": {"team": "customer-success"}})
        assert replaced.status_code == 200 and replaced.json()["position"] == 1000
        assert (await dry_run(client, category="billing/refund", language="de"))["team"] == "payments"
        assert (await dry_run(client, category="weird/thing", language="de"))["team"] == "customer-success"

        assert (await client.delete(f"/v1/routing-rules/{rule['id']}")).status_code == 204
        assert (await client.get(f"/v1/routing-rules/{rule['id']}")).status_code == 404
        assert (await client.delete(f"/v1/routing-rules/{rule['id']}")).status_code == 404
        fallback = await dry_run(client, category="weird/thing")
        assert (fallback["team"], fallback["fired_rule"]) == ("general-support", None)


async def test_rules_apply_to_new_tickets_and_needs_triage_goes_to_the_triage_queue(app):
    async with running_app(app) as client:
        await client.post("/v1/routing-rules", json={
            "name": "lawyers", "position": 0, "conditions": {"keywords": ["lawyer"]},
            "actions": {"team": "trust-and-safety", "tags": ["legal"]}})
        ticket = await open_from(app, classified("billing/refund", text="My LAWYER will call you"))
        assert (ticket.team, ticket.tags) == ("trust-and-safety", ["legal"])
        unsure = await open_from(app, classified("billing/refund", needs_triage=True))
        assert unsure.team == "triage" and "needs triage" in unsure.routing_reason
        triage = await dry_run(client, category="billing/refund", needs_triage=True)
        assert (triage["team"], triage["triage"]) == ("triage", True)


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "actions": {"team": "ghosts"}}, "body.actions.team"),
    ({"name": "x", "actions": {"priority": "P7"}}, "body.actions.priority"),
    ({"name": "", "actions": {}}, "body.name"),
    ({"name": "x", "actions": {}, "conditions": {"colour": ["red"]}}, "body.conditions.colour"),
    ({"name": "x", "actions": {}, "conditions": {"keywords": [" "]}}, "body.conditions.keywords"),
    ({"name": "x", "actions": {}, "position": -1}, "body.position"),
    ({"name": "x"}, "body.actions"),
])
async def test_invalid_rules_are_422_problems_naming_the_field(app, body, field):
    async with running_app(app) as client:
        before = len((await client.get("/v1/routing-rules")).json())
        response = await client.post("/v1/routing-rules", json=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert any(e["field"].startswith(field) for e in response.json()["errors"]), response.json()
        assert len((await client.get("/v1/routing-rules")).json()) == before


async def test_unknown_rule_is_404_and_rules_need_the_key(app):
    async with running_app(app) as client:
        assert (await client.put(f"/v1/routing-rules/{uuid4()}", json={"name": "x", "actions": {}})).status_code == 404
    async with running_app(app, api_key="nope") as client:
        assert (await client.get("/v1/routing-rules")).status_code == 401


async def test_scoring_weights_are_editable_and_apply_to_new_tickets(app):
    async with running_app(app) as client:
        weights = (await client.get("/v1/priority-scoring")).json()
        assert weights["category_severity"]["technical/outage"] == "critical"
        before = await open_from(app, classified("billing/refund"))
        assert (before.priority, before.priority_score) == ("P2", 40)

        weights["customer_value"]["standard"] = 1.0
        weights["impact"]["billing"] = 1.0
        weights["thresholds"] = {"P0": 90, "P1": 50, "P2": 10}
        saved = await client.put("/v1/priority-scoring", json=weights)
        assert saved.status_code == 200, saved.text
        after = await open_from(app, classified("billing/refund"))
        assert (after.priority, after.priority_score) == ("P1", 50)

        bad = await client.put("/v1/priority-scoring", json={**weights, "impact": {"billing": 2}})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"].startswith("body")

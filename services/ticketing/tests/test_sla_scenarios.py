"""SLA scenarios through the HTTP API on a manual clock: routing, assignment, warning at 80%, breach
and escalation once each (also with two ticketing apps racing on one database), pausing while
pending, and warnings that wait for business hours."""

import asyncio
from datetime import UTC, datetime

from closedloop.testing import eventually, running_app
from ticketing.testing import classified, make_app, open_from, outbox_events

WARNING, BREACH = "ticket.sla_warning.v1", "ticket.sla_breached.v1"


async def add_agent(client, agent_id, teams, skills=(), capacity=5, **extra):
    response = await client.post("/v1/agents", json={"id": agent_id, "name": agent_id, "teams": teams,
                                                     "skills": list(skills), "capacity": capacity, **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def count(app, subject, ticket_id=None) -> int:
    return len([e for e in await outbox_events(app, subject) if ticket_id is None
                or e["ticket"]["ticket_id"] == ticket_id])


async def settle(*apps) -> None:
    """Give every timer a few extra passes: nothing more may be announced."""
    for _ in range(3):
        await asyncio.gather(*(a.state.sla_timer.run_once() for a in apps))


async def test_vip_payment_security_complaint_is_routed_assigned_warned_and_escalated_once(app, clock):
    async with running_app(app) as client:
        rule = await client.post("/v1/routing-rules", json={
            "name": "card fraud", "position": 1,
            "conditions": {"categories": ["security"], "keywords": ["card", "payment"]},
            "actions": {"team": "trust-and-safety", "tags": ["payment"]}})
        assert rule.status_code == 201, rule.text
        await add_agent(client, "bob", ["trust-and-safety"], ["security"])
        busy = await open_from(app, classified("security/vulnerability", customer="someone-else"))
        assert busy.assignee == "bob"
        await add_agent(client, "carol", ["trust-and-safety"], [])          # free, but without the skill
        await add_agent(client, "alice", ["trust-and-safety"], ["security"])  # free and skilled
        await add_agent(client, "dave", ["payments"], ["security"])           # another team

        ticket = await open_from(app, classified(
            "security/fraud_phishing", tier="vip", sentiment="negative", score=0.95, severity="critical",
            text="Someone used my card for a payment I never made"))
        shown = (await client.get(f"/v1/tickets/{ticket.id}")).json()
        assert (shown["team"], shown["priority"], shown["priority_score"]) == ("trust-and-safety", "P0", 100)
        assert shown["assignee"] == "alice" and shown["status"] == "open"
        assert shown["tags"] == ["payment"] and shown["sla_policy"] == "P0 VIP"
        assert "card fraud" in shown["routing_reason"]
        assert shown["first_response_due_at"] == "2026-11-23T09:10:00Z"  # VIP P0: 10 minutes, 24/7
        [assigned] = [e for e in await outbox_events(app, "ticket.assigned.v1")
                      if e["ticket"]["ticket_id"] == ticket.id]
        assert assigned["assignee"] == "alice"

        clock.advance(minutes=7)
        await settle(app)
        assert await count(app, WARNING, ticket.id) == 0
        clock.advance(minutes=1)  # 8 of 10 minutes: 80%
        await eventually(lambda: count(app, WARNING, ticket.id), timeout=10)
        await settle(app)
        [warning] = [e for e in await outbox_events(app, WARNING) if e["ticket"]["ticket_id"] == ticket.id]
        assert warning["target"] == "first_response" and warning["due_at"] == "2026-11-23T09:10:00Z"

        clock.advance(minutes=2)
        await eventually(lambda: count(app, BREACH, ticket.id), timeout=10)
        await settle(app)
        breaches = [e for e in await outbox_events(app, BREACH) if e["ticket"]["ticket_id"] == ticket.id]
        assert len(breaches) == 1 and await count(app, WARNING, ticket.id) == 1
        assert breaches[0]["escalated_to"] == "lead.security@example.com"
        assert breaches[0]["ticket"]["team_lead"] == "lead.security@example.com"
        shown = (await client.get(f"/v1/tickets/{ticket.id}")).json()
        assert shown["sla_breached"] is True
        breached = (await client.get("/v1/tickets", params={"breached": "true"})).json()
        assert [t["id"] for t in breached["items"]] == [ticket.id]
        actions = [a["action"] for a in (await client.get(f"/v1/tickets/{ticket.id}/audit")).json()]
        assert actions == ["created", "assigned", "sla_warning", "sla_breached"]


async def test_breach_raises_the_priority_and_a_first_reply_in_time_stops_the_clock(app, clock):
    async with running_app(app) as client:
        late = await open_from(app, classified("billing/refund", tier="vip"))      # P1 VIP: 30 min, 24/7
        on_time = await open_from(app, classified("billing/refund", tier="vip"))
        assert (late.priority, late.sla_policy) == ("P1", "P1 VIP")
        clock.advance(minutes=20)
        reply = await client.post(f"/v1/tickets/{on_time.id}/comments",
                                  json={"author": "ana", "public": True, "body": "Refund sent."})
        assert reply.status_code == 201, reply.text
        clock.advance(minutes=11)
        await eventually(lambda: count(app, BREACH, late.id), timeout=10)
        await settle(app)
        [breach] = [e for e in await outbox_events(app, BREACH) if e["ticket"]["ticket_id"] == late.id]
        assert (breach["previous_priority"], breach["ticket"]["priority"]) == ("P1", "P0")
        assert (await client.get(f"/v1/tickets/{late.id}")).json()["priority"] == "P0"
        assert await count(app, BREACH, on_time.id) == 0 and await count(app, WARNING, on_time.id) == 0
        clocks = (await client.get(f"/v1/tickets/{on_time.id}/sla")).json()
        first = next(c for c in clocks if c["target"] == "first_response")
        assert first["stopped_at"] == "2026-11-23T09:20:00Z" and first["breached_at"] is None


async def test_pending_ticket_clock_stops_and_resumes_on_customer_reply(app, clock):
    async with running_app(app) as client:
        ticket = await open_from(app, classified("billing/payment_failure"))  # P1: 2 business hours
        assert (ticket.priority, ticket.first_response_due_at) == ("P1", datetime(2026, 11, 23, 11, tzinfo=UTC))
        clock.advance(minutes=30)
        pending = await client.post(f"/v1/tickets/{ticket.id}/status", json={"status": "pending", "actor": "ana"})
        assert pending.status_code == 200 and pending.json()["status"] == "pending"

        clock.advance(hours=5)  # 14:30: the clock stood still
        await settle(app)
        assert await count(app, WARNING, ticket.id) == 0 and await count(app, BREACH, ticket.id) == 0

        reply = await client.post(f"/v1/public/tickets/{ticket.public_token}/replies", json={"body": "Done."},
                                  headers={"X-API-Key": ""})
        assert reply.status_code == 201, reply.text
        assert reply.json()["status"] == "open"
        # 90 working minutes were left: due 16:00, warning (at 96 of 120 minutes) 15:36.
        shown = (await client.get(f"/v1/tickets/{ticket.id}")).json()
        assert shown["first_response_due_at"] == "2026-11-23T16:00:00Z"
        clock.set(datetime(2026, 11, 23, 15, 35, tzinfo=UTC))
        await settle(app)
        assert await count(app, WARNING, ticket.id) == 0
        clock.set(datetime(2026, 11, 23, 15, 36, tzinfo=UTC))
        await eventually(lambda: count(app, WARNING, ticket.id), timeout=10)


async def test_a_warning_due_outside_business_hours_waits_for_them(app, clock):
    async with running_app(app) as client:
        policies = (await client.get("/v1/sla-policies")).json()
        p1 = next(p for p in policies if p["name"] == "P1")
        changed = await client.put(f"/v1/sla-policies/{p1['id']}", json={
            **{k: p1[k] for k in ("name", "priority", "customer_tier", "first_response_minutes",
                                  "resolution_minutes", "business_hours", "escalate_on_breach")},
            "warn_at_share": 0.5})
        assert changed.status_code == 200, changed.text

        clock.set(datetime(2026, 11, 23, 16, 0, tzinfo=UTC))  # Monday 16:00, office closes at 17:00 (UTC)
        ticket = await open_from(app, classified("billing/payment_failure"))
        [clock_row] = [c for c in (await client.get(f"/v1/tickets/{ticket.id}/sla")).json()
                       if c["target"] == "first_response"]
        assert (clock_row["warn_at"], clock_row["due_at"]) == ("2026-11-23T17:00:00Z", "2026-11-24T10:00:00Z")
        for moment in (datetime(2026, 11, 23, 17, 0, tzinfo=UTC), datetime(2026, 11, 24, 3, 0, tzinfo=UTC),
                       datetime(2026, 11, 24, 8, 59, tzinfo=UTC)):
            clock.set(moment)
            await settle(app)
            assert await count(app, WARNING, ticket.id) == 0, moment
        clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
        await eventually(lambda: count(app, WARNING, ticket.id), timeout=10)
        audit = (await client.get(f"/v1/tickets/{ticket.id}/audit")).json()
        assert [a["created_at"] for a in audit if a["action"] == "sla_warning"] == ["2026-11-24T09:00:00Z"]
        clock.set(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
        await eventually(lambda: count(app, BREACH, ticket.id), timeout=10)


async def test_two_ticketing_apps_racing_announce_each_warning_and_breach_once(database_url, nats_server, clock):
    first = make_app(database_url, nats_server.url, clock)
    second = make_app(database_url, nats_server.url, clock)
    async with running_app(first), running_app(second):
        tickets = [await open_from(first, classified("technical/outage")) for _ in range(12)]  # P0: 15 min, 24/7
        ids = {t.id for t in tickets}
        clock.advance(minutes=12)  # 80%
        for _ in range(3):
            await asyncio.gather(first.state.sla_timer.run_once(), second.state.sla_timer.run_once())
        await eventually(lambda: _count_is(first, WARNING, 12), timeout=15)
        clock.advance(minutes=3)
        for _ in range(3):
            await asyncio.gather(first.state.sla_timer.run_once(), second.state.sla_timer.run_once())
        await eventually(lambda: _count_is(first, BREACH, 12), timeout=15)
        await settle(first, second)
        for subject in (WARNING, BREACH):
            events = await outbox_events(first, subject)
            assert sorted(e["ticket"]["ticket_id"] for e in events) == sorted(ids), subject


async def _count_is(app, subject, expected) -> bool:
    found = await count(app, subject)
    assert found <= expected, f"{found} {subject} events for {expected} tickets"
    return found == expected


async def test_an_unanswered_ticket_goes_to_another_agent_at_the_warning_when_configured(
        database_url, nats_server, clock):
    app = make_app(database_url, nats_server.url, clock, reassign_on_first_response_warning=True)
    async with running_app(app) as client:
        await add_agent(client, "slow", ["sre"])
        ticket = await open_from(app, classified("technical/outage"))  # P0: 15 minutes, warning at 12
        answered = await open_from(app, classified("technical/outage"))
        await add_agent(client, "quick", ["sre"])
        assert (ticket.assignee, answered.assignee) == ("slow", "slow")
        await client.post(f"/v1/tickets/{answered.id}/comments", json={"author": "slow", "body": "Looking."})
        clock.advance(minutes=12)
        await eventually(lambda: _count_is(app, WARNING, 1), timeout=10)  # the answered one has no warning
        await settle(app)
        shown = {t["id"]: t["assignee"] for t in (await client.get("/v1/tickets")).json()["items"]}
        assert shown == {ticket.id: "quick", answered.id: "slow"}
        [moved] = [e for e in await outbox_events(app, "ticket.assigned.v1") if e["assignee"] == "quick"]
        assert (moved["previous_assignee"], moved["reason"]) == ("slow", "slow did not respond in time")

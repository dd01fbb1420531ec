"""Reports over tickets handled on a manual clock: response times (median, p90), SLA compliance per
team and priority, backlog, CSAT, and the top issues of a period with their trend."""

from datetime import timedelta

import pytest

from closedloop.testing import running_app
from ticketing.testing import MONDAY_9_UTC, classified, open_from


async def reply(client, ticket_id):
    response = await client.post(f"/v1/tickets/{ticket_id}/comments", json={"author": "ana", "body": "Hello"})
    assert response.status_code == 201


async def test_response_times_compliance_backlog_csat_and_top_issues(app, clock):
    async with running_app(app) as client:
        # Praise stays a ticket an agent answers here (the auto-reply would close it: test_auto_reply.py).
        rules = await client.put("/v1/auto-reply", json={"praise": {"enabled": False}})
        assert rules.status_code == 200
        # Last week: 1 refund ticket. This week: 3 refund, 2 outage, 1 praise.
        clock.set(MONDAY_9_UTC - timedelta(days=7))
        await open_from(app, classified("billing/refund"))
        clock.set(MONDAY_9_UTC)
        refunds = [await open_from(app, classified("billing/refund")) for _ in range(3)]
        outages = [await open_from(app, classified("technical/outage")) for _ in range(2)]
        await open_from(app, classified("general/praise", sentiment="positive", score=0.9))

        # First responses after 10, 20, 30 minutes (refunds, P2), 5 and 40 minutes (outages, P0: 15 min target).
        for minutes, ticket in [(5, outages[0]), (10, refunds[0]), (20, refunds[1]), (30, refunds[2])]:
            clock.set(MONDAY_9_UTC + timedelta(minutes=minutes))
            await reply(client, ticket.id)
        clock.set(MONDAY_9_UTC + timedelta(minutes=40))
        await app.state.sla_timer.run_once()  # outages[1] breaches its first response at 09:15
        await reply(client, outages[1].id)
        clock.set(MONDAY_9_UTC + timedelta(hours=2))
        resolved = await client.post(f"/v1/tickets/{refunds[0].id}/status", json={"status": "resolved", "actor": "a"})
        assert resolved.status_code == 200
        rated = await client.post(f"/v1/public/tickets/{refunds[0].public_token}/csat", json={"score": 5})
        assert rated.status_code == 201

        times = (await client.get("/v1/reports/response-times")).json()
        first = times["overall"]["first_response"]
        assert (first["count"], first["median_minutes"], first["p90_minutes"]) == (5, 20.0, 40.0)
        assert times["overall"]["resolution"] == {"count": 1, "median_minutes": 120.0, "p90_minutes": 120.0}
        sre = next(g for g in times["by_team"] if g["team"] == "sre")
        assert sre["first_response"]["median_minutes"] == 22.5

        compliance = (await client.get("/v1/reports/sla-compliance")).json()
        rows = {(r["team"], r["priority"], r["target"]): (r["met"], r["breached"]) for r in compliance["rows"]}
        assert rows[("sre", "P0", "first_response")] == (1, 1)
        assert rows[("payments", "P2", "first_response")] == (3, 0)
        assert rows[("payments", "P2", "resolution")] == (1, 0)
        assert compliance["overall"] == pytest.approx(5 / 6, abs=0.001)

        backlog = (await client.get("/v1/reports/backlog")).json()
        assert backlog["total"] == 6  # last week's refund, 2 open refunds, 2 outages, praise
        by_team = {g["key"]: g for g in backlog["by_team"]}
        assert (by_team["sre"]["open_tickets"], by_team["sre"]["breached"]) == (2, 1)

        csat = (await client.get("/v1/reports/csat")).json()
        assert (csat["responses"], csat["average"], csat["by_team"][0]["key"]) == (1, 5.0, "payments")

        top = (await client.get("/v1/reports/top-issues")).json()
        assert [(i["category"], i["count"], i["previous_count"], i["trend"]) for i in top["items"]] == [
            ("billing/refund", 3, 1, "up"), ("technical/outage", 2, 0, "new"), ("general/praise", 1, 0, "new")]
        assert top["items"][0]["change"] == 2.0

        older = (await client.get("/v1/reports/top-issues", params={
            "since": (MONDAY_9_UTC - timedelta(days=8)).isoformat(),
            "until": (MONDAY_9_UTC - timedelta(days=1)).isoformat()})).json()
        assert [(i["category"], i["count"]) for i in older["items"]] == [("billing/refund", 1)]


@pytest.mark.parametrize(("params", "field"), [
    ({"since": "2026-11-30T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "query.since"),
    ({"since": "2026-11-01T00:00:00"}, "query.since"),
])
async def test_invalid_periods_are_400_problems(app, params, field):
    async with running_app(app) as client:
        response = await client.get("/v1/reports/csat", params=params)
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["field"] == field

"""A seeded history replayed through the real consumers (real nats-server, SQLite and PostgreSQL): the
analyses find what was planted in it, and nothing else."""

import csv
import io
import json

import nats
import pytest
from sqlalchemy import func, select

from closedloop.testing import eventually, running_app
from insights.generator import generate, publish
from insights.main import create_app
from insights.models import Aggregate
from insights.settings import InsightsSettings

AGGREGATES = Aggregate.__table__
SUMS = func.sum(AGGREGATES.c["items"] + AGGREGATES.c.csat_sum + AGGREGATES.c.frt_sum_min + AGGREGATES.c.tickets)


@pytest.fixture(scope="module")
def history():
    return generate(seed=15, days=84, daily_volume=30)


async def caught_up(client) -> bool:
    status = (await client.get("/v1/status")).json()
    return status["caught_up"] and status["tickets"] > 0 and status


async def test_replayed_history_shows_what_was_planted(database_url, nats_server, history):
    events, truth = history
    app = create_app(InsightsSettings(database_url=database_url, nats_url=nats_server.url, log_json=False,
                                      analysis_interval_seconds=0, consumer_fetch_timeout_seconds=0.2,
                                      consumer_batch_size=1024,
                                      outbox_poll_seconds=0.05))
    nc = await nats.connect(nats_server.url)
    try:
        async with running_app(app) as client:
            await app.state.runtime.broker.wait_connected(10)
            alerts = await nc.jetstream().subscribe("alert.raised.v1")
            churn_events = await nc.jetstream().subscribe("customer.churn_risk_detected.v1")
            await publish(events, nc.jetstream())
            status = await eventually(lambda: caught_up(client), timeout=240, interval=0.5)
            assert status["feedback_items"] == truth.items
            assert status["behind_messages"] == 0

            # Trends: the totals are the generator's, and a day's rows add up to its groups.
            volume = (await client.get("/v1/trends", params={"metric": "volume", "interval": "month",
                                                             "start": truth.start.isoformat(),
                                                             "end": truth.end.isoformat()})).json()
            assert sum(p["value"] for p in volume["points"]) == truth.items
            spike_day = truth.spike_day.isoformat()
            params = {"metric": "volume", "start": spike_day,
                      "end": truth.spike_day.replace(hour=23).isoformat()}
            by_channel = (await client.get("/v1/trends", params={**params, "group_by": "channel"})).json()
            total = (await client.get("/v1/trends", params=params)).json()
            assert sum(p["value"] for p in by_channel["points"]) == total["points"][0]["value"]
            drill = (await client.get("/v1/trends", params={**params, "group_by": "category",
                                                            "filter": f"channel:{truth.spike_channel}",
                                                            "format": "csv"}))
            assert drill.headers["content-type"].startswith("text/csv")
            rows = {r["group"]: float(r["value"]) for r in csv.DictReader(io.StringIO(drill.text))}
            assert rows[truth.spike_category] >= truth.spike_items * 0.9
            too_many = await client.get("/v1/trends", params={**params, "group_by": "team",
                                                              "filter": ["channel:app", "region:emea"]})
            assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "query.filter"

            # Anomalies: exactly the planted one, raised once as alert.raised.v1 with its numbers.
            scan = {"start": (truth.start.replace(day=truth.start.day) + (truth.end - truth.start) / 3).isoformat(),
                    "end": truth.end.isoformat()}
            found = (await client.post("/v1/anomalies/scan", json=scan)).json()
            assert [(a["dimension"], a["value"], a["window_start"][:10]) for a in found["found"]] == [
                ("category", truth.spike_category, spike_day[:10])]
            assert len(found["raised"]) == 1
            again = (await client.post("/v1/anomalies/scan", json=scan)).json()
            assert again["raised"] == [] and len(again["found"]) == 1
            listed = (await client.get("/v1/anomalies", params={"limit": 1})).json()
            assert [a["key"] for a in listed["items"]] == found["raised"]
            assert listed["total"] == 1 and listed["next_cursor"] is None
            alert = json.loads((await alerts.next_msg(timeout=10)).data)
            assert alert["dimension"] == {"category": truth.spike_category}
            assert alert["metrics"]["observed"] >= truth.spike_items
            assert alert["metrics"]["expected"] < truth.spike_items / 4

            # Drivers: the planted wait-time effect on low ratings, sign and size.
            drivers = (await client.get("/v1/drivers", params={
                "outcome": "low_rating", "wait_threshold_minutes": truth.wait_threshold_minutes,
                "start": truth.start.isoformat(), "end": truth.end.isoformat()})).json()
            wait = next(e for e in drivers["effects"] if e["factor"].startswith("waited_over_"))
            low, high = wait["risk_difference_ci"]
            assert wait["risk_difference"] > 0 and low <= truth.planted_risk_difference <= high
            assert wait["adjusted_odds_ratio_ci"][0] > 1

            # Churn: exactly the planted customers, raised once each.
            risks = (await client.post("/v1/churn-risks/scan")).json()
            assert sorted(risks["found"]) == sorted(truth.churners)
            assert sorted(risks["raised"]) == sorted(truth.churners)
            assert (await client.post("/v1/churn-risks/scan")).json()["raised"] == []
            raised_ids = {json.loads((await churn_events.next_msg(timeout=10)).data)["customer_id"]
                          for _ in truth.churners}
            assert raised_ids == set(truth.churners)

            # Forecast: per team, with intervals and the backtest error reported beside it.
            forecast = (await client.get("/v1/forecast")).json()
            teams = {f["team"] for f in forecast["teams"]}
            assert {"payments", "engineering-support", "fulfilment"} <= teams
            tickets = next(f for f in forecast["teams"] if f["team"] == "payments" and f["metric"] == "tickets")
            assert len(tickets["days"]) == 7
            assert all(d["lower"] <= d["mean"] <= d["upper"] for d in tickets["days"])
            assert tickets["backtest"]["weeks"] == 4 and tickets["backtest"]["mape"] is not None
            assert 0 < forecast["backtest_error"]["wape"] < 0.5
            assert tickets["agent_hours"] > 0

            # Opportunities: the themes that were planted, the valuable one first.
            opportunities = (await client.get("/v1/opportunities")).json()["opportunities"]
            assert "csv" in opportunities[0]["title"]
            assert any("dark mode" in o["title"] for o in opportunities)

            # Rebuild: the replay from the start gives the same sums, and raises nothing again.
            async with app.state.runtime.sessions() as session:
                before = await session.scalar(select(SUMS))
            assert (await client.post("/v1/rebuild")).status_code == 202
            await eventually(lambda: caught_up(client), timeout=240, interval=0.5)
            async with app.state.runtime.sessions() as session:
                assert await session.scalar(select(SUMS)) == pytest.approx(before)
            assert (await client.post("/v1/anomalies/scan", json=scan)).json()["raised"] == []
    finally:
        await nc.close()

"""The insights API on a small history loaded with the consumers' handlers: sums add up across groupings
and periods, bad queries are refused naming the field, run-time settings change the analyses."""

import csv
import io

import pytest

from closedloop.testing import running_app
from insights.generator import generate
from insights.main import create_app
from insights.settings import InsightsSettings
from insights.testing import load_events


@pytest.fixture
async def app(database_url, nats_server):
    return create_app(InsightsSettings(database_url=database_url, nats_url=nats_server.url, log_json=False,
                                       analysis_interval_seconds=0))


@pytest.fixture
async def client(app):
    async with running_app(app) as client:
        yield client


@pytest.fixture
async def loaded(app, client):
    events, truth = generate(seed=5, days=28, daily_volume=10)
    await load_events(app.state.runtime.sessions, events)
    return client, truth


async def test_sums_agree_across_periods_groupings_and_csv(loaded):
    client, truth = loaded
    span = {"start": truth.start.isoformat(), "end": truth.end.isoformat()}
    total = {}
    for interval in ("day", "week", "month"):
        points = (await client.get("/v1/trends", params={"metric": "volume", "interval": interval, **span})).json()
        total[interval] = sum(p["value"] for p in points["points"])
    assert total == {"day": truth.items, "week": truth.items, "month": truth.items}
    for dimension in ("channel", "category_top", "region", "product", "language", "tier"):
        grouped = (await client.get("/v1/trends", params={"metric": "volume", "interval": "month",
                                                          "group_by": dimension, **span})).json()
        assert sum(p["value"] for p in grouped["points"]) == truth.items, dimension
    # Ticket metrics by team: every ticket has a team; shares are numerator / denominator.
    teams = (await client.get("/v1/trends", params={"metric": ["tickets", "reopen_rate"], "interval": "month",
                                                    "group_by": "team", **span})).json()
    assert sum(p["value"] for p in teams["points"] if p["metric"] == "tickets") == truth.items
    for p in teams["points"]:
        if p["metric"] == "reopen_rate" and p["denominator"]:
            assert p["value"] == pytest.approx(p["numerator"] / p["denominator"])
    # A filter and a grouping: email items by category add up to email items.
    email = (await client.get("/v1/trends", params={"metric": "volume", "interval": "month",
                                                    "filter": "channel:email", **span})).json()
    by_category = (await client.get("/v1/trends", params={"metric": "volume", "interval": "month",
                                                          "filter": "channel:email", "group_by": "category",
                                                          "format": "csv", **span}))
    rows = list(csv.DictReader(io.StringIO(by_category.text)))
    assert sum(float(r["value"]) for r in rows) == sum(p["value"] for p in email["points"]) > 0
    assert by_category.headers["content-disposition"].endswith('.csv"')

    funnel = (await client.get("/v1/funnel", params=span)).json()["all"]
    counts = [step["count"] for step in funnel]
    assert counts[0] == truth.items and counts == sorted(counts, reverse=True)
    assert funnel[1]["drop_off"] == pytest.approx(1 - counts[1] / counts[0])

    segments = (await client.get("/v1/segments")).json()["segments"]
    customers = {s["segment"]: s["customers"] for s in segments}
    assert sum(customers.values()) > 0 and {"high_value", "at_risk"} & set(customers)


@pytest.mark.parametrize(("params", "field"), [
    ({"metric": "volumes"}, "query.metric"),
    ({"group_by": "colour"}, "query.group_by"),
    ({"filter": "channel=email"}, "query.filter"),
    ({"filter": "planet:mars"}, "query.filter"),
    ({"filter": ["channel:email", "region:emea"], "group_by": "team"}, "query.filter"),
    ({"interval": "hour", "metric": "csat"}, "query.interval"),
    ({"interval": "hour", "group_by": "channel", "filter": "region:emea"}, "query.interval"),
    ({"interval": "fortnight"}, "query.interval"),
    ({"format": "xlsx"}, "query.format"),
    ({"start": "2026-10-01T00:00:00Z", "end": "2026-09-01T00:00:00Z"}, "query.start"),
])
async def test_bad_trend_queries_are_refused_naming_the_field(client, params, field):
    response = await client.get("/v1/trends", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_sensitivity_is_changed_at_run_time_and_validated(loaded):
    client, _ = loaded
    defaults = (await client.get("/v1/config")).json()
    assert defaults["anomaly_z"] == 4.0
    bad = await client.put("/v1/config", json={"anomaly_z": -1})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.anomaly_z"
    unknown = await client.put("/v1/config", json={"anomaly_zz": 3})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.anomaly_zz"
    changed = (await client.put("/v1/config", json={"anomaly_z": 2.5, "churn_min_value": 50_000})).json()
    assert changed["anomaly_z"] == 2.5 and changed["anomaly_min_excess"] == defaults["anomaly_min_excess"]
    assert (await client.get("/v1/config")).json() == changed
    # Only customers worth at least 50,000 can be at risk now: the generator's churners are worth 20-35k.
    risks = (await client.get("/v1/churn-risks")).json()["customers"]
    assert all(r["value"] >= 50_000 for r in risks)


async def test_erasure_pseudonymises_the_customer_and_announces_it(app, loaded, nats_server):
    import json
    from uuid import uuid4

    import nats
    from sqlalchemy import func, select

    from closedloop.events import CustomerErasureRequestedV1
    from insights.models import CustomerFact, FeedbackFact, NeedMention

    client, truth = loaded
    customer = truth.churners[0]
    async with app.state.runtime.sessions() as session:
        before = await session.scalar(select(func.count()).select_from(FeedbackFact)
                                      .where(FeedbackFact.customer_id == customer))
    assert before > 0
    nc = await nats.connect(nats_server.url)
    try:
        await app.state.runtime.broker.wait_connected(10)
        completed = await nc.jetstream().subscribe("customer.erasure_completed.v1")
        request = CustomerErasureRequestedV1(erasure_id=uuid4(), customer_id=customer)
        await app.state.runtime.broker.publish(request.nats_subject, request.model_dump_json().encode(), {},
                                               msg_id=str(request.event_id))
        done = json.loads((await completed.next_msg(timeout=30)).data)
    finally:
        await nc.close()
    assert done["service"] == "insights" and done["erased"]["feedback_facts"] == before
    async with app.state.runtime.sessions() as session:
        for model in (FeedbackFact, CustomerFact, NeedMention):
            assert await session.scalar(select(func.count()).select_from(model)
                                        .where(model.customer_id == customer)) == 0
    # The sums do not change: the customer's items still count, anonymously.
    span = {"start": truth.start.isoformat(), "end": truth.end.isoformat(), "interval": "month"}
    volume = (await client.get("/v1/trends", params={"metric": "volume", **span})).json()
    assert sum(p["value"] for p in volume["points"]) == truth.items

"""Insights' churn risks and opportunities reach a webhook subscribed to them (e.g. a CRM), signed like every
delivery; an endpoint that did not ask for them gets nothing."""

from datetime import UTC, datetime

import pytest

from closedloop.events import CustomerChurnRiskDetectedV1, OpportunityDetectedV1
from closedloop.testing import eventually, running_app
from notify.main import create_app
from notify.settings import NotifySettings


@pytest.fixture
def app(database_url, nats_server):
    return create_app(NotifySettings(
        database_url=database_url, nats_url=nats_server.url, log_json=False, dispatch_poll_seconds=0.05,
        webhook_timeout_seconds=5, outbox_poll_seconds=0.05, consumer_fetch_timeout_seconds=0.1))


async def test_churn_risk_and_opportunity_reach_the_crm_webhook(app, http_receiver):
    now = datetime.now(UTC)
    churn = CustomerChurnRiskDetectedV1(customer_id="key-001", tier="vip", value=25_000.0, segment="at_risk",
                                        risk_score=0.8, reasons=["4 negative contacts in 30 days"], as_of=now)
    opportunity = OpportunityDetectedV1(opportunity_id="abc", title="export csv", terms=["export", "csv"],
                                        mentions=40, customers=12, customer_value=310_000.0, trend=1.4, as_of=now)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        crm = await client.post("/v1/webhooks", json={
            "name": "crm", "url": http_receiver.url("/crm"),
            "event_types": ["customer.churn_risk_detected.v1", "opportunity.*"]})
        assert crm.status_code == 201, crm.text
        other = await client.post("/v1/webhooks", json={"name": "tickets only", "url": http_receiver.url("/other")})
        assert other.status_code == 201
        for event in (churn, opportunity):
            await app.state.runtime.broker.publish(event.nats_subject, event.model_dump_json().encode(), {},
                                                   msg_id=str(event.event_id))

        async def both_delivered():
            got = [r for r in http_receiver.requests if r.path == "/crm"]
            return got if len(got) == 2 else None

        delivered = await eventually(both_delivered, timeout=30)
    bodies = {r.json()["type"]: r.json()["data"] for r in delivered}
    assert bodies["customer.churn_risk_detected.v1"]["customer_id"] == "key-001"
    assert bodies["opportunity.detected.v1"]["customer_value"] == 310_000.0
    assert all("Closedloop-Signature" in r.headers for r in delivered)
    assert not [r for r in http_receiver.requests if r.path == "/other"]

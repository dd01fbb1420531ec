"""One trace spans ingest → classify → ticketing → notify; every service serves Prometheus metrics."""

import asyncio
import contextlib

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from classify.main import create_app as create_classify
from classify.settings import ClassifySettings
from closedloop.telemetry import setup_tracing
from closedloop.testing import eventually, running_app
from ingest.main import create_app as create_ingest
from ingest.settings import IngestSettings
from notify.main import create_app as create_notify
from notify.settings import NotifySettings
from tests.system import WebhookReceiver
from ticketing.main import create_app as create_ticketing
from ticketing.settings import TicketingSettings

pytestmark = pytest.mark.e2e

FACTORIES = {
    "ingest": (create_ingest, IngestSettings),
    "classify": (create_classify, ClassifySettings),
    "ticketing": (create_ticketing, TicketingSettings),
    "notify": (create_notify, NotifySettings),
}


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    setup_tracing("closedloop-tests", extra_processor=processor)
    yield exporter
    processor.shutdown()


async def test_one_trace_from_http_request_to_webhook_delivery(tmp_path, nats_server, spans):
    receiver = WebhookReceiver()
    apps = {}
    for name in FACTORIES:  # the pipeline; identity is not needed with the development key
        create_app, settings_class = FACTORIES[name]
        extra = {"seed_webhook_urls": [receiver.url]} if name == "notify" else {}
        apps[name] = create_app(settings_class(database_url=f"sqlite+aiosqlite:///{tmp_path / name}.db",
                                               nats_url=nats_server.url, log_json=False, **extra))
    async with contextlib.AsyncExitStack() as stack:
        clients = {name: await stack.enter_async_context(running_app(app)) for name, app in apps.items()}
        response = await clients["ingest"].post("/v1/feedback", json={
            "channel": "web", "text": "Someone changed my password and emptied my account",
            "customer": {"id": "trace-1", "tier": "vip"}})
        assert response.status_code == 202
        await eventually(lambda: asyncio.sleep(0, result=receiver.events("ticket.created.v1")), timeout=60)

        metrics = {name: (await client.get("/metrics")).text for name, client in clients.items()}
    receiver.close()

    finished = spans.get_finished_spans()
    request = next(s for s in finished if s.kind.name == "SERVER" and s.attributes.get("http.route") == "/v1/feedback")
    trace_id = request.context.trace_id
    consumers = {s.attributes.get("messaging.consumer.group.name") for s in finished
                 if s.context.trace_id == trace_id and s.kind.name == "CONSUMER"}
    assert {"classify-feedback-received", "ticketing-feedback-classified", "notify-ticket-events",
            "ingest-ticket-events"} <= consumers, consumers

    assert 'closedloop_http_requests_total{method="POST",route="/v1/feedback",service="ingest",status="202"}' \
        in metrics["ingest"]
    assert 'closedloop_events_published_total{service="ticketing",subject="ticket.created.v1"}' in metrics["ticketing"]
    assert 'closedloop_consumer_batch_size_count{durable="classify-feedback-received",service="classify"}' \
        in metrics["classify"]
    assert 'closedloop_notifications_total{channel="webhook",outcome="delivered"}' in metrics["notify"]

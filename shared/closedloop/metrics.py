"""Prometheus metrics every service exports on `/metrics`.

Names are shared by all services (the `service` label tells them apart), so one dashboard serves all:
SLA warnings and breaches, for instance, are `closedloop_events_published_total{subject=~"ticket.sla_.*"}`.
"""

import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

HTTP_REQUESTS = Counter("closedloop_http_requests_total", "HTTP requests answered.",
                        ["service", "method", "route", "status"])
HTTP_DURATION = Histogram("closedloop_http_request_duration_seconds", "HTTP request latency.",
                          ["service", "method", "route"])
OUTBOX_BACKLOG = Gauge("closedloop_outbox_backlog", "Outbox events not yet published.", ["service"])
EVENTS_PUBLISHED = Counter("closedloop_events_published_total", "Events published from the outbox.",
                           ["service", "subject"])
PUBLISH_FAILURES = Counter("closedloop_outbox_publish_failures_total", "Failed publish attempts (retried).",
                           ["service"])
CONSUMED = Counter("closedloop_consumer_messages_total", "Messages handled by consumers, by outcome "
                   "(acked, duplicate, retried, dead_lettered, skipped, irrelevant).",
                   ["service", "durable", "outcome"])
REDELIVERIES = Counter("closedloop_consumer_redeliveries_total", "Messages received more than once.",
                       ["service", "durable"])
CONSUMER_LAG = Gauge("closedloop_consumer_lag", "Messages waiting for this durable consumer (JetStream num_pending).",
                     ["service", "durable"])
BATCH_SIZE = Histogram("closedloop_consumer_batch_size", "Messages per fetched batch.", ["service", "durable"],
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128))
PREPARE_DURATION = Histogram("closedloop_consumer_prepare_duration_seconds",
                             "Per-batch preparation time (classify: embedding and classification of the batch).",
                             ["service", "durable"])
HANDLE_DURATION = Histogram("closedloop_consumer_handle_duration_seconds",
                            "Time to handle and commit a batch.", ["service", "durable"])
NOTIFICATIONS = Counter("closedloop_notifications_total", "Notification attempts by channel and outcome "
                        "(delivered, retry, failed).", ["channel", "outcome"])


async def metrics_endpoint(request: Request) -> Response:
    """Needs `metrics:read` (ADR 0003): the figures name routes, subjects, consumers and volumes, which
    is more than an anonymous caller should learn. Prometheus sends a scrape key as a bearer token."""
    from closedloop.auth import METRICS_READ, current_principal, forbidden
    from closedloop.errors import ProblemError, problem_response

    try:
        principal = await current_principal(request)
        if not principal.has(METRICS_READ):
            raise forbidden(principal, METRICS_READ)
    except ProblemError as exc:
        return problem_response(request, exc.status, exc.title, exc.detail, exc.slug, exc.errors, exc.headers)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class HttpMetrics:
    """ASGI middleware: count and time requests by route template (not raw path: bounded labels)."""

    def __init__(self, app, service: str) -> None:  # type: ignore[no-untyped-def]
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http" or scope["path"] in ("/metrics", "/livez", "/readyz"):
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def record_status(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            HTTP_DURATION.labels(self.service, scope["method"], route).observe(time.perf_counter() - started)
            HTTP_REQUESTS.labels(self.service, scope["method"], route, str(status["code"])).inc()

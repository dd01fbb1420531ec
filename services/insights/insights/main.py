"""The insights application: `uvicorn --factory insights.main:create_app`."""

from pathlib import Path

from fastapi import FastAPI

from closedloop.api import create_service_app
from closedloop.erasure import subscribe_erasure
from closedloop.events import (
    TICKET_EVENTS,
    FeedbackClassifiedV1,
    FeedbackReceivedV1,
    NotificationDeliveredV1,
    NotificationFailedV1,
)
from closedloop.messaging.consumer import Subscription
from closedloop.runtime import ServiceRuntime
from insights.analysis import AnalysisWorker
from insights.api import admin as admin_api
from insights.api import analyses, reports, trends
from insights.handlers import Handlers
from insights.models import InboxMessage, outbox
from insights.replay import Rebuilder
from insights.reporting import ReportScheduler
from insights.rights import erase_customer
from insights.settings import InsightsSettings

SERVICE_DIR = Path(__file__).resolve().parent.parent


def subscriptions(settings: InsightsSettings) -> list[Subscription]:
    handlers = Handlers(settings.opportunity_categories)
    return [
        Subscription(durable="insights-feedback-events", stream="FEEDBACK", filter_subject="feedback.>",
                     subjects={e.nats_subject: e for e in (FeedbackReceivedV1, FeedbackClassifiedV1)},
                     handler=handlers.on_feedback_event, prepare=handlers.prepare_feedback_event),
        Subscription(durable="insights-ticket-events", stream="TICKET", filter_subject="ticket.>",
                     subjects={e.nats_subject: e for e in TICKET_EVENTS}, handler=handlers.on_ticket_event,
                     prepare=handlers.prepare_ticket_event),
        Subscription(durable="insights-notification-events", stream="NOTIFICATION",
                     filter_subject="notification.>",
                     subjects={e.nats_subject: e for e in (NotificationDeliveredV1, NotificationFailedV1)},
                     handler=handlers.on_notification_event),
    ]


def create_app(settings: InsightsSettings | None = None) -> FastAPI:
    settings = settings or InsightsSettings()
    runtime = ServiceRuntime(settings, SERVICE_DIR, outbox, InboxMessage)
    subs = subscriptions(settings)
    for sub in subs:
        runtime.subscribe(sub)
    # Not part of `subs`: a rebuild replays the read model's streams, never the erasure requests.
    subscribe_erasure(runtime, erase_customer)
    scheduler = ReportScheduler(runtime.sessions, settings)
    runtime.add_worker(AnalysisWorker(runtime.sessions, settings, after_run=scheduler.maybe_send))
    app = create_service_app(
        runtime, title="Closedloop insights",
        description="What the feedback says about the business. A read model of every stream (pre-aggregated "
                    "per hour/day and dimension, rebuildable by replay, with its lag), trends with drill-down and "
                    "CSV, seasonal anomalies raised as `alert.raised.v1`, 7-day forecasts per team with their "
                    "backtest, drivers of low ratings and reopens with confidence intervals, the funnel, RFM "
                    "segments, churn risk (`customer.churn_risk_detected.v1`), opportunities "
                    "(`opportunity.detected.v1`) and a weekly e-mail report in English and Chinese.",
        routers=[trends.router, analyses.router, reports.router, admin_api.router],
    )
    app.state.subscriptions = subs
    app.state.rebuilder = Rebuilder(runtime, subs)
    app.state.report_scheduler = scheduler
    return app

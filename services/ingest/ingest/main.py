"""The ingest application: `uvicorn --factory ingest.main:create_app`."""

from pathlib import Path

from fastapi import FastAPI

from closedloop.api import create_service_app
from closedloop.erasure import subscribe_erasure
from closedloop.events import (
    CustomerErasureCompletedV1,
    FeedbackClassifiedV1,
    TicketCreatedV1,
    TicketFeedbackAttachedV1,
    TicketResolvedV1,
)
from closedloop.messaging.consumer import Subscription
from closedloop.runtime import ServiceRuntime
from ingest.api import channels, customers, feedback
from ingest.handlers import Handlers
from ingest.models import InboxMessage, outbox
from ingest.retention import ingest_retention_rules
from ingest.rights import erase_customer
from ingest.settings import IngestSettings

SERVICE_DIR = Path(__file__).resolve().parent.parent


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    runtime = ServiceRuntime(settings, SERVICE_DIR, outbox, InboxMessage)
    handlers = Handlers(settings)
    runtime.subscribe(Subscription(
        durable="ingest-feedback-classified", stream="FEEDBACK",
        subjects={FeedbackClassifiedV1.nats_subject: FeedbackClassifiedV1}, handler=handlers.on_feedback_classified,
    ))
    runtime.subscribe(Subscription(
        durable="ingest-ticket-events", stream="TICKET", filter_subject="ticket.>",
        subjects={event.nats_subject: event for event in (TicketCreatedV1, TicketFeedbackAttachedV1, TicketResolvedV1)},
        handler=handlers.on_ticket_event,
    ))
    runtime.subscribe(Subscription(
        durable="ingest-customer-erasure-completed", stream="CUSTOMER",
        subjects={CustomerErasureCompletedV1.nats_subject: CustomerErasureCompletedV1},
        handler=handlers.on_erasure_completed,
    ))
    subscribe_erasure(runtime, erase_customer)
    for rule in ingest_retention_rules(settings):
        runtime.retention.add(rule)
    return create_service_app(
        runtime, title="Closedloop ingest",
        description="One door for all customer feedback: REST (single and batch) and channel webhooks (e-mail, "
                    "app reviews, chat, surveys). Validates, cleans, de-duplicates and stores it, masks personal "
                    "data, then announces `feedback.received.v1` with the customer's profile. Shows each item's "
                    "progress to ticket and resolution, and decides when a customer may be invited for feedback.",
        routers=[feedback.router, channels.router, channels.raw_router, customers.router],
    )

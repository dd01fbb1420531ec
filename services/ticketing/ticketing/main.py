"""The ticketing application: `uvicorn --factory ticketing.main:create_app`."""

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from closedloop.api import create_service_app
from closedloop.erasure import subscribe_erasure
from closedloop.events import (
    NOTIFICATION_EVENTS,
    AlertRaisedV1,
    FeedbackClassifiedV1,
    FeedbackCsatAnsweredV1,
    FeedbackReplyReceivedV1,
)
from closedloop.messaging.consumer import Subscription
from closedloop.runtime import ServiceRuntime
from ticketing import config_cache, conversation, links
from ticketing.api import agents, incidents, macros, pages, public, reports, rules, sla_policies, tickets
from ticketing.clock import Clock, SystemClock
from ticketing.handlers import Handlers
from ticketing.macros import seed_default_macros
from ticketing.models import InboxMessage, outbox
from ticketing.rights import erase_customer
from ticketing.routing import load_routing_table
from ticketing.settings import TicketingSettings
from ticketing.sla_timer import SlaTimer
from ticketing.tickets import TicketOptions

SERVICE_DIR = Path(__file__).resolve().parent.parent


def create_app(settings: TicketingSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or TicketingSettings()
    table = load_routing_table(settings.routing_table_path or None)
    links.set_base_url(settings.public_base_url)
    clock = clock or SystemClock()
    options = TicketOptions(
        duplicate_window=timedelta(hours=settings.duplicate_window_hours),
        public_base_url=settings.public_base_url.rstrip("/"),
        attach_duplicates_across_customers=settings.attach_duplicates_across_customers)
    handlers = Handlers(table, clock, options)
    runtime = ServiceRuntime(settings, SERVICE_DIR, outbox, InboxMessage)
    config_cache.attach(runtime.engine, settings.config_cache_seconds)
    runtime.subscribe(Subscription(
        durable="ticketing-feedback-classified", stream="FEEDBACK",
        subjects={FeedbackClassifiedV1.nats_subject: FeedbackClassifiedV1},
        handler=handlers.on_feedback_classified,
    ))
    runtime.subscribe(Subscription(
        durable="ticketing-feedback-reply-received", stream="FEEDBACK",
        subjects={FeedbackReplyReceivedV1.nats_subject: FeedbackReplyReceivedV1},
        handler=handlers.on_feedback_reply_received,
    ))
    runtime.subscribe(Subscription(
        durable="ticketing-feedback-csat-answered", stream="FEEDBACK",
        subjects={FeedbackCsatAnsweredV1.nats_subject: FeedbackCsatAnsweredV1},
        handler=handlers.on_feedback_csat_answered,
    ))
    # What became of the messages to customers: a reply shows as delivered or undelivered.
    runtime.subscribe(Subscription(
        durable="ticketing-notification-outcomes", stream="NOTIFICATION", filter_subject="notification.>",
        subjects={event.nats_subject: event for event in NOTIFICATION_EVENTS},
        handler=handlers.on_notification_outcome, relevant=conversation.is_reply_outcome,
    ))
    runtime.subscribe(Subscription(
        durable="ticketing-alert-raised", stream="ALERT",
        subjects={AlertRaisedV1.nats_subject: AlertRaisedV1}, handler=handlers.on_alert_raised,
    ))
    timer = SlaTimer(runtime.sessions, clock, table.lead_of, poll_seconds=settings.sla_timer_poll_seconds,
                     batch_size=settings.sla_timer_batch_size,
                     reassign_unanswered=settings.reassign_on_first_response_warning)
    runtime.add_worker(timer)
    subscribe_erasure(runtime, erase_customer)

    async def setup(runtime: ServiceRuntime, _: FastAPI) -> None:
        if settings.run_migrations:
            await runtime.migrate()
        await seed_default_macros(runtime.sessions, clock.now())

    app = create_service_app(
        runtime, title="Closedloop ticketing",
        description="Turns classified feedback into tickets: routing rules, priority scoring (P0–P3), SLA "
                    "clocks with warnings and escalation, assignment to agents, the ticket lifecycle, a public "
                    "status page with CSAT, and reports. Announces `ticket.*.v1` events.",
        routers=[tickets.router, macros.router, incidents.router, rules.router, sla_policies.router, agents.router,
                 reports.router, public.router, pages.router],
        setup=setup,
    )
    app.state.routing_table = table
    app.state.clock = clock
    app.state.ticket_options = options
    app.state.sla_timer = timer
    return app

"""The ticketing application: `uvicorn --factory ticketing.main:create_app`."""

from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

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
from ticketing import conversation, links
from ticketing.api import agents, incidents, macros, pages, public, reports, rules, sla_policies, tickets
from ticketing.clock import Clock, SystemClock
from ticketing.macros import seed_default_macros
from ticketing.models import InboxMessage, outbox
from ticketing.rights import erase_customer
from ticketing.routing import RoutingTable, load_routing_table
from ticketing.settings import TicketingSettings
from ticketing.sla_timer import SlaTimer
from ticketing.tickets import TicketOptions, open_ticket

SERVICE_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Context:
    table: RoutingTable
    clock: Clock
    options: TicketOptions


async def on_feedback_classified(context: Context, session: AsyncSession, event: FeedbackClassifiedV1,
                                 _: object) -> None:
    await open_ticket(session, event, context.table, context.clock, context.options)


async def on_reply_received(context: Context, session: AsyncSession, event: FeedbackReplyReceivedV1,
                            _: object) -> None:
    await conversation.on_reply_received(session, event, context.table, context.clock, context.options)


async def on_csat_answered(context: Context, session: AsyncSession, event: FeedbackCsatAnsweredV1, _: object) -> None:
    await conversation.on_csat_answered(session, event, context.table, context.clock)


async def on_notification(context: Context, session: AsyncSession, event: Any, _: object) -> None:
    await conversation.on_notification_outcome(session, event, context.clock)


async def on_alert(context: Context, session: AsyncSession, event: AlertRaisedV1, _: object) -> None:
    await conversation.on_alert_raised(session, event, context.clock)


def create_app(settings: TicketingSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or TicketingSettings()
    table = load_routing_table(settings.routing_table_path or None)
    links.set_base_url(settings.public_base_url)
    context = Context(table=table, clock=clock or SystemClock(), options=TicketOptions(
        duplicate_window=timedelta(hours=settings.duplicate_window_hours),
        public_base_url=settings.public_base_url.rstrip("/"),
        attach_duplicates_across_customers=settings.attach_duplicates_across_customers))
    runtime = ServiceRuntime(settings, SERVICE_DIR, outbox, InboxMessage)
    runtime.subscribe(Subscription(
        durable="ticketing-feedback-classified", stream="FEEDBACK",
        subjects={FeedbackClassifiedV1.nats_subject: FeedbackClassifiedV1},
        handler=partial(on_feedback_classified, context),
    ))
    runtime.subscribe(Subscription(
        durable="ticketing-feedback-reply-received", stream="FEEDBACK",
        subjects={FeedbackReplyReceivedV1.nats_subject: FeedbackReplyReceivedV1},
        handler=partial(on_reply_received, context),
    ))
    runtime.subscribe(Subscription(
        durable="ticketing-feedback-csat-answered", stream="FEEDBACK",
        subjects={FeedbackCsatAnsweredV1.nats_subject: FeedbackCsatAnsweredV1},
        handler=partial(on_csat_answered, context),
    ))
    # What became of the messages to customers: a reply shows as delivered or undelivered.
    runtime.subscribe(Subscription(
        durable="ticketing-notification-outcomes", stream="NOTIFICATION", filter_subject="notification.>",
        subjects={event.nats_subject: event for event in NOTIFICATION_EVENTS},
        handler=partial(on_notification, context),
    ))
    runtime.subscribe(Subscription(
        durable="ticketing-alert-raised", stream="ALERT",
        subjects={AlertRaisedV1.nats_subject: AlertRaisedV1}, handler=partial(on_alert, context),
    ))
    timer = SlaTimer(runtime.sessions, context.clock, table.lead_of, poll_seconds=settings.sla_timer_poll_seconds,
                     batch_size=settings.sla_timer_batch_size,
                     reassign_unanswered=settings.reassign_on_first_response_warning)
    runtime.add_worker(timer)
    subscribe_erasure(runtime, erase_customer)

    async def setup(runtime: ServiceRuntime, _: FastAPI) -> None:
        if settings.run_migrations:
            await runtime.migrate()
        await seed_default_macros(runtime.sessions, context.clock.now())

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
    app.state.clock = context.clock
    app.state.ticket_options = context.options
    app.state.sla_timer = timer
    return app

"""The ticketing application: `uvicorn --factory ticketing.main:create_app`."""

from functools import partial
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import create_service_app
from closedloop.events import FeedbackClassifiedV1
from closedloop.messaging.consumer import Subscription
from closedloop.runtime import ServiceRuntime
from ticketing.api import tickets
from ticketing.models import InboxMessage, outbox
from ticketing.routing import RoutingTable, load_routing_table
from ticketing.settings import TicketingSettings
from ticketing.tickets import open_ticket

SERVICE_DIR = Path(__file__).resolve().parent.parent


async def on_feedback_classified(table: RoutingTable, session: AsyncSession, event: FeedbackClassifiedV1,
                                 _: object) -> None:
    await open_ticket(session, event, table)


def create_app(settings: TicketingSettings | None = None) -> FastAPI:
    settings = settings or TicketingSettings()
    table = load_routing_table(settings.routing_table_path or None)
    runtime = ServiceRuntime(settings, SERVICE_DIR, outbox, InboxMessage)
    runtime.subscribe(Subscription(
        durable="ticketing-feedback-classified", stream="FEEDBACK",
        subjects={FeedbackClassifiedV1.nats_subject: FeedbackClassifiedV1},
        handler=partial(on_feedback_classified, table),
    ))
    app = create_service_app(
        runtime, title="Closedloop ticketing",
        description="Turns classified feedback into tickets with a priority (P0–P3) and a team, "
                    "and announces `ticket.*.v1` events.",
        routers=[tickets.router],
    )
    app.state.routing_table = table
    return app

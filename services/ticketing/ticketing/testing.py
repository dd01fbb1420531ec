"""Helpers for ticketing's tests (and for scripted demos): an app on a manual clock, classified
feedback to open tickets from, and a look into the outbox."""

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from fastapi import FastAPI
from sqlalchemy import select

from closedloop.events import Channel, Classification, CustomerRef, FeedbackClassifiedV1, SentimentLabel
from ticketing.clock import ManualClock
from ticketing.main import create_app
from ticketing.models import OutboxMessage, Ticket
from ticketing.settings import TicketingSettings
from ticketing.tickets import open_ticket

MONDAY_9_UTC = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def make_app(database_url: str, nats_url: str, clock: ManualClock | None = None, **overrides: object) -> FastAPI:
    settings = TicketingSettings(database_url=database_url, nats_url=nats_url, log_json=False,
                                 outbox_poll_seconds=0.05, consumer_fetch_timeout_seconds=0.1,
                                 sla_timer_poll_seconds=0.05, **overrides)  # type: ignore[arg-type]
    return create_app(settings, clock or ManualClock(MONDAY_9_UTC))


def classified(category: str = "billing/refund", *, sentiment: SentimentLabel = "neutral", score: float = 0.5,
               tier: str = "standard", customer: str | None = None, text: str | None = None,
               channel: Channel = "email", **extra: object) -> FeedbackClassifiedV1:
    """A classified feedback event; `extra` fields (severity, needs_triage, language on the
    classification, duplicate_of on the event) are set where classify sends them."""
    unknown = set(extra) - set(Classification.model_fields) - set(FeedbackClassifiedV1.model_fields)
    if unknown:
        raise TypeError(f"neither the classification nor the event has {sorted(unknown)}")
    fields: dict[str, Any] = {k: v for k, v in extra.items() if k in Classification.model_fields}
    classification = Classification(category=category, category_label=category.replace("/", " / "),
                                     top_level=category.split("/")[0], confidence=0.8, sentiment=sentiment,
                                     sentiment_score=score, taxonomy_version="t1", model_version="m1", **fields)
    event_fields: dict[str, Any] = {k: v for k, v in extra.items() if k in FeedbackClassifiedV1.model_fields}
    return FeedbackClassifiedV1(
        feedback_id=uuid4(), channel=channel, text=text or f"Problem with {category}",
        customer=CustomerRef(id=customer or f"cust-{uuid4().hex[:6]}", tier=tier, email="c@example.com",
                             name="Casey"),
        classification=classification, **event_fields)


async def open_from(app: FastAPI, event: FeedbackClassifiedV1) -> Ticket:
    """Open (or attach) in one transaction, as the consumer does."""
    async with app.state.runtime.sessions() as session, session.begin():
        return await open_ticket(session, event, app.state.routing_table, app.state.clock,
                                 app.state.ticket_options)


async def outbox_events(app: FastAPI, subject: str | None = None) -> list[dict]:
    async with app.state.runtime.sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if subject:
            query = query.where(OutboxMessage.subject == subject)
        return [{"subject": row.subject, **json.loads(row.payload)} for row in await session.scalars(query)]

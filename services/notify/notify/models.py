"""Notify's own tables: webhook endpoints, subscriptions, templates, circuit breakers and every delivery."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.db import ServiceBase, UTCDateTime, new_metadata
from closedloop.messaging.models import messaging_models
from closedloop.messaging.tables import AutoIncrementId


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


OutboxMessage, InboxMessage, outbox = messaging_models(Base)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    # Sealed (closedloop.secretbox, `enc:v1:…`): shown once at creation, opened only to sign deliveries.
    secret: Mapped[str] = mapped_column(Text)
    # Glob patterns over event subjects, e.g. ["ticket.*", "alert.raised.v1"].
    event_types: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A partner's endpoint that answers customers on these channels (e.g. ["chat", "app"]): replies to
    # tickets from them are delivered here as ticket.replied.v1 (0003).
    customer_channels: Mapped[list[str] | None] = mapped_column(JSON, default=list)


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "source_event_id", name="uq_deliveries_endpoint_event"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_recipient", "recipient", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # webhook (signed event JSON), email (SMTP) or slack (incoming-webhook JSON)
    channel: Mapped[str] = mapped_column(String(20), default="webhook", server_default="webhook")
    # Set for webhook deliveries only: the endpoint holds the signing secret.
    endpoint_id: Mapped[str | None] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    # Who it is for: an e-mail address, a Slack hook's name (`slack-hook:<fingerprint>`) or the webhook URL.
    recipient: Mapped[str | None] = mapped_column(String(2000))
    subscription_id: Mapped[str | None] = mapped_column(String(36))
    template_key: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(20))
    ticket_id: Mapped[str | None] = mapped_column(String(36))
    # Why it was suppressed (status "suppressed") or postponed (quiet hours, open circuit).
    reason: Mapped[str | None] = mapped_column(Text)
    source_event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(2000))
    payload: Mapped[str] = mapped_column(Text)
    # pending -> delivered | failed (dead-lettered after the last attempt; can be replayed);
    # suppressed (never sent: frequency cap, duplicate, no address, channel off; see `reason`)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A dispatcher holds a delivery until this time while it sends it (no DB lock over HTTP).
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # customer (the person the ticket is about), internal (assignee, lead, operations) or subscriber (0003).
    audience: Mapped[str | None] = mapped_column(String(20), default=None)


class Subscription(Base):
    """Someone who wants to hear about some events: by event type, team and priority."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    event_types: Mapped[list[str]] = mapped_column(JSON)  # glob patterns over subjects
    teams: Mapped[list[str]] = mapped_column(JSON)  # empty: every team
    priorities: Mapped[list[str]] = mapped_column(JSON)  # empty: every priority
    channel: Mapped[str] = mapped_column(String(20))  # email, slack or webhook
    # An e-mail address, a webhook endpoint id, or for Slack the hook's name `slack-hook:<fingerprint>`
    # (the URL is a credential: it is only in `target_sealed`, see notify.sealed).
    target: Mapped[str] = mapped_column(String(2000))
    target_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    language: Mapped[str | None] = mapped_column(String(20))
    timezone: Mapped[str | None] = mapped_column(String(64))
    template_key: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Template(Base):
    """A Jinja2 template for one notification key (an event type), channel and language."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("key", "channel", "language", name="uq_templates_key_channel_language"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))  # email or slack
    language: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CircuitBreaker(Base):
    """Consecutive failures of one target; open (deliveries postponed) until `open_until`."""

    __tablename__ = "circuit_breakers"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    open_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # While half-open: the single probe in flight holds the target until this time.
    probe_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ThreadMessage(Base):
    """One e-mail of a ticket's conversation with the customer, ours or theirs: the next one we send
    answers the latest (`In-Reply-To`) and lists them all (`References`)."""

    __tablename__ = "thread_messages"
    __table_args__ = (UniqueConstraint("ticket_id", "message_id", name="uq_thread_messages_ticket_message"),)

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(String(36), index=True)
    message_id: Mapped[str] = mapped_column(String(500))
    direction: Mapped[str] = mapped_column(String(10))  # in | out
    delivery_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

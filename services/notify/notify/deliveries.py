"""Who gets what: for each event, one delivery per matching webhook endpoint, per matching
subscription, and per default recipient (the customer, the assignee, the team lead, operations),
written in the consumer's transaction. E-mail and Slack messages are rendered here, so a replay
sends exactly what was planned; the no-spam rules decide whether they go out, later, or not at all."""

import fnmatch
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import (
    AlertRaisedV1,
    Event,
    TicketAssignedV1,
    TicketCreatedV1,
    TicketResolvedV1,
    TicketSlaBreachedV1,
    TicketSlaWarningV1,
)
from closedloop.metrics import NOTIFICATIONS
from closedloop.wakeup import wake_after_commit
from notify import nospam, templating
from notify.channels import email_payload, slack_payload
from notify.dispatcher import DELIVERIES_CHANNEL
from notify.models import Delivery, Subscription, WebhookEndpoint
from notify.settings import NotifySettings

log = logging.getLogger(__name__)


def matches(patterns: list[str], event_type: str) -> bool:
    return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns)


def webhook_body(delivery_id: str, event: Event) -> str:
    return json.dumps({
        "id": delivery_id,
        "type": event.nats_subject,
        "created_at": datetime.now(UTC).isoformat(),
        "data": event.model_dump(mode="json"),
    }, separators=(",", ":"))


@dataclass(frozen=True)
class Intent:
    """Someone should hear about an event on a channel, with a template."""

    channel: str  # email or slack
    recipient: str
    template_key: str
    language: str | None = None
    timezone: str | None = None
    subscription_id: str | None = None


def _first(*values: Any) -> Any:
    return next((value for value in values if value), None)


def _email(*values: Any) -> str | None:
    return next((v.strip() for v in values if isinstance(v, str) and "@" in v), None)


def customer_language(event: Event) -> str | None:
    ticket = getattr(event, "ticket", None)
    customer = getattr(ticket, "customer", None)
    return _first(getattr(customer, "language", None), getattr(customer, "locale", None),
                  getattr(ticket, "customer_language", None), getattr(ticket, "language", None))


def customer_timezone(event: Event) -> str | None:
    ticket = getattr(event, "ticket", None)
    customer = getattr(ticket, "customer", None)
    return _first(getattr(customer, "timezone", None), getattr(customer, "time_zone", None),
                  getattr(ticket, "customer_timezone", None))


def is_urgent(event: Event) -> bool:
    ticket = getattr(event, "ticket", None)
    return isinstance(event, AlertRaisedV1) or getattr(ticket, "priority", None) == "P0"


def default_intents(event: Event, settings: NotifySettings) -> list[Intent]:
    """The defaults: acknowledgement and CSAT request to the customer, the assignment to the assignee,
    SLA warnings and breaches to the team lead, alerts to operations."""
    if not settings.default_notifications:
        return []
    ticket = getattr(event, "ticket", None)
    key = event.nats_subject
    if isinstance(event, TicketCreatedV1 | TicketResolvedV1):
        address = _email(ticket.customer.email)
        return [Intent("email", address, key, customer_language(event), customer_timezone(event))] if address else []
    if isinstance(event, TicketAssignedV1):
        address = _email(getattr(event, "assignee_email", None), getattr(ticket, "assignee_email", None),
                         event.assignee)
        return [Intent("email", address, key)] if address else []
    if isinstance(event, TicketSlaWarningV1 | TicketSlaBreachedV1):
        address = _email(getattr(ticket, "team_lead_email", None), ticket.team_lead,
                         getattr(event, "escalated_to", None), settings.team_lead_emails.get(ticket.team))
        return [Intent("email", address, key)] if address else []
    if isinstance(event, AlertRaisedV1):
        intents = []
        if settings.ops_slack_webhook_url:
            intents.append(Intent("slack", settings.ops_slack_webhook_url, key))
        if settings.ops_email:
            intents.append(Intent("email", settings.ops_email, key))
        return intents
    return []


def subscription_matches(subscription: Subscription, event: Event) -> bool:
    if not subscription.active or not matches(subscription.event_types, event.nats_subject):
        return False
    ticket = getattr(event, "ticket", None)
    if subscription.teams and getattr(ticket, "team", None) not in subscription.teams:
        return False
    return not (subscription.priorities and getattr(ticket, "priority", None) not in subscription.priorities)


class Planner:
    """The consumer handler for ticket events and alerts."""

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    async def __call__(self, session: AsyncSession, event: Event, _: object = None) -> list[Delivery]:
        now = datetime.now(UTC)
        ticket = getattr(event, "ticket", None)
        ticket_id = str(ticket.ticket_id) if ticket is not None else None
        planned: list[Delivery] = []

        endpoints = {e.id: e for e in await session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True)))}
        hooked = [e for e in endpoints.values() if matches(e.event_types, event.nats_subject)]
        intents = default_intents(event, self.settings)
        for subscription in await session.scalars(select(Subscription).where(Subscription.active.is_(True))
                                                  .order_by(Subscription.created_at)):
            if not subscription_matches(subscription, event):
                continue
            if subscription.channel == "webhook":
                endpoint = endpoints.get(subscription.target)
                if endpoint is not None and endpoint not in hooked:
                    hooked.append(endpoint)
                continue
            intents.append(Intent(subscription.channel, subscription.target,
                                  subscription.template_key or templating.GENERIC_KEY,
                                  subscription.language, subscription.timezone, subscription.id))

        for endpoint in hooked:
            delivery_id = str(uuid4())
            planned.append(self._add(session, Delivery(
                id=delivery_id, channel="webhook", endpoint_id=endpoint.id, recipient=endpoint.url,
                target=endpoint.url, payload=webhook_body(delivery_id, event), status="pending",
                next_attempt_at=now), event, ticket_id, now))
        seen: set[tuple[str, str, str]] = set()
        for intent in intents:
            if (intent.channel, intent.recipient, intent.template_key) in seen:
                continue  # a default and a subscription naming the same person: one message
            seen.add((intent.channel, intent.recipient, intent.template_key))
            planned.append(await self._notification(session, event, intent, ticket_id, now))
        if any(delivery.status == "pending" for delivery in planned):
            wake_after_commit(session, DELIVERIES_CHANNEL)  # sent right after this commits, not at the next poll
        return planned

    def _add(self, session: AsyncSession, delivery: Delivery, event: Event, ticket_id: str | None,
             now: datetime) -> Delivery:
        delivery.source_event_id = str(event.event_id)
        delivery.event_type = event.nats_subject
        delivery.ticket_id = ticket_id
        delivery.attempts = 0
        delivery.created_at = now
        session.add(delivery)
        if delivery.status == "suppressed":
            NOTIFICATIONS.labels(delivery.channel, "suppressed").inc()
        return delivery

    async def _notification(self, session: AsyncSession, event: Event, intent: Intent, ticket_id: str | None,
                            now: datetime) -> Delivery:
        settings = self.settings
        # The consumer may handle a batch without autoflush: what this batch planned must count below.
        await session.flush()
        context = templating.build_context(event, settings, intent.recipient)
        language, payload, error = intent.language, "", None
        try:
            rendered = await templating.render(session, intent.template_key, intent.channel, intent.language,
                                               context, settings.fallback_language)
            language = rendered.language
            payload = (email_payload(rendered.subject, rendered.text, rendered.html) if intent.channel == "email"
                       else slack_payload(rendered.text))
        except templating.TemplateInvalid as exc:
            error = f"template_error: {exc}"
        if error:
            decision = nospam.Decision("suppressed", now, error)
        elif intent.channel == "email" and not settings.smtp_host:
            decision = nospam.Decision("suppressed", now, "channel_disabled: e-mail is not configured "
                                                          "(NOTIFY_SMTP_HOST)")
        else:
            decision = await nospam.decide(session, settings, channel=intent.channel, recipient=intent.recipient,
                                           template_key=intent.template_key, ticket_id=ticket_id,
                                           urgent=is_urgent(event), timezone=intent.timezone, now=now)
        if decision.status == "suppressed":
            log.info("notification suppressed", extra={"recipient": intent.recipient, "reason": decision.reason,
                                                       "event_type": event.nats_subject})
        return self._add(session, Delivery(
            id=str(uuid4()), channel=intent.channel, endpoint_id=None, recipient=intent.recipient,
            target=intent.recipient, subscription_id=intent.subscription_id, template_key=intent.template_key,
            language=language, payload=payload, status=decision.status, next_attempt_at=decision.next_attempt_at,
            reason=decision.reason), event, ticket_id, now)

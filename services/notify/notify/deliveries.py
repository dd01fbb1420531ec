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
from uuid import UUID, uuid4

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events import (
    AlertRaisedV1,
    Event,
    NotificationSuppressedV1,
    TicketAssignedV1,
    TicketCreatedV1,
    TicketCustomerRepliedV1,
    TicketRepliedV1,
    TicketResolvedV1,
    TicketSlaBreachedV1,
    TicketSlaWarningV1,
)
from closedloop.metrics import NOTIFICATIONS
from closedloop.wakeup import wake_after_commit
from notify import nospam, templating, threads
from notify.channels import email_payload, slack_payload
from notify.dispatcher import DELIVERIES_CHANNEL
from notify.models import Delivery, Subscription, WebhookEndpoint, outbox
from notify.sealed import slack_name
from notify.settings import NotifySettings

log = logging.getLogger(__name__)

# Where a session keeps the endpoints and subscriptions it read in its current transaction (_targets).
TARGETS_KEY = "notify.planner.targets"


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
    audience: str = "internal"  # customer, internal or subscriber


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
        address = _email(event.ticket.customer.email)
        return [Intent("email", address, key, customer_language(event), customer_timezone(event),
                       audience="customer")] if address else []
    if isinstance(event, TicketAssignedV1):
        address = _email(getattr(event, "assignee_email", None), getattr(ticket, "assignee_email", None),
                         event.assignee)
        return [Intent("email", address, key)] if address else []
    if isinstance(event, TicketSlaWarningV1 | TicketSlaBreachedV1):
        address = _email(getattr(ticket, "team_lead_email", None), event.ticket.team_lead,
                         getattr(event, "escalated_to", None), settings.team_lead_emails.get(event.ticket.team))
        return [Intent("email", address, key)] if address else []
    if isinstance(event, AlertRaisedV1):
        intents = []
        if settings.ops_slack_webhook_url:
            intents.append(Intent("slack", slack_name(settings.ops_slack_webhook_url), key))
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


async def plan_deliveries(session: AsyncSession, event: Event, settings: NotifySettings) -> list[Delivery]:
    """The deliveries for one event (webhooks, subscriptions, defaults), added to the consumer's session."""
    now = datetime.now(UTC)
    ticket = getattr(event, "ticket", None)
    # Events without a snapshot (ticket.recategorized.v1) still name their ticket: erasure finds them by it.
    named = getattr(event, "ticket_id", None)
    ticket_id = str(ticket.ticket_id) if ticket is not None else (str(named) if named is not None else None)
    planned: list[Delivery] = []

    endpoints, subscriptions = await _targets(session)
    endpoints = dict(endpoints)
    hooked = [e for e in endpoints.values() if matches(e.event_types, event.nats_subject)]
    intents = default_intents(event, settings)
    for subscription in subscriptions:
        if not subscription_matches(subscription, event):
            continue
        if subscription.channel == "webhook":
            endpoint = endpoints.get(subscription.target)
            if endpoint is not None and endpoint not in hooked:
                hooked.append(endpoint)
            continue
        intents.append(Intent(subscription.channel, subscription.target,
                              subscription.template_key or templating.GENERIC_KEY,
                              subscription.language, subscription.timezone, subscription.id,
                              audience="subscriber"))
    if isinstance(event, TicketCustomerRepliedV1) and event.message_id:
        await threads.record(session, ticket_id, event.message_id, "in", None, now)  # type: ignore[arg-type]
    if isinstance(event, TicketRepliedV1):
        planned += await _reply_to_customer(session, event, endpoints, hooked, intents, now)

    for endpoint in hooked:
        delivery_id = str(uuid4())
        planned.append(_add(session, Delivery(
            id=delivery_id, channel="webhook", endpoint_id=endpoint.id, recipient=endpoint.url,
            target=endpoint.url, payload=webhook_body(delivery_id, event), status="pending",
            next_attempt_at=now, audience="subscriber"), event, ticket_id, now))
    seen: set[tuple[str, str, str]] = set()
    for intent in intents:
        if (intent.channel, intent.recipient, intent.template_key) in seen:
            continue  # a default and a subscription naming the same person: one message
        seen.add((intent.channel, intent.recipient, intent.template_key))
        planned.append(await _notification(session, event, intent, ticket_id, now, settings))
    return planned


async def _targets(session: AsyncSession) -> tuple[dict[str, WebhookEndpoint], list[Subscription]]:
    """The active endpoints and subscriptions, read once per transaction: the consumer plans a whole
    batch of events in one, and two queries per event were a large part of notify's CPU per webhook."""
    transaction = session.sync_session.get_transaction()
    cached = session.info.get(TARGETS_KEY)
    if cached is None or cached[0] is not transaction:
        endpoints = {e.id: e for e in await session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True)))}
        subscriptions = list(await session.scalars(select(Subscription).where(Subscription.active.is_(True))
                                                   .order_by(Subscription.created_at)))
        cached = (transaction, endpoints, subscriptions)
        session.info[TARGETS_KEY] = cached
    return cached[1], cached[2]


async def _reply_to_customer(session: AsyncSession, event: TicketRepliedV1,
                             endpoints: dict[str, WebhookEndpoint], hooked: list[WebhookEndpoint],
                             intents: list[Intent], now: datetime) -> list[Delivery]:
    """The customer is answered over the channel the feedback came from: a partner's endpoint for
    the channel (chat, app, ...) gets the reply as a signed webhook; an e-mail ticket, or any
    other ticket of a customer with an address, gets a threaded e-mail. With no way to reach the
    customer, a suppressed delivery records why (and ticketing shows the reply as undelivered)."""
    ticket = event.ticket
    partners = [e for e in endpoints.values() if event.channel in (e.customer_channels or [])]
    if event.channel != "email" and partners:
        planned = []
        for endpoint in partners:
            if endpoint in hooked:  # it subscribed to the event anyway: that delivery is the reply
                hooked.remove(endpoint)
            delivery_id = str(uuid4())
            planned.append(_add(session, Delivery(
                id=delivery_id, channel="webhook", endpoint_id=endpoint.id, recipient=endpoint.url,
                target=endpoint.url, payload=webhook_body(delivery_id, event), status="pending",
                next_attempt_at=now, audience="customer", template_key=event.nats_subject),
                event, str(ticket.ticket_id), now))
        return planned
    address = _email(ticket.customer.email)
    if address:
        intents.insert(0, Intent("email", address, event.nats_subject, customer_language(event),
                                 customer_timezone(event), audience="customer"))
        return []
    reason = f"no_route: no partner endpoint for channel {event.channel!r} and no customer e-mail address"
    delivery = _add(session, Delivery(
        id=str(uuid4()), channel="email" if event.channel == "email" else "webhook", endpoint_id=None,
        recipient=ticket.customer.id,
        target=ticket.customer.id, template_key=event.nats_subject, payload="", status="suppressed",
        next_attempt_at=now, reason=reason, audience="customer"), event, str(ticket.ticket_id), now)
    return [delivery]


def _add(session: AsyncSession, delivery: Delivery, event: Event, ticket_id: str | None,
         now: datetime) -> Delivery:
    delivery.source_event_id = str(event.event_id)
    delivery.event_type = event.nats_subject
    delivery.ticket_id = ticket_id
    delivery.attempts = 0
    delivery.created_at = now
    session.add(delivery)
    if delivery.status == "pending":
        wake_after_commit(session, DELIVERIES_CHANNEL)  # sent right after this commits, not at the next poll
    if delivery.status == "suppressed":
        NOTIFICATIONS.labels(delivery.channel, "suppressed").inc()
        if delivery.audience == "customer":  # ticketing shows such a reply as undelivered
            outbox.add(session, NotificationSuppressedV1(
                delivery_id=UUID(delivery.id), source_event_id=event.event_id, channel=delivery.channel,
                target=delivery.target, reason=delivery.reason or "", event_type=event.nats_subject,
                ticket_id=UUID(ticket_id) if ticket_id else None, to_customer=True))
    return delivery


async def _notification(session: AsyncSession, event: Event, intent: Intent, ticket_id: str | None,
                        now: datetime, settings: NotifySettings) -> Delivery:
    # The consumer may handle a batch without autoflush: what this batch planned must count below.
    await session.flush()
    context = templating.build_context(event, settings, intent.recipient)
    language, payload, error = intent.language, "", None
    delivery_id = str(uuid4())
    try:
        rendered = await templating.render(session, intent.template_key, intent.channel, intent.language,
                                           context, settings.fallback_language)
        language = rendered.language
        if intent.channel == "email" and intent.audience == "customer" and ticket_id is not None:
            subject, headers = await threads.customer_email(session, event, rendered.subject, delivery_id,
                                                            settings, now)
            payload = email_payload(subject, rendered.text, rendered.html, headers)
        elif intent.channel == "email":
            payload = email_payload(rendered.subject, rendered.text, rendered.html)
        else:
            payload = slack_payload(rendered.text)
    except templating.TemplateInvalid as exc:
        error = f"template_error: {exc}"
    if error:
        decision = nospam.Decision("suppressed", now, error)
    elif intent.channel == "email" and not settings.smtp_host:
        decision = nospam.Decision("suppressed", now, "channel_disabled: e-mail is not configured "
                                                      "(NOTIFY_SMTP_HOST)")
    elif isinstance(event, TicketRepliedV1) and intent.audience == "customer":
        # A message of a conversation the customer started: never capped, held or de-duplicated.
        decision = nospam.Decision("pending", now)
    else:
        decision = await nospam.decide(session, settings, channel=intent.channel, recipient=intent.recipient,
                                       template_key=intent.template_key, ticket_id=ticket_id,
                                       urgent=is_urgent(event), timezone=intent.timezone, now=now)
    if decision.status != "suppressed" and intent.channel == "email" and '"Message-ID"' in payload:
        # Part of the conversation from now on: the next e-mail answers this one.
        await threads.record(session, ticket_id, json.loads(payload)["headers"]["Message-ID"], "out",  # type: ignore[arg-type]
                             delivery_id, now)
    if decision.status == "suppressed":
        log.info("notification suppressed", extra={"recipient": intent.recipient, "reason": decision.reason,
                                                   "event_type": event.nats_subject})
    return _add(session, Delivery(
        id=delivery_id, channel=intent.channel, endpoint_id=None, recipient=intent.recipient,
        target=intent.recipient, subscription_id=intent.subscription_id, template_key=intent.template_key,
        language=language, payload=payload, status=decision.status, next_attempt_at=decision.next_attempt_at,
        reason=decision.reason, audience=intent.audience), event, ticket_id, now)


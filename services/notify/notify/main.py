"""The notify application: `uvicorn --factory notify.main:create_app`."""

import logging
from pathlib import Path

from fastapi import FastAPI

from closedloop.api import create_service_app
from closedloop.erasure import subscribe_erasure
from closedloop.events import TICKET_EVENTS, AlertRaisedV1, CustomerChurnRiskDetectedV1, OpportunityDetectedV1
from closedloop.messaging.consumer import Subscription
from closedloop.runtime import ServiceRuntime
from closedloop.secretbox import Keyring
from notify import sealed
from notify.api import deliveries, subscriptions, templates, webhooks
from notify.dispatcher import Dispatcher
from notify.handlers import Handlers
from notify.models import InboxMessage, outbox
from notify.retention import notify_retention_rules
from notify.retry import RetryPolicy
from notify.rights import erase_customer
from notify.settings import NotifySettings
from notify.templates import seed_default_templates
from notify.webhooks import seed_webhooks

SERVICE_DIR = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    settings = settings or NotifySettings()
    # Seals webhook secrets and Slack hook URLs (notify.sealed); production without NOTIFY_SECRET_KEYS stops here.
    keyring = Keyring.from_settings(settings)
    runtime = ServiceRuntime(settings, SERVICE_DIR, outbox, InboxMessage)
    handlers = Handlers(settings)
    runtime.subscribe(Subscription(
        durable="notify-ticket-events", stream="TICKET", filter_subject="ticket.>",
        subjects={event.nats_subject: event for event in TICKET_EVENTS}, handler=handlers.on_ticket_event,
    ))
    runtime.subscribe(Subscription(
        durable="notify-alert-raised", stream="ALERT",
        subjects={AlertRaisedV1.nats_subject: AlertRaisedV1}, handler=handlers.on_alert_raised,
    ))
    # From insights, for webhooks (e.g. a CRM) and subscriptions that ask for them by event type.
    runtime.subscribe(Subscription(
        durable="notify-churn-risk-detected", stream="CUSTOMER",
        subjects={CustomerChurnRiskDetectedV1.nats_subject: CustomerChurnRiskDetectedV1},
        handler=handlers.on_churn_risk_detected,
    ))
    runtime.subscribe(Subscription(
        durable="notify-opportunity-detected", stream="OPPORTUNITY",
        subjects={OpportunityDetectedV1.nats_subject: OpportunityDetectedV1}, handler=handlers.on_opportunity_detected,
    ))
    subscribe_erasure(runtime, erase_customer)
    for rule in notify_retention_rules(settings.delivered_retention_days):
        runtime.retention.add(rule)
    runtime.add_worker(Dispatcher(
        runtime.sessions,
        RetryPolicy(settings.webhook_max_attempts, settings.webhook_backoff_base_seconds,
                    settings.webhook_backoff_max_seconds),
        settings, keyring=keyring, poll_seconds=settings.dispatch_poll_seconds,
        concurrency=settings.dispatch_concurrency,
        per_target=settings.dispatch_per_target_concurrency,
    ))

    async def setup(runtime: ServiceRuntime, app: FastAPI) -> None:
        if settings.run_migrations:
            await runtime.migrate()
        async with runtime.sessions() as session, session.begin():
            resealed = await sealed.reseal_all(session, keyring)  # after a key rotation: under the new first key
        if resealed:
            log.info("secrets re-sealed under the first key", extra={"count": resealed})
        await seed_default_templates(runtime.sessions)
        if settings.seed_webhook_urls:
            await seed_webhooks(runtime.sessions, keyring, settings.seed_webhook_urls)

    app = create_service_app(
        runtime, title="Closedloop notify",
        description="Tells people about tickets and alerts: e-mail (SMTP), Slack-compatible hooks and HMAC-signed "
                    "webhooks, chosen by subscriptions and defaults, rendered from editable Jinja2 templates in "
                    "the recipient's language, retried with back-off behind a circuit breaker per target, capped "
                    "against spam; every delivery (and every suppressed one, with its reason) is recorded and "
                    "failed ones can be replayed.",
        routers=[webhooks.router, subscriptions.router, templates.router, deliveries.router], setup=setup,
    )
    app.state.keyring = keyring
    return app

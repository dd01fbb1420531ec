"""For tests and the benchmark: fill the read model with the consumers' own handlers, without a broker
(the replay test goes through NATS)."""

from closedloop.events import Event
from insights.handlers import Handlers


async def load_events(sessions, events: list[Event], batch: int = 500,
                      opportunity_categories=("product/feature_request", "product/usability")) -> None:
    """Apply events with the consumers' own handlers, one transaction per batch and stream, in order."""
    handlers = Handlers(list(opportunity_categories))
    routes = {"feedback": (handlers.on_feedback_event, handlers.prepare_feedback_event),
              "ticket": (handlers.on_ticket_event, handlers.prepare_ticket_event),
              "notification": (handlers.on_notification_event, None)}
    for start in range(0, len(events), batch):
        chunk = events[start:start + batch]
        for domain, (handler, prepare) in routes.items():
            mine = [e for e in chunk if e.nats_subject.startswith(domain + ".")]
            if not mine:
                continue
            prepared = await prepare(mine) if prepare else None
            async with sessions() as session, session.begin():
                for event in mine:
                    await handler(session, event, prepared)

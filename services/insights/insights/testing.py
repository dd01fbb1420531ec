"""For tests and the benchmark: fill the read model with the consumers' own handlers, without a broker
(the replay test goes through NATS)."""

from functools import partial

from closedloop.events import Event
from insights.readmodel import (
    on_feedback_event,
    on_notification_event,
    on_ticket_event,
    prepare_feedback_batch,
    prepare_ticket_batch,
)


async def load_events(sessions, events: list[Event], batch: int = 500,
                      opportunity_categories=("product/feature_request", "product/usability")) -> None:
    """Apply events with the consumers' own handlers, one transaction per batch and stream, in order."""
    feedback = partial(on_feedback_event, list(opportunity_categories))
    routes = {"feedback": (feedback, prepare_feedback_batch), "ticket": (on_ticket_event, prepare_ticket_batch),
              "notification": (on_notification_event, None)}
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

"""The outbox and inbox tables mapped onto one service's own declarative base, and its outbox."""

from closedloop.messaging.outbox import Outbox
from closedloop.messaging.tables import InboxMixin, OutboxMixin


def messaging_models(base: type) -> tuple[type[OutboxMixin], type[InboxMixin], Outbox]:
    """`OutboxMessage, InboxMessage, outbox = messaging_models(Base)` in a service's models module."""
    module = {"__module__": base.__module__}
    outbox_model = type("OutboxMessage", (OutboxMixin, base), dict(module))
    inbox_model = type("InboxMessage", (InboxMixin, base), dict(module))
    return outbox_model, inbox_model, Outbox(outbox_model)

"""Live updates: ticket and alert events from NATS fanned out to every open browser as server-sent events.

Each console process subscribes with plain NATS (not a durable JetStream consumer): every replica must
see every event for the browsers connected to it, and a missed event costs nothing — the page shows
the services' current state on its next load. Slow browsers are dropped rather than let queues grow."""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from nats.aio.msg import Msg

from closedloop.messaging.broker import Broker

log = logging.getLogger(__name__)

SUBJECTS = ("ticket.>", "alert.>", "notification.>")
QUEUE_SIZE = 200
HEARTBEAT_SECONDS = 15.0
# A stream ends after this long and the browser reconnects (EventSource does it by itself, `retry` below):
# no connection outlives a deploy's graceful-shutdown window by much, and load rebalances over replicas.
STREAM_SECONDS = 300.0


def summarise(subject: str, data: dict[str, Any]) -> dict[str, Any]:
    """What a browser needs to decide whether to refresh a list: no customer data beyond the title."""
    ticket = data.get("ticket") or {}
    summary: dict[str, Any] = {
        "type": subject.rsplit(".", 1)[0],  # "ticket.created"
        "ticket_id": str(ticket.get("ticket_id") or data.get("ticket_id") or ""),
        "title": ticket.get("title"), "priority": ticket.get("priority"), "team": ticket.get("team"),
        "status": ticket.get("status"), "assignee": ticket.get("assignee") or data.get("assignee"),
        "occurred_at": data.get("occurred_at"),
    }
    if subject.startswith("ticket.sla_"):
        summary.update(target=data.get("target"), due_at=data.get("due_at"))
    if subject.startswith("alert."):
        summary.update(kind=data.get("kind"), severity=data.get("severity"), message=data.get("message"))
    if subject.startswith("notification."):
        summary.update(channel=data.get("channel"), source_event_id=str(data.get("source_event_id") or ""))
    return {k: v for k, v in summary.items() if v not in (None, "")}


class LiveHub:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._subscribe(), name="console-live")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for queue in list(self.listeners):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait({"type": "bye"})

    async def _subscribe(self) -> None:
        for subject in SUBJECTS:
            await self.broker.subscribe_core(subject, self._on_message)
        log.info("live updates subscribed", extra={"subjects": list(SUBJECTS)})

    async def _on_message(self, msg: Msg) -> None:
        try:
            data = json.loads(msg.data)
        except ValueError:
            return
        self.publish(summarise(msg.subject, data if isinstance(data, dict) else {}))

    def publish(self, event: dict[str, Any]) -> None:
        for queue in list(self.listeners):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.listeners.discard(queue)  # that browser reconnects and reloads its lists

    async def stream(self) -> AsyncIterator[str]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.listeners.add(queue)
        ends = asyncio.get_running_loop().time() + STREAM_SECONDS
        try:
            yield "retry: 3000\n: connected\n\n"
            while queue in self.listeners and asyncio.get_running_loop().time() < ends:
                try:
                    event = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
                if event.get("type") == "bye":
                    return
                yield f"data: {json.dumps(event)}\n\n"
        finally:
            self.listeners.discard(queue)

"""How far behind the streams the read model is, and rebuilding it by replaying them from the start."""

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from nats.js.errors import NotFoundError

from closedloop.messaging.consumer import Subscription
from closedloop.runtime import ServiceRuntime
from insights.readmodel import clear_read_model

log = logging.getLogger(__name__)


@dataclass
class ConsumerLag:
    durable: str
    stream: str
    pending: int | None  # messages in the stream not yet delivered to this consumer
    unacknowledged: int | None  # delivered, not yet handled
    stream_last_sequence: int | None
    handled_up_to: int | None  # the stream sequence every message up to which is handled
    error: str | None = None


async def consumer_lags(runtime: ServiceRuntime, subscriptions: list[Subscription]) -> list[ConsumerLag]:
    lags = []
    for sub in subscriptions:
        try:
            js = runtime.broker.js
            info = await js.consumer_info(sub.stream, sub.durable)
            stream = await js.stream_info(sub.stream)
            lags.append(ConsumerLag(sub.durable, sub.stream, info.num_pending, info.num_ack_pending,
                                    stream.state.last_seq, info.ack_floor.stream_seq if info.ack_floor else None))
        except NotFoundError:  # not subscribed yet (just started, or rebuilding)
            lags.append(ConsumerLag(sub.durable, sub.stream, None, None, None, None, "consumer not created yet"))
        except Exception as exc:
            lags.append(ConsumerLag(sub.durable, sub.stream, None, None, None, None, f"{type(exc).__name__}: {exc}"))
    return lags


class Rebuilder:
    """Stops the consumers, empties the read model, deletes the durable consumers and starts new ones, which
    read every stream from its first message. Run it on one replica (the others' consumers of the same
    durables are deleted under them and resubscribe). What was raised (alerts, churn flags, opportunities)
    is kept, so the replay raises nothing twice."""

    def __init__(self, runtime: ServiceRuntime, subscriptions: list[Subscription]) -> None:
        self.runtime, self.subscriptions = runtime, subscriptions
        self._lock = asyncio.Lock()

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    async def rebuild(self) -> None:
        async with self._lock:
            runtime = self.runtime
            await asyncio.gather(*(consumer.stop() for consumer in runtime.consumers))
            for sub in self.subscriptions:
                with contextlib.suppress(NotFoundError):
                    await runtime.broker.js.delete_consumer(sub.stream, sub.durable)
            async with runtime.sessions() as session, session.begin():
                await clear_read_model(session, [sub.durable for sub in self.subscriptions])
            runtime.consumers = []
            for sub in self.subscriptions:
                runtime.subscribe(sub)
            for consumer in runtime.consumers:
                consumer.start()
            log.info("read model cleared; replaying the streams from the start")

"""Everything a service process runs besides its routes: database, broker, outbox relay,
consumers and background workers, started and stopped in the right order."""

import asyncio
import logging
from pathlib import Path
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.config import ServiceSettings
from closedloop.db import create_engine, dispose, read_session_factory, run_migrations, session_factory
from closedloop.messaging.broker import Broker
from closedloop.messaging.consumer import ConsumerOptions, ConsumerRunner, Subscription
from closedloop.messaging.outbox import Outbox, OutboxRelay
from closedloop.messaging.tables import InboxMixin
from closedloop.retention import RetentionWorker, inbox_rule, published_outbox_rule

log = logging.getLogger(__name__)


class Worker(Protocol):
    def start(self) -> None: ...
    async def stop(self) -> None: ...


class ServiceRuntime:
    def __init__(self, settings: ServiceSettings, service_dir: Path, outbox: Outbox,
                 inbox_model: type[InboxMixin]) -> None:
        self.settings = settings
        self.service_dir = service_dir
        self.outbox = outbox
        self.inbox_model = inbox_model
        self.engine = create_engine(settings.database_url, busy_timeout=settings.database_busy_timeout_seconds,
                                    pool_timeout=settings.database_pool_timeout_seconds)
        self.sessions = session_factory(self.engine)
        self.read_sessions = read_session_factory(self.engine)
        self.broker = Broker(settings.nats_url, settings.service_name, settings.stream_replicas,
                             user=settings.nats_user or None,
                             password=settings.nats_password.get_secret_value() or None,
                             tls_ca_file=settings.nats_tls_ca_file or None,
                             stream_max_age_days=settings.stream_max_age_days)
        self.relay = OutboxRelay(outbox, self.sessions, self.broker,
                                 poll_seconds=settings.outbox_poll_seconds,
                                 batch_size=settings.outbox_batch_size)
        self.consumer_options = ConsumerOptions(
            batch_size=settings.consumer_batch_size,
            fetch_timeout=settings.consumer_fetch_timeout_seconds,
            ack_wait=settings.consumer_ack_wait_seconds,
            max_deliver=settings.consumer_max_deliver,
            backoff=tuple(settings.consumer_backoff_seconds),
        )
        self.consumers: list[ConsumerRunner] = []
        self.workers: list[Worker] = []
        # Services add their own rules (original texts, deliveries) with `retention.add`.
        self.retention = RetentionWorker(self.sessions, settings.retention_interval_seconds)
        self.retention.add(published_outbox_rule(outbox.model, settings.outbox_retention_days))
        self.retention.add(inbox_rule(inbox_model, settings.inbox_retention_days))
        self.workers.append(self.retention)

    def subscribe(self, subscription: Subscription) -> None:
        self.consumers.append(ConsumerRunner(self.settings.service_name, subscription, self.broker,
                                             self.sessions, self.inbox_model, self.consumer_options,
                                             read_sessions=self.read_sessions))

    def add_worker(self, worker: Worker) -> None:
        self.workers.append(worker)

    def session(self) -> AsyncSession:
        return self.sessions()

    async def migrate(self) -> None:
        await run_migrations(self.service_dir, self.settings.database_url)

    async def start(self) -> None:
        if self.settings.run_migrations:
            await self.migrate()
        self.broker.start()
        self.relay.start()
        for consumer in self.consumers:
            consumer.start()
        for worker in self.workers:
            worker.start()
        log.info("service started", extra={"consumers": [c.sub.durable for c in self.consumers]})

    async def stop(self) -> None:
        # Consumers first (finish or nack what they hold), then workers, then flush the outbox.
        await asyncio.gather(*(consumer.stop() for consumer in self.consumers))
        await asyncio.gather(*(worker.stop() for worker in self.workers))
        await self.relay.stop()
        await self.broker.close()
        await dispose(self.engine)
        log.info("service stopped")

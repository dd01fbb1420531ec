"""The NATS JetStream connection of one service.

The broker connects in the background and keeps reconnecting, so a service starts (and serves
HTTP, and accepts feedback into its outbox) while NATS is down; `/readyz` reports the broker state.
"""

import asyncio
import contextlib
import logging
import ssl

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError

from closedloop.config import DEFAULT_STREAM_MAX_AGE_DAYS
from closedloop.events import STREAMS

log = logging.getLogger(__name__)

# Long enough that a relay retrying after a crash or a network split is still deduplicated.
DUPLICATE_WINDOW_SECONDS = 15 * 60


class BrokerUnavailable(RuntimeError):
    pass


class Broker:
    def __init__(self, url: str, name: str, stream_replicas: int = 1, *, user: str | None = None,
                 password: str | None = None, tls_ca_file: str | None = None,
                 stream_max_age_days: float = DEFAULT_STREAM_MAX_AGE_DAYS) -> None:
        self.url = url
        self.name = name
        self.stream_replicas = stream_replicas
        self.stream_max_age_days = stream_max_age_days
        # Credentials and TLS for a NATS that requires them (the Kubernetes overlays); the server's
        # certificate is checked against `tls_ca_file`, host name included.
        self._auth = {"user": user, "password": password} if user else {}
        self._tls = ssl.create_default_context(cafile=tls_ca_file) if tls_ca_file else None
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._connected = asyncio.Event()
        self._connect_task: asyncio.Task[None] | None = None

    @property
    def is_connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def js(self) -> JetStreamContext:
        if self._js is None or not self.is_connected:
            raise BrokerUnavailable("not connected to NATS")
        return self._js

    def start(self) -> None:
        self._connect_task = asyncio.create_task(self._connect_forever(), name="nats-connect")

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def _connect_forever(self) -> None:
        delay = 0.2
        while self._nc is None:
            try:
                nc = await nats.connect(
                    servers=[self.url],
                    name=self.name,
                    connect_timeout=2,
                    reconnect_time_wait=1,
                    max_reconnect_attempts=-1,
                    allow_reconnect=True,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    tls=self._tls,
                    **self._auth,
                )
                js = nc.jetstream(timeout=5)
                await ensure_streams(js, self.stream_replicas, self.stream_max_age_days)
                self._nc, self._js = nc, js
                self._connected.set()
                log.info("connected to NATS", extra={"url": self.url})
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("NATS not reachable yet, retrying", extra={"url": self.url, "error": str(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _on_error(self, exc: Exception) -> None:
        log.debug("NATS error: %s", exc)

    async def _on_disconnected(self) -> None:
        log.warning("disconnected from NATS")

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS")

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str], msg_id: str) -> None:
        # Nats-Msg-Id makes JetStream drop a second publish of the same event within the window.
        await self.js.publish(subject, payload, timeout=5, headers={**headers, "Nats-Msg-Id": msg_id})

    async def subscribe_core(self, subject: str, callback) -> None:  # type: ignore[no-untyped-def]
        """A plain NATS subscription (no JetStream consumer): every subscribed process gets every message
        published from now on; nothing is acked, kept or redelivered. Only for fan-out that may miss
        messages while it is down, such as the console's live updates to browsers. Waits for the connection;
        nats-py subscribes again by itself after a reconnect."""
        await self.wait_connected()
        assert self._nc is not None
        await self._nc.subscribe(subject, cb=callback)

    async def close(self) -> None:
        if self._connect_task is not None:
            self._connect_task.cancel()
            await asyncio.gather(self._connect_task, return_exceptions=True)
        if self._nc is not None and not self._nc.is_closed:
            # Flush so the last acks and publishes leave, then close. (drain() would wait its full
            # timeout for pull subscriptions that have requests outstanding.)
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=2)
            await self._nc.close()


async def ensure_streams(js: JetStreamContext, replicas: int = 1,
                         max_age_days: float = DEFAULT_STREAM_MAX_AGE_DAYS) -> None:
    """Create the domain streams, or bring an existing one's config up to date. `max_age_days` > 0: the
    server removes each message that long after it was stored (0 keeps every message)."""
    for name, subjects in STREAMS.items():
        config = StreamConfig(
            name=name,
            subjects=subjects,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            num_replicas=replicas,
            max_age=max_age_days * 86400,  # nats-py sends 0, which the server reads as no limit
        )
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)

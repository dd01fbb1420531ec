"""The pipeline benchmark: the four services as separate processes, fed by an open-loop load generator.

Open loop: item i is posted at t0 + i / rate whatever happened to the items before it (a closed loop that
waits for each answer slows down with the system and hides its queues). Latencies come from the
services' own timestamps, read from their databases after each step: ingest `feedback.received_at`,
ticketing `tickets.created_at`, notify `deliveries.delivered_at` (the ticket.created.v1 webhook to the
local receiver). The POST latency is the generator's own clock.

A rate is sustainable when the lag (items posted whose webhook has not arrived yet, sampled every
second) stops growing: its mean over the last quarter of the step is at most 1.2 × its mean over the
second quarter plus half a second's worth of items, and the generator kept to the schedule.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import aiohttp
from receiver import Receiver
from sqlalchemy import text

from closedloop.config import DEV_API_KEY
from closedloop.db import create_engine
from closedloop.devtools.nats_server import NatsServer, free_port
from closedloop.devtools.processes import SERVICES, ServiceProcess, service_env

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE_PREFIX = "speed_bench_"
# A step whose ingest POSTs wait longer than this at p99 has work queued in front of ingest: not sustainable.
MAX_SUSTAINABLE_POST_P99_MS = 1000.0


# --- figures ---------------------------------------------------------------------------------------------

def quantiles(values: list[float]) -> dict[str, float]:
    """p50 / p90 / p99 / max in milliseconds."""
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": ordered[-1] * 1000}


def show(values: list[float]) -> str:
    q = quantiles(values)
    if not q:
        return "n/a"
    return " / ".join(f"{q[name]:,.0f}" for name in ("p50", "p90", "p99", "max")) + " ms"


# --- the stack ---------------------------------------------------------------------------------------------

@dataclass
class Stack:
    backend: str
    scratch: Path
    nats: NatsServer
    receiver: Receiver
    services: dict[str, ServiceProcess]
    database_urls: dict[str, str]

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) each service process has used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = {}
        for name, service in self.services.items():
            try:
                fields = Path(f"/proc/{service.process.pid}/stat").read_text().rsplit(")", 1)[1].split()  # type: ignore[union-attr]
                used[name] = (int(fields[11]) + int(fields[12])) / ticks
            except (OSError, IndexError, AttributeError):
                used[name] = float("nan")
        return used

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of each service process, in MB."""
        sizes = {}
        for name, service in self.services.items():
            try:
                status = Path(f"/proc/{service.process.pid}/status").read_text()  # type: ignore[union-attr]
                kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
                sizes[name] = kb / 1024
            except (OSError, StopIteration, AttributeError):
                sizes[name] = float("nan")
        return sizes


def _postgres_url(database: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


async def _recreate_postgres_databases(names: list[str]) -> None:
    engine = create_engine(POSTGRES_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for name in names:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


def database_urls(backend: str, scratch: Path, services: tuple[str, ...]) -> dict[str, str]:
    if backend == "sqlite":
        return {name: f"sqlite+aiosqlite:///{scratch / f'{name}.db'}" for name in services}
    names = {name: f"{DATABASE_PREFIX}{name}" for name in services}
    asyncio.run(_recreate_postgres_databases(list(names.values())))
    return {name: _postgres_url(database) for name, database in names.items()}


@contextmanager
def running_stack(backend: str, services: tuple[str, ...] = SERVICES,
                  extra: dict[str, dict[str, str]] | None = None,
                  before_services: Callable[[str], None] | None = None) -> Iterator[Stack]:
    """NATS, the local webhook receiver and `services`, each its own process, on fresh databases.
    `before_services(nats_url)` runs once NATS is up, before any service starts."""
    with tempfile.TemporaryDirectory(prefix="closedloop-bench-") as directory:
        scratch = Path(directory)
        urls = database_urls(backend, scratch, services)
        nats = NatsServer(free_port(), scratch / "jetstream").start()
        receiver = Receiver().start()
        processes: dict[str, ServiceProcess] = {}
        try:
            if before_services is not None:
                before_services(nats.url)
            for name in services:
                prefix = name.upper() + "_"
                # The load comes from one key and one address: the abuse limits (closedloop.ratelimit, 20/s per
                # key by default) would answer 429 to most of it, and this measures capacity, not the limiter.
                env_extra = {prefix + "LOG_LEVEL": "WARNING", prefix + "LOG_JSON": "false",
                             prefix + "RATE_LIMIT_ENABLED": "false"}
                if name == "notify":
                    env_extra["NOTIFY_SEED_WEBHOOK_URLS"] = receiver.url
                env_extra.update((extra or {}).get(name, {}))
                env = service_env(name, database_url=urls[name], nats_url=nats.url, api_key=DEV_API_KEY,
                                  extra=env_extra)
                processes[name] = ServiceProcess(name, free_port(), env, scratch / f"{name}.log").start()
            for process in processes.values():
                process.wait_ready(timeout=240)
            yield Stack(backend, scratch, nats, receiver, processes, urls)
        finally:
            for process in processes.values():
                process.stop()
            receiver.stop()
            nats.stop()


# --- load ----------------------------------------------------------------------------------------------------

TEMPLATES = [
    "{}", "Hi, {} and I need help.", "{}. This is the second time this week!", "Quick question: {}",
    "{} — please fix this, I rely on your app every day.",
]


def feedback_texts(n: int, tag: str) -> list[str]:
    from classify.taxonomy import load_taxonomy

    phrases = [example for node in load_taxonomy().leaves() for example in node.examples]
    return [TEMPLATES[i % len(TEMPLATES)].format(phrases[i % len(phrases)]) + f" (ref {tag}-{i})"
            for i in range(n)]


@dataclass
class StepResult:
    rate: float
    seconds: float
    posted: list[str] = field(default_factory=list)  # feedback ids accepted
    post_latencies: list[float] = field(default_factory=list)
    post_errors: Counter[str] = field(default_factory=Counter)  # by kind: "429", "ReadTimeout", ...
    achieved_rate: float = 0.0
    lag_samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, lag)
    aborted: bool = False
    drained: bool = False
    received_to_ticket: list[float] = field(default_factory=list)
    ticket_to_delivered: list[float] = field(default_factory=list)
    received_to_delivered: list[float] = field(default_factory=list)
    missing_tickets: int = 0
    missing_deliveries: int = 0
    duplicate_deliveries: int = 0
    cpu_ms_per_item: dict[str, float] = field(default_factory=dict)
    generator_cpu_ms_per_item: float = 0.0  # this process, posting (it shares the cores with the services)
    load_average: float = 0.0

    @property
    def sustainable(self) -> bool:
        if self.aborted or self.achieved_rate < 0.95 * self.rate or self.post_errors:
            return False
        # Items queued in front of ingest are lag too, though no service has stamped them yet: a rate whose
        # POSTs wait seconds is not kept up with, however short the queues behind ingest stay.
        if self.post_latencies and quantiles(self.post_latencies)["p99"] > MAX_SUSTAINABLE_POST_P99_MS:
            return False
        span = self.seconds
        middle = [lag for t, lag in self.lag_samples if span * 0.25 <= t < span * 0.5]
        last = [lag for t, lag in self.lag_samples if t >= span * 0.75]
        if not middle or not last:
            return False
        return statistics.fmean(last) <= 1.2 * statistics.fmean(middle) + 0.5 * self.rate

    def _errors(self) -> str:
        if not self.post_errors:
            return ""
        kinds = ", ".join(f"{kind}: {n}" for kind, n in sorted(self.post_errors.items()))
        return f", {self.post_errors.total()} POST errors ({kinds})"

    def summary(self) -> str:
        lags = [lag for _, lag in self.lag_samples]
        lines = [
            f"    posted {len(self.posted)} at {self.achieved_rate:.1f}/s (target {self.rate:g}/s, "
            f"{self.seconds:g} s){self._errors()}; "
            f"lag max {max(lags, default=0)}, at end {lags[-1] if lags else 0}"
            f"{'; ABORTED (lag over the limit)' if self.aborted else ''} → "
            f"{'sustainable' if self.sustainable else 'NOT sustainable'}",
            "    CPU ms per item: " + ", ".join(f"{name} {ms:.1f}" for name, ms in self.cpu_ms_per_item.items())
            + f"; load generator {self.generator_cpu_ms_per_item:.1f}"
            + f" (machine load average {self.load_average:.1f} on {os.cpu_count()} cores)",
            "    p50 / p90 / p99 / max:",
            f"      ingest POST            {show(self.post_latencies)}",
            f"      received → ticket      {show(self.received_to_ticket)}",
            f"      ticket → delivered     {show(self.ticket_to_delivered)}",
            f"      received → delivered   {show(self.received_to_delivered)}",
        ]
        if self.missing_tickets or self.missing_deliveries or self.duplicate_deliveries or not self.drained:
            lines.append(f"      incomplete: {self.missing_tickets} without ticket, {self.missing_deliveries} "
                         f"without delivery, {self.duplicate_deliveries} duplicate deliveries"
                         f"{'' if self.drained else ' (not drained in time)'}")
        return "\n".join(lines)


async def open_loop(stack: Stack, rate: float, seconds: float, tag: str, abort_lag_seconds: float = 5.0,
                    drain_seconds: float = 120.0) -> StepResult:
    """Post `rate` items/s for `seconds`, sampling the lag every second; then wait for the webhooks."""
    result = StepResult(rate, seconds)
    count = max(1, int(rate * seconds))
    texts = feedback_texts(count, tag)
    delivered_before = stack.receiver.count()
    cpu_before = stack.cpu_seconds()
    generator_cpu_before = time.process_time()
    # aiohttp, not httpx: the generator runs on the cores it measures, and httpx spent a few ms of CPU
    # per request in its own bookkeeping (notify dropped it for the same reason, ADR 0013).
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(base_url=stack.services["ingest"].url, headers={"X-API-Key": DEV_API_KEY},
                                     timeout=aiohttp.ClientTimeout(total=30), connector=connector) as client:

        async def post(index: int) -> None:
            started = time.perf_counter()
            try:
                async with client.post("/v1/feedback", json={
                        "channel": "app", "text": texts[index], "customer": {"id": f"{tag}-{index}"}}) as response:
                    body = await response.json() if response.status == 202 else None
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.post_errors[type(exc).__name__] += 1
                return
            result.post_latencies.append(time.perf_counter() - started)
            if body is not None:
                result.posted.append(body["id"])
            else:
                result.post_errors[str(response.status)] += 1

        tasks: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        next_sample = 1.0
        for index in range(count):
            due = started + index / rate
            while (now := time.perf_counter()) < due:
                await asyncio.sleep(min(due - now, 0.05))
            elapsed = now - started
            if elapsed >= next_sample:
                next_sample += 1.0
                lag = len(result.posted) - (stack.receiver.count() - delivered_before)
                result.lag_samples.append((elapsed, lag))
                if lag > abort_lag_seconds * rate:  # far behind: unsustainable, no need to wait it out
                    result.aborted = True
                    break
            tasks.append(asyncio.create_task(post(index)))
        # Kept to the schedule if the last item left on time: the rate posts were started at.
        result.achieved_rate = len(tasks) / max(1e-9, time.perf_counter() - started + 1 / rate)
        await asyncio.gather(*tasks)
        result.generator_cpu_ms_per_item = (time.process_time() - generator_cpu_before) * 1000 / max(1, count)
        lag = len(result.posted) - (stack.receiver.count() - delivered_before)
        result.lag_samples.append((time.perf_counter() - started, lag))
    deadline = time.monotonic() + drain_seconds
    while stack.receiver.count() - delivered_before < len(result.posted) and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
    result.drained = stack.receiver.count() - delivered_before >= len(result.posted)
    await asyncio.sleep(0.5)  # the last outcomes reach notify's database
    cpu_after = stack.cpu_seconds()
    result.cpu_ms_per_item = {name: (cpu_after[name] - cpu_before[name]) * 1000 / max(1, len(result.posted))
                              for name in cpu_after}
    result.load_average = os.getloadavg()[0]
    await read_timestamps(stack, result)
    return result


async def _rows(url: str, query: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in (await connection.execute(text(query))).all()]
    finally:
        await engine.dispose()


def _utc(value: object) -> float:
    """A timestamp column as POSIX seconds (SQLite hands back strings, naive ones written as UTC)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


async def read_timestamps(stack: Stack, result: StepResult) -> None:
    """Per item: received → ticket created → webhook delivered, from the three services' databases."""
    wanted = set(result.posted)
    feedback = await _rows(stack.database_urls["ingest"], "SELECT id, received_at FROM feedback")
    received = {str(fid): _utc(at) for fid, at in feedback if str(fid) in wanted}
    tickets = await _rows(stack.database_urls["ticketing"],
                          "SELECT id, feedback_id, created_at FROM tickets WHERE feedback_id IS NOT NULL")
    ticket_of = {str(fid): (str(tid), _utc(at)) for tid, fid, at in tickets if str(fid) in wanted}
    deliveries = await _rows(stack.database_urls["notify"],
                             "SELECT ticket_id, delivered_at FROM deliveries WHERE channel = 'webhook' "
                             "AND event_type = 'ticket.created.v1'")
    delivered: dict[str, list[float]] = {}
    for ticket_id, at in deliveries:
        delivered.setdefault(str(ticket_id), []).append(_utc(at) if at is not None else float("nan"))
    for feedback_id in result.posted:
        if feedback_id not in ticket_of:
            result.missing_tickets += 1
            continue
        ticket_id, created = ticket_of[feedback_id]
        result.received_to_ticket.append(created - received[feedback_id])
        times = [t for t in delivered.get(ticket_id, []) if t == t]
        if not times:
            result.missing_deliveries += 1
            continue
        result.duplicate_deliveries += len(delivered[ticket_id]) - 1
        result.ticket_to_delivered.append(times[0] - created)
        result.received_to_delivered.append(times[0] - received[feedback_id])


async def drain(stack: Stack, seconds: float = 180.0) -> None:
    """Wait until the webhooks stop arriving (the backlog of an unsustainable step is worked off)."""
    last, quiet_since = -1, time.monotonic()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now_count = stack.receiver.count()
        if now_count != last:
            last, quiet_since = now_count, time.monotonic()
        elif time.monotonic() - quiet_since > 3.0:
            return
        await asyncio.sleep(0.5)


def new_tag() -> str:
    return uuid4().hex[:8]


# --- notify alone -------------------------------------------------------------------------------------------

async def _publish_ticket_events(nats_url: str, count: int) -> None:
    import nats

    from closedloop.events import CustomerRef, TicketCreatedV1, TicketSnapshot
    from closedloop.messaging.broker import ensure_streams

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream(timeout=10)
        await ensure_streams(js)
        events = [TicketCreatedV1(ticket=TicketSnapshot(
            ticket_id=uuid4(), feedback_id=uuid4(), title="Charged twice", status="new", priority="P2",
            team="payments", category="billing/payment_failure", sentiment="negative",
            customer=CustomerRef(id=f"bench-{i}", tier="standard"))) for i in range(count)]
        for start in range(0, count, 500):
            await asyncio.gather(*(js.publish(e.nats_subject, e.model_dump_json().encode(),
                                              headers={"Nats-Msg-Id": str(e.event_id)})
                                   for e in events[start:start + 500]))
    finally:
        await nc.close()


@dataclass
class NotifyResult:
    count: int
    delivered: int
    rows: int
    distinct: int
    first_to_last_seconds: float
    wall_seconds: float
    cpu_seconds: float  # notify's own CPU time from ready to the last webhook

    @property
    def cpu_ms_per_delivery(self) -> float:
        return self.cpu_seconds * 1000 / max(1, self.delivered)

    @property
    def rate(self) -> float:
        return (self.delivered - 1) / self.first_to_last_seconds if self.first_to_last_seconds > 0 else 0.0


def notify_alone(backend: str, count: int, extra: dict[str, str] | None = None) -> NotifyResult:
    """`count` ticket.created.v1 events already waiting in JetStream when notify starts: how fast it turns them
    into webhooks on the local receiver (delivered_at of the first to the last)."""
    with running_stack(backend, services=("notify",), extra={"notify": extra or {}},
                       before_services=lambda url: asyncio.run(_publish_ticket_events(url, count))) as stack:
        started = time.monotonic()
        cpu_before = stack.cpu_seconds()["notify"]
        deadline = started + max(120.0, count / 20)
        while stack.receiver.count() < count and time.monotonic() < deadline:
            time.sleep(0.05)
        wall = time.monotonic() - started
        cpu = stack.cpu_seconds()["notify"] - cpu_before
        time.sleep(1.0)
        rows = asyncio.run(_rows(stack.database_urls["notify"],
                                 "SELECT id, delivered_at FROM deliveries WHERE channel = 'webhook'"))
        times = sorted(_utc(at) for _, at in rows if at is not None)
        return NotifyResult(count, len(times), len(rows), len({row[0] for row in rows}),
                            times[-1] - times[0] if len(times) > 1 else 0.0, wall, cpu)

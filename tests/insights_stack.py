"""A small real stack for the console's insights pages: nats-server, the insights service fed the seeded
history of `insights.generator` through JetStream (its real consumers, as a replay), and the console
pointed at it. Shared by tests/test_console_insights_browser.py and bench/console_pages.py.

The pipeline services are not started: the insights pages ask only insights, and a seeded history sent
through ingest and classify would cost minutes of model time for nothing these pages show. The console's
other service URLs point at a closed port, so a page that asked them would fail loudly."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats

from closedloop.config import DEV_API_KEY
from closedloop.devtools.nats_server import NatsServer, free_port
from closedloop.devtools.processes import CONSOLE, INSIGHTS, ServiceProcess, console_env, service_env
from closedloop.messaging.broker import ensure_streams
from insights.generator import Truth, generate, publish
from tests.system import wait_for


@dataclass
class InsightsStack:
    nats: NatsServer
    insights: ServiceProcess
    console: ServiceProcess
    truth: Truth
    forecast_fit_seconds: float = 0.0  # the first (uncached) GET /v1/forecast, timed

    @property
    def url(self) -> str:
        return self.console.url

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.insights.url, headers={"X-API-Key": DEV_API_KEY}, timeout=60)

    def stop(self) -> None:
        self.console.stop()
        self.insights.stop()
        self.nats.stop()


async def _publish_history(nats_url: str, days: int, daily_volume: float) -> Truth:
    events, truth = generate(seed=15, days=days, daily_volume=daily_volume)
    connection = await nats.connect(nats_url)
    try:
        await ensure_streams(connection.jetstream())
        await publish(events, connection.jetstream())
    finally:
        await connection.close()
    return truth


def start_insights_stack(tmp: Path, days: int = 63, daily_volume: float = 20.0,
                         timeout: float = 300.0, fit_forecast: bool = True) -> InsightsStack:
    """Started, the history read, and the anomaly scan done (the anomalies page lists raised anomalies)."""
    nats_server = NatsServer(free_port(), tmp / "jetstream", tmp / "nats.log").start()
    insights = console = None
    try:
        # A thread of its own: Playwright's sync API keeps an event loop running in this one.
        with ThreadPoolExecutor(1) as thread:
            truth = thread.submit(asyncio.run, _publish_history(nats_server.url, days, daily_volume)).result()
        insights = ServiceProcess(INSIGHTS, free_port(), service_env(
            INSIGHTS, database_url=f"sqlite+aiosqlite:///{tmp / 'insights.db'}", nats_url=nats_server.url,
            api_key=DEV_API_KEY, extra={"INSIGHTS_LOG_JSON": "false", "INSIGHTS_LOG_LEVEL": "WARNING",
                                        "INSIGHTS_ANALYSIS_INTERVAL_SECONDS": "0",
                                        "INSIGHTS_CONSUMER_BATCH_SIZE": "1024"}), tmp / "insights.log").start()
        closed = f"http://127.0.0.1:{free_port()}"
        console = ServiceProcess(CONSOLE, free_port(), console_env(
            database_url=f"sqlite+aiosqlite:///{tmp / 'console.db'}", nats_url=nats_server.url,
            api_key=DEV_API_KEY, urls={"insights": insights.url, "ingest": closed, "classify": closed,
                                       "ticketing": closed, "notify": closed},
            extra={"CONSOLE_LOG_JSON": "false", "CONSOLE_LOG_LEVEL": "WARNING"}), tmp / "console.log").start()
        insights.wait_ready(timeout=120)
        console.wait_ready(timeout=120)
        stack = InsightsStack(nats_server, insights, console, truth)
        with stack.api() as api:
            def caught_up() -> bool:
                status = api.get("/v1/status").json()
                return status["caught_up"] and status["feedback_items"] == truth.items
            wait_for(caught_up, timeout=timeout, interval=1.0)
            last_third = truth.end - (truth.end - truth.start) / 3
            scan = api.post("/v1/anomalies/scan", json={"start": last_third.isoformat(), "end": truth.end.isoformat()})
            scan.raise_for_status()
            # The forecast is fitted on its first request (tens of seconds on a busy machine) and kept for five
            # minutes: fitted here, so no page waits for it (the tests' page loads time out after 20 s).
            if fit_forecast:
                fitting = time.monotonic()
                api.get("/v1/forecast", timeout=600).raise_for_status()
                stack.forecast_fit_seconds = time.monotonic() - fitting
        return stack
    except BaseException:
        for process in (console, insights):
            if process is not None:
                process.stop()
        nats_server.stop()
        raise

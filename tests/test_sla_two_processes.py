"""Two ticketing processes on one database, both running the SLA timer on real time: every ticket gets
exactly one warning and one breach (no doubles, none missed). Real nats-server, real databases."""

import asyncio
import json
import time
from pathlib import Path

import httpx
import nats
import pytest
from sqlalchemy import text

from closedloop.config import DEV_API_KEY
from closedloop.db import create_engine
from closedloop.devtools.nats_server import NatsServer, free_port
from closedloop.devtools.processes import ServiceProcess, service_env
from ticketing.testing import classified

pytestmark = pytest.mark.e2e

TICKETS = 12
WARNING, BREACH = "ticket.sla_warning.v1", "ticket.sla_breached.v1"


def ticketing_process(name: str, database_url: str, nats_url: str, tmp_path: Path) -> ServiceProcess:
    env = service_env("ticketing", database_url=database_url, nats_url=nats_url, api_key=DEV_API_KEY,
                      extra={"TICKETING_SLA_TIMER_POLL_SECONDS": "0.2", "TICKETING_LOG_JSON": "false"})
    return ServiceProcess("ticketing", free_port(), env, tmp_path / f"{name}.log").start()


async def announced(database_url: str, subject: str) -> list[str]:
    """Ticket ids of the events of `subject` written to the outbox: what was (or will be) published."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT payload FROM outbox WHERE subject = :s"), {"s": subject})
            return sorted(json.loads(payload)["ticket"]["ticket_id"] for (payload,) in rows)
    finally:
        await engine.dispose()


async def publish_classified(nats_url: str, n: int) -> None:
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        for i in range(n):
            event = classified("technical/outage", severity="critical", customer=f"race-{i}")
            await js.publish(event.nats_subject, event.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": str(event.event_id)})
    finally:
        await connection.close()


async def test_two_ticketing_processes_warn_and_breach_each_ticket_exactly_once(database_url, tmp_path):
    server = NatsServer(free_port(), tmp_path / "jetstream", tmp_path / "nats.log").start()
    first = ticketing_process("first", database_url, server.url, tmp_path)
    second = None
    try:
        await asyncio.to_thread(first.wait_ready, 120)  # migrates the database; the second finds it done
        second = ticketing_process("second", database_url, server.url, tmp_path)
        await asyncio.to_thread(second.wait_ready, 120)
        async with httpx.AsyncClient(base_url=first.url, headers={"X-API-Key": DEV_API_KEY}, timeout=10) as client:
            # Every policy: first response within 1 minute, warning at half of it, around the clock.
            for policy in (await client.get("/v1/sla-policies")).json():
                body = {k: policy[k] for k in ("name", "priority", "customer_tier")}
                body.update(first_response_minutes=1, resolution_minutes=None, warn_at_share=0.5,
                            business_hours=None, escalate_on_breach=True)
                response = await client.put(f"/v1/sla-policies/{policy['id']}", json=body)
                assert response.status_code == 200, response.text
            await publish_classified(server.url, TICKETS)

            async def all_opened() -> bool:
                return (await client.get("/v1/tickets", params={"limit": 1})).json()["total"] == TICKETS

            deadline = time.monotonic() + 60
            while not await all_opened():
                assert time.monotonic() < deadline, "tickets were not opened"
                await asyncio.sleep(0.2)
            ids = sorted(t["id"] for t in (await client.get("/v1/tickets", params={"limit": 100})).json()["items"])

        # Warnings at 30 s, breaches at 60 s after opening; both timers poll every 0.2 s.
        async def breached_all() -> bool:
            return len(await announced(database_url, BREACH)) >= TICKETS

        deadline = time.monotonic() + 120
        while not await breached_all():
            assert time.monotonic() < deadline, "not every ticket breached in time"
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # ten more passes of each timer: nothing more may be announced
        assert await announced(database_url, WARNING) == ids
        assert await announced(database_url, BREACH) == ids
        # Both processes were running their timers the whole time (neither had died).
        assert first.process.poll() is None and second.process.poll() is None
    finally:
        for process in (second, first):
            if process is not None:
                process.stop()
        server.stop()

"""`make run`: the whole system on one machine — embedded nats-server, four services, SQLite files.

Ports can be changed with CLOSEDLOOP_<NAME>_PORT; with NATS_URL set, that NATS is used instead of
starting one. Everything lives under var/ (databases, JetStream store, logs).
"""

import email
import email.policy
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller

from closedloop.config import DEV_API_KEY
from closedloop.devtools.nats_server import NatsServer, port_is_open
from closedloop.devtools.processes import (
    CONSOLE,
    ERASING_SERVICES,
    INSIGHTS,
    SERVICES,
    ServiceProcess,
    console_env,
    service_env,
)

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
MAIL = VAR / "mail"
DEFAULT_PORTS = {"nats": 14222, "console": 8000, "ingest": 8001, "classify": 8002, "ticketing": 8003, "notify": 8004,
                 "insights": 8005, "identity": 8006, "sink": 8009, "smtp": 8025}


def port(name: str) -> int:
    return int(os.environ.get(f"CLOSEDLOOP_{name.upper()}_PORT", DEFAULT_PORTS[name]))


class DemoWebhookSink(BaseHTTPRequestHandler):
    """Stands in for a customer's webhook receiver so the demo shows deliveries arriving."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            event = json.loads(body)
            ticket = event.get("data", {}).get("ticket", {})
            print(f"  webhook ← {event.get('type')}: {ticket.get('priority', '')} {ticket.get('team', '')} "
                  f"{ticket.get('category', '')} “{ticket.get('title', '')[:60]}”", flush=True)
        except (ValueError, AttributeError):
            print(f"  webhook ← {len(body)} bytes", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class DemoMailSink:
    """Stands in for an SMTP server so the demo shows the e-mails customers and agents would get."""

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        # Kept as files too, so the walk-through can answer one (its Message-ID) and open its links.
        MAIL.mkdir(parents=True, exist_ok=True)
        path = MAIL / f"{time.time_ns()}.eml"
        path.write_bytes(envelope.content)
        print(f"  e-mail  ← to {', '.join(envelope.rcpt_tos)}: “{message['Subject']}” ({path})", flush=True)
        return "250 Message accepted"


DEMO_AGENT = "agent@example.com"


def seed_demo_agent(ticketing_url: str, api_key: str) -> str:
    """The demo agent login is also an agent of ticketing (same id), so "my tickets" has something in it."""
    response = httpx.post(f"{ticketing_url}/v1/agents", headers={"X-API-Key": api_key}, timeout=10, json={
        "id": DEMO_AGENT, "name": "Alex Agent", "languages": ["en", "zh"], "capacity": 20,
        "teams": ["general-support", "payments", "accounts", "engineering-support", "customer-success", "triage"]})
    if response.status_code not in (201, 409):
        print(f"Could not create the demo agent: {response.status_code} {response.text[:200]}")
    return DEMO_AGENT


def service_extra(name: str, port: Callable[[str], int], sink_url: str) -> dict[str, str]:
    """Settings `make run` gives each service on top of the defaults. Every link that leaves the system
    (status page, CSAT) is built by ticketing from TICKETING_PUBLIC_BASE_URL: here, ticketing itself."""
    if name == "identity":
        return {"IDENTITY_SEED_DEMO_USERS": "true"}  # the demo accounts printed below (development mode only)
    if name == "ticketing":
        return {"TICKETING_PUBLIC_BASE_URL": f"http://127.0.0.1:{port('ticketing')}"}
    if name == "notify":
        return {"NOTIFY_SEED_WEBHOOK_URLS": sink_url, "NOTIFY_SMTP_HOST": "127.0.0.1",
                "NOTIFY_SMTP_PORT": str(port("smtp")), "NOTIFY_REPLY_ADDRESS": "support@closedloop.local",
                # The demo shows every e-mail at once, whatever the hour (quiet hours stay on by default).
                "NOTIFY_QUIET_HOURS_START": "00:00", "NOTIFY_QUIET_HOURS_END": "00:00"}
    if name == "ingest":  # the customer export asks the other services; an erasure waits for insights too
        return {**{f"INGEST_{other.upper()}_URL": f"http://127.0.0.1:{port(other)}" for other in SERVICES
                   if other != "ingest"}, "INGEST_ERASURE_SERVICES": ",".join(ERASING_SERVICES)}
    if name == "insights":  # the weekly report goes to the demo SMTP server too
        return {"INSIGHTS_SMTP_HOST": "127.0.0.1", "INSIGHTS_SMTP_PORT": str(port("smtp"))}
    return {}


def main() -> int:
    api_key = os.environ.get("CLOSEDLOOP_API_KEY", DEV_API_KEY)
    busy = [f"{name}={port(name)}" for name in DEFAULT_PORTS
            if not (name == "nats" and os.environ.get("NATS_URL")) and port_is_open(port(name))]
    if busy:
        print(f"Ports already in use: {', '.join(busy)}. Stop what uses them, or set CLOSEDLOOP_<NAME>_PORT.")
        return 1

    nats = None
    nats_url = os.environ.get("NATS_URL")
    if not nats_url:
        nats = NatsServer(port("nats"), VAR / "nats", VAR / "log" / "nats.log").start()
        nats_url = nats.url

    sink = ThreadingHTTPServer(("127.0.0.1", port("sink")), DemoWebhookSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = f"http://127.0.0.1:{port('sink')}/webhook"
    mail_sink = Controller(DemoMailSink(), hostname="127.0.0.1", port=port("smtp"))
    mail_sink.start()

    processes = []
    for name in (*SERVICES, INSIGHTS):
        extra = service_extra(name, port, sink_url)
        env = service_env(name, database_url=f"sqlite+aiosqlite:///{VAR / (name + '.db')}", nats_url=nats_url,
                          api_key=api_key, extra=extra)
        processes.append(ServiceProcess(name, port(name), env, VAR / "log" / f"{name}.log").start())

    urls = {process.name: process.url for process in processes}
    console = ServiceProcess(CONSOLE, port(CONSOLE), console_env(
        database_url=f"sqlite+aiosqlite:///{VAR / 'console.db'}", nats_url=nats_url, api_key=api_key, urls=urls),
        VAR / "log" / "console.log").start()
    processes.append(console)

    stopping = False

    def shutdown(*_: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        print("\nStopping…", flush=True)
        for process in reversed(processes):
            process.stop()
        sink.shutdown()
        mail_sink.stop()
        if nats:
            nats.stop()
        print("Stopped.", flush=True)

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        print("Starting Closedloop (the classify model takes a few seconds to load)…", flush=True)
        for process in processes:
            process.wait_ready(timeout=180)
        demo_agent = seed_demo_agent(urls["ticketing"], api_key)
        print(f"\nClosedloop is running.  NATS: {nats_url}   logs: {VAR / 'log'}\n")
        print(f"  Console:   {console.url}/   sign in as agent {demo_agent} / agent, or lead@example.com / lead")
        print("             (also analyst@example.com / analyst, admin@example.com / admin: accounts of the")
        print(f"             identity service, {urls['identity']}; POST /v1/auth/token there gives their tokens)\n")
        for process in processes:
            if process is not console:
                print(f"  {process.name:<10} {process.url}   API docs: {process.url}/docs")
        print(f"  demo webhook receiver: {sink_url}")
        print(f"  demo SMTP server:      127.0.0.1:{port('smtp')} (e-mails are printed here)\n")
        print(f"  Development API key: {api_key}   (an admin key, accepted in development mode only)\n")
        print("Try it:")
        print(f"  curl -s -X POST {urls['ingest']}/v1/feedback -H 'X-API-Key: {api_key}' "
              "-H 'Content-Type: application/json' \\\n"
              "    -d '{\"channel\":\"app\",\"text\":\"My card was charged twice and support does not answer\","
              "\"customer\":{\"id\":\"cust-1\",\"tier\":\"vip\"}}'")
        print(f"  curl -s {urls['ingest']}/v1/feedback/<id> -H 'X-API-Key: {api_key}'\n")
        print("Press Ctrl-C to stop.", flush=True)
        while True:
            for process in processes:
                if process.process and process.process.poll() is not None:
                    print(f"{process.name} exited ({process.process.returncode}); see {process.log_file}")
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"Start-up failed: {exc}")
        return 1
    finally:
        shutdown()


if __name__ == "__main__":
    sys.exit(main())

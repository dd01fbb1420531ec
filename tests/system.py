"""The whole system as separate processes: nats-server, the four services, a webhook receiver."""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import httpx

from closedloop.config import DEV_API_KEY
from closedloop.devtools.nats_server import NatsServer, free_port
from closedloop.devtools.processes import SERVICES, ServiceProcess, service_env

T = TypeVar("T")

# classify loads two sentence models and 24 languages' detectors: tens of seconds on an idle machine, minutes
# on a shared one (seen: over 180 s with seven test runs on two cores).
READY_SECONDS = 420


class WebhookReceiver:
    """A real HTTP endpoint that records every webhook it receives."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append({"headers": dict(self.headers), "body": json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, event_type: str) -> list[dict]:
        with self.lock:
            return [r["body"] for r in self.received if r["body"]["type"] == event_type]

    def close(self) -> None:
        self.server.shutdown()


@dataclass
class System:
    nats: NatsServer
    services: dict[str, ServiceProcess]
    receiver: WebhookReceiver
    databases: list[str] = field(default_factory=list)

    def client(self, service: str) -> httpx.Client:
        return httpx.Client(base_url=self.services[service].url, headers={"X-API-Key": DEV_API_KEY}, timeout=10)

    def restart(self, service: str) -> None:
        old = self.services[service]
        self.services[service] = ServiceProcess(old.name, old.port, old.env, old.log_file).start()
        self.services[service].wait_ready(timeout=READY_SECONDS)


def start_system(tmp_path: Path, databases: dict[str, str],
                 overrides: dict[str, dict[str, str]] | None = None, also: tuple[str, ...] = ()) -> System:
    """The pipeline's services as processes on one nats-server; `also`: more services started after them
    (e.g. insights), each with its database in `databases`."""
    nats = NatsServer(free_port(), tmp_path / "jetstream", tmp_path / "nats.log").start()
    receiver = WebhookReceiver()
    services = {}
    ports = {name: free_port() for name in (*SERVICES, *also)}
    for name in (*SERVICES, *also):
        extra = {"NOTIFY_SEED_WEBHOOK_URLS": receiver.url,
                 "NOTIFY_WEBHOOK_BACKOFF_BASE_SECONDS": "0.2"} if name == "notify" else {}
        if name == "ingest":  # the customer export asks the other services
            extra.update({f"INGEST_{other.upper()}_URL": f"http://127.0.0.1:{ports[other]}"
                          for other in SERVICES if other != "ingest"})
        if name == "ticketing":  # the links customers get lead to this ticketing process
            extra["TICKETING_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{ports[name]}"
        extra[f"{name.upper()}_LOG_JSON"] = "false"
        extra[f"{name.upper()}_CONSUMER_BACKOFF_SECONDS"] = "0.2,0.5"
        extra.update((overrides or {}).get(name, {}))
        env = service_env(name, database_url=databases[name], nats_url=nats.url, api_key=DEV_API_KEY, extra=extra)
        services[name] = ServiceProcess(name, ports[name], env, tmp_path / f"{name}.log").start()
    system = System(nats, services, receiver)
    try:
        for process in services.values():
            process.wait_ready(timeout=READY_SECONDS)
    except Exception:
        stop_system(system)
        raise
    return system


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a free port that keeps every message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
                with sink.lock:
                    sink.raw.append(envelope.content)
                    sink.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]

    def close(self) -> None:
        self.controller.stop()


def stop_system(system: System) -> None:
    for process in system.services.values():
        process.stop()
    system.nats.stop()
    system.receiver.close()




def post_feedback(client: httpx.Client, text: str, customer: str = "cust-1", tier: str = "standard") -> str:
    response = client.post("/v1/feedback", json={"channel": "app", "text": text,
                                                 "customer": {"id": customer, "tier": tier}})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def post_feedback_batch(client: httpx.Client, texts: list[str], customer_prefix: str) -> list[str]:
    """Submit `texts` in one batch call (one customer each), so a stream is queued faster than it is consumed."""
    items = [{"channel": "app", "text": text, "customer": {"id": f"{customer_prefix}{i}"}}
             for i, text in enumerate(texts)]
    response = client.post("/v1/feedback/batch", json={"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == len(texts), body
    return [result["id"] for result in body["results"]]


def wait_for(check: Callable[[], T], timeout: float = 60.0, interval: float = 0.25) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s")
        time.sleep(interval)

"""Real parts for notify's tests: an SMTP server (aiosmtpd) and HTTP receivers on free ports, and an
app factory with fast timings. Fixtures only (test modules are imported with importlib)."""

import json
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from uuid import uuid4

import pytest
from aiosmtpd.controller import Controller

from closedloop.devtools.nats_server import free_port
from closedloop.events import CustomerRef, Event, TicketSnapshot
from notify.main import create_app
from notify.settings import NotifySettings


@dataclass(frozen=True)
class HttpRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class HttpReceiver:
    """A real HTTP server. Each path answers its scripted statuses in turn (the last one repeats; 200 when
    none is scripted); a status may be a (status, headers) pair."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.scripts: dict[str, list] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append(HttpRequest(self.path, dict(self.headers.items()), body))
                    script = receiver.scripts.get(self.path) or [200]
                    answer = script.pop(0) if len(script) > 1 else script[0]
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def answer(self, path: str, *statuses) -> None:
        with self.lock:
            self.scripts[path] = list(statuses)

    def received(self, path: str | None = None) -> list[HttpRequest]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]


class Mailbox:
    """What an aiosmtpd handler accepted; `refuse` scripts SMTP replies for RCPT (e.g. '550 no such user')."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: dict[str, str] = {}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            reply = self.refuse.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def http_receiver():
    receiver = HttpReceiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def smtp_server():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailbox.port = controller.port
    yield mailbox
    controller.stop()


@pytest.fixture
def make_app(database_url, nats_server):
    """create_app with fast timings; no quiet hours unless asked for."""

    def make(**overrides):
        settings = dict(database_url=database_url, nats_url=nats_server.url, log_json=False,
                        webhook_backoff_base_seconds=0.05, dispatch_poll_seconds=0.05, webhook_timeout_seconds=5,
                        outbox_poll_seconds=0.05, consumer_fetch_timeout_seconds=0.1,
                        quiet_hours_start="00:00", quiet_hours_end="00:00")
        settings.update(overrides)
        return create_app(NotifySettings(**settings))

    return make


def make_snapshot(**changes) -> TicketSnapshot:
    customer = changes.pop("customer", None) or CustomerRef(id="c-1", tier="vip", email="ana@example.com",
                                                            name="Ana")
    fields = dict(ticket_id=uuid4(), feedback_id=uuid4(), title="Charged twice", status="new", priority="P1",
                  team="payments", category="billing/payment_failure", sentiment="negative", customer=customer)
    fields.update(changes)
    return TicketSnapshot(**fields)


async def publish_event(app, event: Event) -> None:
    await app.state.runtime.broker.publish(event.nats_subject, event.model_dump_json().encode(), {},
                                           msg_id=str(event.event_id))


async def list_deliveries(client, **params) -> dict:
    response = await client.get("/v1/deliveries", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def delivery_where(client, count: int = 1, **params):
    """A check for `eventually`: the deliveries matching `params` once there are exactly `count`."""

    async def check():
        page = await list_deliveries(client, **params)
        return page["items"] if page["total"] == count else None

    check.__name__ = f"{count} deliveries with {params}"
    return check


@pytest.fixture
def notify_kit():
    return SimpleNamespace(snapshot=make_snapshot, publish=publish_event, deliveries=list_deliveries,
                           where=delivery_where)

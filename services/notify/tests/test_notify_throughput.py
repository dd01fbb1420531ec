"""Deliveries go out side by side, never more at once to one target than configured, each recorded once."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from closedloop.events import TicketCreatedV1
from closedloop.testing import eventually, running_app


class SlowReceiver:
    """Answers 200 after `delay` seconds and remembers how many requests it held at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.current = 0
        self.most = 0
        self.delivery_ids: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.current += 1
                    receiver.most = max(receiver.most, receiver.current)
                    receiver.delivery_ids.append(self.headers["Closedloop-Delivery-Id"])
                time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.current -= 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_receiver():
    receiver = SlowReceiver(delay=0.3)
    yield receiver
    receiver.close()


async def test_sends_in_parallel_within_the_per_target_bound_and_records_each_once(make_app, slow_receiver,
                                                                                   notify_kit):
    app = make_app(dispatch_concurrency=8, dispatch_per_target_concurrency=3)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        response = await client.post("/v1/webhooks", json={"name": "slow", "url": slow_receiver.url})
        assert response.status_code == 201, response.text
        events = [TicketCreatedV1(ticket=notify_kit.snapshot()) for _ in range(12)]
        for event in events:
            await notify_kit.publish(app, event)

        delivered = await eventually(notify_kit.where(client, count=12, status="delivered", channel="webhook"),
                                     timeout=30)
        assert slow_receiver.most <= 3, "never more than the per-target bound at once"
        assert slow_receiver.most >= 2, "but side by side, not one at a time"
        assert sorted(slow_receiver.delivery_ids) == sorted(d["id"] for d in delivered), "each sent once"
        assert {d["source_event_id"] for d in delivered} == {str(e.event_id) for e in events}
        assert all(d["attempts"] == 1 and d["delivered_at"] for d in delivered)

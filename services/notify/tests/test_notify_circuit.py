"""The circuit breaker per target: unit transitions, and end to end against a real failing receiver."""

from datetime import UTC, datetime, timedelta

from closedloop.events import TicketCreatedV1
from closedloop.testing import eventually, running_app
from notify import circuit
from notify.circuit import BreakerPolicy
from notify.models import CircuitBreaker

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
POLICY = BreakerPolicy(threshold=3, cooldown=timedelta(seconds=30))
LEASE = timedelta(minutes=2)


def fresh() -> CircuitBreaker:
    return CircuitBreaker(key="webhook:e-1", consecutive_failures=0, open_until=None, probe_until=None, updated_at=NOW)


def test_opens_after_threshold_consecutive_failures_only():
    breaker = fresh()
    for _ in range(2):
        circuit.record(breaker, True, POLICY, NOW)
    assert circuit.state(breaker, NOW) == "closed"
    circuit.record(breaker, False, POLICY, NOW)  # a success (or a 4xx answer) resets the count
    assert breaker.consecutive_failures == 0
    for _ in range(3):
        circuit.record(breaker, True, POLICY, NOW)
    assert circuit.state(breaker, NOW) == "open"
    assert breaker.open_until == NOW + POLICY.cooldown


def test_open_postpones_until_the_cool_down_ends():
    breaker = fresh()
    breaker.consecutive_failures, breaker.open_until = 3, NOW + timedelta(seconds=30)
    assert circuit.admit(breaker, NOW, LEASE) == NOW + timedelta(seconds=30)
    assert circuit.admit(breaker, NOW + timedelta(seconds=29), LEASE) == NOW + timedelta(seconds=30)


def test_half_open_lets_exactly_one_probe_through():
    breaker = fresh()
    breaker.consecutive_failures, breaker.open_until = 3, NOW
    later = NOW + timedelta(seconds=1)
    assert circuit.state(breaker, later) == "half_open"
    assert circuit.admit(breaker, later, LEASE) is None, "the probe"
    assert circuit.admit(breaker, later, LEASE) == later + LEASE, "the others wait for the probe"


def test_failed_probe_reopens_and_successful_probe_closes():
    breaker = fresh()
    breaker.consecutive_failures, breaker.open_until = 3, NOW
    circuit.admit(breaker, NOW, LEASE)
    circuit.record(breaker, True, POLICY, NOW)
    assert (circuit.state(breaker, NOW), breaker.open_until, breaker.probe_until) == (
        "open", NOW + POLICY.cooldown, None)
    reopened = NOW + POLICY.cooldown
    assert circuit.admit(breaker, reopened, LEASE) is None
    circuit.record(breaker, False, POLICY, reopened)
    assert (circuit.state(breaker, reopened), breaker.consecutive_failures) == ("closed", 0)
    assert circuit.admit(breaker, reopened, LEASE) is None


def test_no_breaker_is_closed():
    assert circuit.state(None, NOW) == "closed"
    assert circuit.admit(None, NOW, LEASE) is None


def test_keys_are_per_endpoint_hook_and_smtp_server():
    assert circuit.circuit_key("webhook", "http://x", "e-1") == "webhook:e-1"
    assert circuit.circuit_key("email", "a@b.c", None, "smtp.example.com") == "smtp:smtp.example.com"
    slack = circuit.circuit_key("slack", "https://hooks.slack.com/services/T/B/X", None)
    assert slack.startswith("slack:") and len(slack) <= 100
    assert slack != circuit.circuit_key("slack", "https://hooks.slack.com/services/T/B/Y", None)


async def test_open_circuit_postpones_deliveries_and_a_probe_closes_it(make_app, http_receiver, notify_kit):
    http_receiver.answer("/flaky", 503)
    app = make_app(circuit_failure_threshold=2, circuit_cooldown_seconds=2.5, webhook_max_attempts=4)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        webhook = (await client.post("/v1/webhooks", json={"name": "flaky", "url": http_receiver.url("/flaky")})).json()
        first = TicketCreatedV1(ticket=notify_kit.snapshot())
        await notify_kit.publish(app, first)

        async def circuit_open():
            [listed] = (await client.get("/v1/webhooks")).json()
            return listed["circuit"] if listed["circuit"]["state"] == "open" else None

        state = await eventually(circuit_open, timeout=10)
        assert state["consecutive_failures"] == 2
        page = await notify_kit.deliveries(client, source_event_id=str(first.event_id), channel="webhook")
        [waiting] = page["items"]
        assert (waiting["status"], waiting["attempts"]) == ("pending", 2), "postponed, not failed"
        assert datetime.fromisoformat(waiting["next_attempt_at"]) >= datetime.fromisoformat(state["open_until"])

        second = TicketCreatedV1(ticket=notify_kit.snapshot())
        await notify_kit.publish(app, second)

        async def postponed():
            page = await notify_kit.deliveries(client, source_event_id=str(second.event_id), channel="webhook")
            item = page["items"][0] if page["items"] else None
            return item if item and (item["reason"] or "").startswith("circuit open") else None

        held = await eventually(postponed, timeout=10)
        assert (held["status"], held["attempts"]) == ("pending", 0)
        assert len(http_receiver.received("/flaky")) == 2, "nothing is sent while the circuit is open"

        http_receiver.answer("/flaky", 200)
        delivered = await eventually(notify_kit.where(client, count=2, status="delivered"), timeout=15)
        assert sorted(d["attempts"] for d in delivered) == [1, 3]
        assert len(http_receiver.received("/flaky")) == 4
        [listed] = (await client.get("/v1/webhooks")).json()
        assert listed["circuit"] == {"state": "closed", "consecutive_failures": 0, "open_until": None}
        assert listed["id"] == webhook["id"]

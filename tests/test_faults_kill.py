"""SIGKILL of ticketing, notify and ingest in the middle of a stream, then a restart: every accepted item
has exactly one ticket, every ticket event exactly one delivery record for the subscribed endpoint, and
nothing stays pending. The kill is triggered on committed progress read from the victim's own database
(not on time), and the test checks it really landed mid-stream.

One system serves the three kills in turn (starting it is the slow part); each kill checks its own
stream, and the last test checks the deliveries of everything that happened.
"""

import sqlite3
from collections import Counter

import pytest

from closedloop.devtools.processes import SERVICES
from tests.system import System, post_feedback, post_feedback_batch, start_system, stop_system, wait_for
from tests.test_faults import tickets_by_feedback

pytestmark = pytest.mark.e2e

STREAM = 80


def query(system: System, service: str, sql: str) -> list[tuple]:
    """Read a service's own SQLite database (works while the service is down)."""
    path = system.databases_by_service[service].removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as connection:
        return connection.execute(sql).fetchall()


def count(system: System, service: str, sql: str) -> int:
    return query(system, service, sql)[0][0]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> System:
    tmp = tmp_path_factory.mktemp("kill")
    databases = {name: f"sqlite+aiosqlite:///{tmp / (name + '.db')}" for name in SERVICES}
    # Small consumer batches spread the work out, so each kill lands while messages are in flight.
    overrides = {"ticketing": {"TICKETING_CONSUMER_BATCH_SIZE": "2"}, "notify": {"NOTIFY_CONSUMER_BATCH_SIZE": "2"},
                 "ingest": {"INGEST_OUTBOX_BATCH_SIZE": "5"}}
    running = start_system(tmp, databases, overrides=overrides)
    running.databases_by_service = databases  # type: ignore[attr-defined]
    yield running
    stop_system(running)


def assert_one_ticket_each(system: System, ids: list[str]) -> str:
    """Wait for every accepted item's ticket; then count the lost and the doubled (both must be 0)."""
    ticketing = system.client("ticketing")
    try:
        wait_for(lambda: set(ids) <= set(tickets_by_feedback(ticketing)), timeout=240)
    finally:
        tickets = tickets_by_feedback(ticketing)
        lost = sum(1 for i in ids if i not in tickets)
        doubled = sum(1 for i in ids if len(tickets.get(i, [])) > 1)
    assert (lost, doubled) == (0, 0), f"{lost} items lost, {doubled} with more than one ticket"
    return f"{len(ids)} accepted, {lost} lost, {doubled} duplicated"


def test_ticketing_killed_mid_stream(system: System) -> None:
    ids = post_feedback_batch(system.client("ingest"), [f"Card payment {i} was declined at the till"
                                                        for i in range(STREAM)], customer_prefix="tk")
    wait_for(lambda: count(system, "ticketing", "SELECT count(*) FROM tickets") >= 1, timeout=120, interval=0.02)
    system.services["ticketing"].kill()
    at_kill = count(system, "ticketing", "SELECT count(*) FROM tickets")
    assert at_kill < STREAM, "the kill came too late to test anything"
    system.restart("ticketing")
    outcome = assert_one_ticket_each(system, ids)
    print(f"SIGKILL ticketing after {at_kill}/{STREAM} tickets: {outcome}")


def deliveries_of_stream(system: System, prefix: str) -> int:
    """Deliveries notify has committed for the tickets of one stream's customers."""
    sql = f"SELECT id FROM tickets WHERE customer_id LIKE '{prefix}%'"
    tickets = [row[0] for row in query(system, "ticketing", sql)]
    if not tickets:
        return 0
    listed = ",".join(f"'{t}'" for t in tickets)
    return count(system, "notify", f"SELECT count(*) FROM deliveries WHERE ticket_id IN ({listed})")


def test_notify_killed_mid_stream(system: System) -> None:
    ids = post_feedback_batch(system.client("ingest"), [f"Refund {i} has not arrived after two weeks"
                                                        for i in range(STREAM)], customer_prefix="nk")
    wait_for(lambda: deliveries_of_stream(system, "nk") >= 1, timeout=120, interval=0.02)
    system.services["notify"].kill()
    delivered_at_kill = deliveries_of_stream(system, "nk")
    assert delivered_at_kill < STREAM, "the kill came too late to test anything"
    system.restart("notify")
    outcome = assert_one_ticket_each(system, ids)
    wait_for(lambda: deliveries_of_stream(system, "nk") >= STREAM, timeout=240)
    print(f"SIGKILL notify after {delivered_at_kill} deliveries for this stream's {STREAM} tickets: {outcome}")


def test_ingest_killed_while_its_outbox_publishes(system: System) -> None:
    ingest = system.client("ingest")
    published_before = count(system, "ingest", "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
    ids = post_feedback_batch(ingest, [f"The app logs me out every {i} minutes" for i in range(STREAM)],
                              customer_prefix="ik")
    # Killed once part of the accepted batch is published: the rest is only in its outbox.
    published = "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"
    wait_for(lambda: count(system, "ingest", published) >= published_before + 5, timeout=60, interval=0.01)
    system.services["ingest"].kill()
    published_at_kill = count(system, "ingest", published) - published_before
    assert published_at_kill < STREAM, "the kill came too late to test anything"
    system.restart("ingest")
    ingest = system.client("ingest")
    # Accepting goes on after the restart; every item of both reaches a ticket exactly once.
    ids += [post_feedback(ingest, f"Password reset mail {i} never comes", customer=f"ik-after-{i}") for i in range(5)]
    outcome = assert_one_ticket_each(system, ids)
    wait_for(lambda: all(ingest.get(f"/v1/feedback/{i}").json()["status"] == "ticket_opened" for i in ids[-5:]),
             timeout=60)
    print(f"SIGKILL ingest with {published_at_kill}/{STREAM} events of the batch published: {outcome}")


def test_every_ticket_event_has_exactly_one_delivery_and_none_is_pending(system: System) -> None:
    endpoint = query(system, "notify", "SELECT id FROM webhook_endpoints WHERE name LIKE 'seeded %'")[0][0]

    def settled() -> bool:
        events = {row[0] for row in query(system, "ticketing", "SELECT event_id FROM outbox WHERE subject LIKE "
                                                               "'ticket.%' AND published_at IS NOT NULL")}
        pending_outbox = count(system, "ticketing", "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        delivered = {row[0] for row in query(system, "notify", f"SELECT source_event_id FROM deliveries "
                                                               f"WHERE endpoint_id = '{endpoint}'")}
        pending = count(system, "notify", "SELECT count(*) FROM deliveries WHERE status = 'pending'")
        return events <= delivered and pending == 0 and pending_outbox == 0

    wait_for(settled, timeout=240, interval=1)
    events = {row[0] for row in query(system, "ticketing", "SELECT event_id FROM outbox WHERE subject LIKE 'ticket.%'")}
    per_event = Counter(row[0] for row in query(system, "notify", f"SELECT source_event_id FROM deliveries "
                                                                  f"WHERE endpoint_id = '{endpoint}'"))
    assert {event: per_event[event] for event in events} == dict.fromkeys(events, 1)
    statuses = Counter(row[0] for row in query(system, "notify", "SELECT status FROM deliveries"))
    assert statuses.get("pending", 0) == 0, statuses
    assert statuses.get("failed", 0) == 0, statuses
    received = Counter(r["headers"].get("Closedloop-Delivery-Id") for r in system.receiver.received)
    repeats = sum(n - 1 for n in received.values())
    print(f"{len(events)} ticket events, each with exactly one webhook delivery record; statuses {dict(statuses)}; "
          f"the receiver saw {repeats} repeated deliveries (at-least-once, same Closedloop-Delivery-Id)")

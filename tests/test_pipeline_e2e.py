"""End to end: four service processes, a real nats-server, real databases, a real webhook receiver."""

import time

import pytest

from closedloop.testing import requires_postgres
from tests.system import post_feedback, start_system, stop_system, wait_for

pytestmark = pytest.mark.e2e

COMPLAINTS = [
    "My card was declined at checkout three times today",
    "I was charged twice for the same order",
    "The app crashes every time I open the settings page",
    "I can't log in, the password reset email never arrives",
    "Someone logged into my account from another country",
    "Your website has been down for an hour",
    "I'd love a dark mode in the mobile app",
    "Great support today, thank you so much!",
    "My parcel has not arrived after two weeks",
    "I want a refund for my cancelled subscription",
]


def run_twenty(system) -> None:
    ingest, ticketing, notify = system.client("ingest"), system.client("ticketing"), system.client("notify")
    ids = [post_feedback(ingest, COMPLAINTS[i % len(COMPLAINTS)], customer=f"cust-{i}",
                         tier="vip" if i % 5 == 0 else "standard") for i in range(20)]

    def all_have_tickets():
        shown = [ingest.get(f"/v1/feedback/{i}").json() for i in ids]
        return shown if all(s["ticket_id"] for s in shown) else None
    shown = wait_for(all_have_tickets, timeout=120)
    assert all(s["status"] == "ticket_opened" for s in shown)

    page = ticketing.get("/v1/tickets", params={"limit": 100}).json()
    assert page["total"] == 20
    tickets = {t["feedback_id"]: t for t in page["items"]}
    assert set(tickets) == set(ids)
    for feedback in shown:
        ticket = tickets[feedback["id"]]
        assert ticket["id"] == feedback["ticket_id"]
        assert ticket["category"] and "/" in ticket["category"]
        assert ticket["sentiment"] in ("negative", "neutral", "positive")
        assert ticket["priority"] in ("P0", "P1", "P2", "P3")
        assert ticket["team"]

    created = wait_for(lambda: (e := system.receiver.events("ticket.created.v1")) and len(e) >= 20 and e,
                       timeout=60)
    assert {e["data"]["ticket"]["ticket_id"] for e in created} == {t["id"] for t in tickets.values()}
    deliveries = wait_for(lambda: (d := notify.get("/v1/deliveries", params={
        "status": "delivered", "event_type": "ticket.created.v1"}).json())["total"] >= 20 and d, timeout=60)
    assert deliveries["total"] == 20
    # The two praise messages were thanked by the auto-reply (ticket.replied.v1) and closed themselves.
    thanked = wait_for(lambda: (e := system.receiver.events("ticket.replied.v1")) and len(e) >= 2 and e, timeout=60)
    assert sorted((e["data"]["kind"], e["data"]["auto_reply_rule"]) for e in thanked) == [
        ("auto_reply", "praise")] * 2


def test_twenty_feedback_items_become_tickets_and_webhooks_sqlite(system):
    started = time.monotonic()
    run_twenty(system)
    print(f"20 items end to end in {time.monotonic() - started:.1f}s")


@requires_postgres
@pytest.mark.postgres
def test_twenty_feedback_items_become_tickets_and_webhooks_postgres(tmp_path, postgres_databases):
    system = start_system(tmp_path, postgres_databases)
    try:
        run_twenty(system)
    finally:
        stop_system(system)

"""Data rights across the four services: export gathers a customer's data from every service; one
erasure call removes it from every service's database (searched table by table, column by column)."""

import sqlite3
import time
from pathlib import Path

import pytest

from closedloop.devtools.processes import SERVICES
from tests.system import start_system, stop_system, wait_for

# Identity holds people and keys, never a customer's data, so it takes no part in an erasure.
CUSTOMER_DATA_SERVICES = tuple(name for name in SERVICES if name != "identity")

pytestmark = pytest.mark.e2e

MARKER = "Zorblax7731"  # a word nobody else writes: every copy of the customer's text carries it
EMAIL = "ana.erasure@example.com"
CUSTOMER = "cust-erase-1"


def database_path(url: str) -> str:
    return url.removeprefix("sqlite+aiosqlite:///")


def rows_mentioning(path: str, needles: list[str]) -> list[str]:
    """Every (table, column) of the database whose value contains one of the needles."""
    found = []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]
            for column in columns:
                for needle in needles:
                    count = connection.execute(
                        f'SELECT count(*) FROM "{table}" WHERE CAST("{column}" AS TEXT) LIKE ?',
                        (f"%{needle}%",)).fetchone()[0]
                    if count:
                        found.append(f"{table}.{column} ({count} rows contain {needle!r})")
    return found


def files_containing(path: str, needles: list[str]) -> list[str]:
    """The database's files on disk (the file itself, its write-ahead log) whose bytes contain a needle:
    what someone who copies the file could still read, free pages and old log frames included."""
    found = []
    for file in (Path(path), Path(path + "-wal")):
        if file.exists():
            content = file.read_bytes()
            found += [f"{file.name} contains {needle!r}" for needle in needles if needle.encode() in content]
    return found


def test_export_then_erasure_removes_the_customer_from_every_database(tmp_path: Path) -> None:
    databases = {name: f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}" for name in SERVICES}
    system = start_system(tmp_path, databases)
    try:
        ingest, ticketing = system.client("ingest"), system.client("ticketing")
        classify, notify = system.client("classify"), system.client("notify")
        assert ingest.put(f"/v1/customers/{CUSTOMER}", json={"tier": "vip", "email": EMAIL, "name": "Ana"}
                          ).status_code == 201
        texts = [f"My card was charged twice by {MARKER} and nobody answers",
                 f"The {MARKER} app crashes when I open my invoices, call me on +44 20 7946 0958"]
        ids = []
        for text in texts:
            response = ingest.post("/v1/feedback", json={"channel": "app", "text": text, "customer": {"id": CUSTOMER},
                                                         "metadata": {"order": f"{MARKER}-order"}})
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        # Someone else's feedback must survive the erasure untouched.
        other = ingest.post("/v1/feedback", json={"channel": "app", "text": "Refund for order 99 never arrived",
                                                  "customer": {"id": "someone-else"}}).json()["id"]
        tickets = wait_for(lambda: [ingest.get(f"/v1/feedback/{i}").json()["ticket_id"] for i in ids]
                           if all(ingest.get(f"/v1/feedback/{i}").json()["ticket_id"] for i in ids) else None,
                           timeout=120)
        ticket = tickets[0]
        assert ticketing.post(f"/v1/tickets/{ticket}/comments", json={
            "author": "agent@example.com", "body": f"Called {MARKER} back about the charge"}).status_code == 201
        # An agent's correction: classify keeps it as a training example made from this feedback.
        assert ticketing.patch(f"/v1/tickets/{ticket}", json={
            "actor": "agent@example.com", "category": "billing/refund"}).status_code == 200
        wait_for(lambda: any(e["feedback_id"] == ids[0] for e in classify.get(
            "/v1/training-examples", params={"source": "recategorized"}).json()["items"]), timeout=60)
        wait_for(lambda: notify.get("/v1/deliveries", params={"ticket_id": ticket}).json()["total"] >= 1, timeout=60)
        needles = [MARKER, EMAIL]
        before = {name: rows_mentioning(database_path(databases[name]), needles) for name in CUSTOMER_DATA_SERVICES}
        assert all(before.values()), f"every service should hold some of the customer's data first: {before}"

        exported = ingest.get(f"/v1/customers/{CUSTOMER}/export")
        assert exported.status_code == 200, exported.text
        export = exported.json()
        assert export["errors"] == []
        assert export["services"]["ingest"]["customer"]["email"] == EMAIL
        assert {f["id"] for f in export["services"]["ingest"]["feedback"]} == set(ids)
        assert {c["feedback_id"] for c in export["services"]["classify"]["classifications"]} == set(ids)
        assert {t["id"] for t in export["services"]["ticketing"]["tickets"]} == set(tickets)
        assert any(MARKER in c["body"] for t in export["services"]["ticketing"]["tickets"] for c in t["comments"])
        assert export["services"]["notify"]["deliveries"]

        response = ingest.post(f"/v1/customers/{CUSTOMER}/erasure")
        assert response.status_code == 202, response.text
        location = response.headers["Location"]
        status = wait_for(lambda: (s := ingest.get(location).json())["status"] == "completed" and s, timeout=120)
        assert set(status["services"]) == set(CUSTOMER_DATA_SERVICES)
        assert all(entry["status"] == "completed" for entry in status["services"].values())
        print("erased rows per service:", {name: entry["erased"] for name, entry in status["services"].items()})

        # Gone from every database, searched in every column of every table.
        after = {name: rows_mentioning(database_path(url), [*needles, CUSTOMER]) for name, url in databases.items()}
        assert after == {name: [] for name in SERVICES}, after
        print("after erasure, rows mentioning the customer per database:",
              {name: len(found) for name, found in after.items()})
        # Nor left in the files' bytes: SQLite zeroes what it frees (secure_delete) and the services empty
        # the write-ahead log after an erasure, a moment after it committed.
        started = time.monotonic()
        wait_for(lambda: not any(files_containing(database_path(url), [*needles, CUSTOMER])
                                 for url in databases.values()), timeout=30)
        print(f"database files free of the customer's data {time.monotonic() - started:.2f} s after completion")
        assert ingest.get(f"/v1/customers/{CUSTOMER}").status_code == 404
        assert ingest.get(f"/v1/feedback/{ids[0]}").json()["text"] == "[erased]"
        # The other customer's data is untouched, and the pipeline keeps working.
        assert "Refund for order 99" in ingest.get(f"/v1/feedback/{other}").json()["text"]
        empty = ingest.get(f"/v1/customers/{CUSTOMER}/export").json()
        assert empty["services"]["ingest"]["feedback"] == [] and empty["services"]["ingest"]["customer"] is None
    finally:
        stop_system(system)

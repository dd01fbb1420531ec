"""The ticket list sorted by the next SLA due time (the console's queues), with `active` and `due_before`."""

from datetime import UTC, datetime, timedelta

from closedloop.testing import running_app

from .test_ticketing_api import TICKETS, all_pages, app, listed, open_tickets, set_column  # noqa: F401

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def test_sorted_by_next_due_time_with_answered_and_undated_tickets(app):  # noqa: F811
    async with running_app(app) as client:
        ids = await open_tickets(app)
        # first response due, unanswered: due = first_response_due_at
        await set_column(app, [ids["refund"]], first_response_due_at=T0 + timedelta(hours=3),
                         resolution_due_at=T0 + timedelta(hours=9), first_responded_at=None)
        # answered: due = resolution_due_at, although its first-response time is the earliest of all
        await set_column(app, [ids["payment"]], first_response_due_at=T0, resolution_due_at=T0 + timedelta(hours=5),
                         first_responded_at=T0)
        await set_column(app, [ids["outage"]], first_response_due_at=T0 + timedelta(hours=1),
                         resolution_due_at=T0 + timedelta(hours=2), first_responded_at=None)
        undated = [ids[n] for n in ("slow", "idea", "login", "praise")]
        await set_column(app, undated, first_response_due_at=None, resolution_due_at=None)
        await set_column(app, [ids["praise"]], status="resolved")
        name_of = {ticket_id: name for name, ticket_id in ids.items()}

        pages = await all_pages(client, limit=2, sort="due")
        walked = [name_of[item["id"]] for page in pages for item in page["items"]]
        assert walked[:3] == ["outage", "refund", "payment"]
        assert sorted(walked[3:]) == sorted(["slow", "idea", "login", "praise"]), "no due time: last, each once"
        assert walked[3:] == sorted(walked[3:], key=lambda n: ids[n]), "ties in id order"

        active = await listed(client, sort="due", active="true", limit=50)
        assert "praise" not in {name_of[i["id"]] for i in active["items"]}
        assert active["total"] == len(TICKETS) - 1
        soon = await listed(client, sort="due", due_before=(T0 + timedelta(hours=4)).isoformat())
        assert [name_of[i["id"]] for i in soon["items"]] == ["outage", "refund"]


async def test_due_before_needs_a_time_zone(app):  # noqa: F811
    async with running_app(app) as client:
        response = await client.get("/v1/tickets", params={"due_before": "2026-12-01T09:00:00"})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "query.due_before"

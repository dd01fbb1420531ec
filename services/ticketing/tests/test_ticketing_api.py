"""The tickets API: filters, cursor pagination, and problems for bad requests."""

import base64
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from sqlalchemy import update

from closedloop.events import Classification, CustomerRef, FeedbackClassifiedV1
from closedloop.testing import running_app
from ticketing.main import create_app
from ticketing.models import Ticket
from ticketing.settings import TicketingSettings
from ticketing.tickets import open_ticket

# name: (category, sentiment, score, tier) -> routed (team, priority) by the shipped routing table
TICKETS = {
    "refund": ("billing/refund", "neutral", 0.5, "standard"),                  # payments P2
    "payment": ("billing/payment_failure", "neutral", 0.5, "standard"),        # payments P1
    "outage": ("technical/outage", "neutral", 0.5, "standard"),                # sre P0
    "slow": ("technical/slow_app", "neutral", 0.5, "standard"),                # engineering-support P2
    "idea": ("product/feature_request", "positive", 0.9, "standard"),          # product P3
    "login": ("account/login", "negative", 0.9, "standard"),                   # accounts P1
    "praise": ("general/praise", "positive", 0.9, "standard"),                 # customer-success P3
}


@pytest.fixture
def app(database_url, nats_server):
    return create_app(TicketingSettings(database_url=database_url, nats_url=nats_server.url, log_json=False,
                                        outbox_poll_seconds=0.05, consumer_fetch_timeout_seconds=0.1))


def classified(category: str, sentiment: str, score: float, tier: str) -> FeedbackClassifiedV1:
    return FeedbackClassifiedV1(
        feedback_id=uuid4(), channel="web", text=f"About {category}", customer=CustomerRef(id="c", tier=tier),
        classification=Classification(category=category, category_label=category, top_level=category.split("/")[0],
                                      confidence=0.8, sentiment=sentiment, sentiment_score=score,
                                      taxonomy_version="t1", model_version="m1"),
    )


async def open_tickets(app) -> dict[str, str]:
    """Open the TICKETS in order (one transaction each, as the consumer does); name -> ticket id."""
    ids = {}
    for name, spec in TICKETS.items():
        async with app.state.runtime.sessions() as session, session.begin():
            ticket = await open_ticket(session, classified(*spec), app.state.routing_table)
            ids[name] = ticket.id
    return ids


async def set_column(app, ticket_ids, **values) -> None:
    async with app.state.runtime.sessions() as session, session.begin():
        await session.execute(update(Ticket).where(Ticket.id.in_(list(ticket_ids))).values(**values))


async def listed(client, **params) -> dict:
    response = await client.get("/v1/tickets", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def all_pages(client, limit: int, **params) -> list[dict]:
    pages, cursor = [], None
    while True:
        page = await listed(client, limit=limit, **({"cursor": cursor} if cursor else {}), **params)
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "pagination does not end"


async def test_filters(app):
    async with running_app(app) as client:
        ids = await open_tickets(app)
        await set_column(app, [ids["outage"]], status="resolved")
        name_of = {ticket_id: name for name, ticket_id in ids.items()}

        async def names(**params) -> set[str]:
            page = await listed(client, **params)
            assert page["total"] == len(page["items"])
            return {name_of[item["id"]] for item in page["items"]}

        assert await names() == set(TICKETS)
        assert await names(team="payments") == {"refund", "payment"}
        assert await names(priority="P1") == {"payment", "login"}
        assert await names(priority="P0") == {"outage"}
        assert await names(status="resolved") == {"outage"}
        assert await names(status="new") == set(TICKETS) - {"outage", "praise"}
        assert await names(status="closed") == {"praise"}, "praise is thanked and closes itself (auto-reply)"
        assert await names(category="billing") == {"refund", "payment"}
        assert await names(category="billing/refund") == {"refund"}
        assert await names(category="bill") == set(), "a prefix matches whole taxonomy levels only"
        assert await names(category="technical", priority="P2") == {"slow"}
        assert await names(team="sre", status="new") == set()
        assert await names(team="nobody") == set()


async def test_cursor_pagination_walks_every_ticket_once_newest_first(app):
    async with running_app(app) as client:
        ids = await open_tickets(app)
        pages = await all_pages(client, limit=3)

        assert [len(page["items"]) for page in pages] == [3, 3, 1]
        assert {page["total"] for page in pages} == {7}
        walked = [item["id"] for page in pages for item in page["items"]]
        assert walked == list(reversed(ids.values())), "newest first, no overlap, no gap"
        created = [item["created_at"] for page in pages for item in page["items"]]
        assert created == sorted(created, reverse=True)


async def test_cursor_pagination_with_equal_creation_times(app):
    async with running_app(app) as client:
        ids = await open_tickets(app)
        await set_column(app, ids.values(), created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
        pages = await all_pages(client, limit=3)

        walked = [item["id"] for page in pages for item in page["items"]]
        assert len(walked) == len(set(walked)) == 7
        assert set(walked) == set(ids.values())
        assert walked == sorted(walked, reverse=True), "ties are ordered by id"


async def test_cursor_pagination_keeps_the_filters(app):
    async with running_app(app) as client:
        await open_tickets(app)
        pages = await all_pages(client, limit=1, category="billing")
        assert [len(page["items"]) for page in pages] == [1, 1]
        assert {page["total"] for page in pages} == {2}
        assert {item["category"] for page in pages for item in page["items"]} == {"billing/refund",
                                                                                  "billing/payment_failure"}


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize("cursor", [
    "not a cursor",
    b64("no separator"),
    b64("yesterday|abc"),
    b64("2026-01-02T03:04:05|abc"),  # a time without zone
    base64.urlsafe_b64encode(b"\xff\xfe|x").decode(),
], ids=["garbage", "no-separator", "bad-time", "naive-time", "not-utf8"])
async def test_invalid_cursor_is_a_400_problem(app, cursor):
    async with running_app(app) as client:
        await open_tickets(app)
        response = await client.get("/v1/tickets", params={"cursor": cursor, "limit": 2})
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"].endswith("/invalid-cursor")
        assert [error["field"] for error in problem["errors"]] == ["query.cursor"]


@pytest.mark.parametrize(("params", "field"), [
    ({"priority": "P9"}, "query.priority"),
    ({"limit": 0}, "query.limit"),
    ({"limit": 201}, "query.limit"),
])
async def test_invalid_query_is_a_422_problem(app, params, field):
    async with running_app(app) as client:
        response = await client.get("/v1/tickets", params=params)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [error["field"] for error in response.json()["errors"]]


async def test_one_ticket_and_unknown_ticket(app):
    async with running_app(app) as client:
        ids = await open_tickets(app)
        shown = await client.get(f"/v1/tickets/{ids['outage']}")
        assert shown.status_code == 200
        assert (shown.json()["team"], shown.json()["priority"]) == ("sre", "P0")

        missing = await client.get(f"/v1/tickets/{uuid4()}")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["type"].endswith("/not-found")


async def test_tickets_need_the_api_key(app):
    async with running_app(app, api_key="wrong") as client:
        response = await client.get("/v1/tickets")
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"


async def test_teams_come_from_the_routing_table(app):
    async with running_app(app) as client:
        teams = (await client.get("/v1/teams")).json()
        assert {team["key"] for team in teams} == set(app.state.routing_table.teams)
        assert {"key": "sre", "name": "Site reliability", "lead": "oncall.sre@example.com"} in teams


async def test_openapi_documents_problem_responses(app):
    async with running_app(app) as client:
        spec = (await client.get("/openapi.json")).json()
    for path, methods in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in methods.items():
            expected = {"401", "422"} | ({"404"} if "{" in path else set())
            assert expected <= set(operation["responses"]), (method, path)
            for status in expected:
                assert "application/problem+json" in operation["responses"][status]["content"], (method, path, status)
    assert "400" in spec["paths"]["/v1/tickets"]["get"]["responses"]


async def test_ids_outside_their_character_set_are_422_naming_the_field(app):
    async with running_app(app) as client:
        for path, field in (("/v1/agents/bob%20smith", "path.agent_id"), ("/v1/tickets/x%00y", "path.ticket_id"),
                            ("/v1/tickets/%E2%9C%93", "path.ticket_id")):
            answer = await client.get(path)
            assert answer.status_code == 422, (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert field in [e["field"] for e in answer.json()["errors"]], answer.json()
        assert (await client.get("/v1/agents/bob@example.com")).status_code == 404, "a valid id is looked up"
        created = await client.post("/v1/agents", json={"id": "bob smith", "name": "Bob", "teams": ["payments"]})
        assert created.status_code == 422 and created.json()["errors"][0]["field"] == "body.id"
        listed = await client.get("/v1/tickets", params={"assignee": "a\u00e9"})
        assert listed.status_code == 422 and listed.json()["errors"][0]["field"] == "query.assignee"

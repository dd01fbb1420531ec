"""The ticket lifecycle over the API: replies and notes, status transitions with reopen, priority
override and recategorization (audited, announced), duplicates, merge and links, agents going
offline, the public status page and CSAT."""

from uuid import uuid4

from closedloop.testing import running_app
from ticketing.testing import classified, make_app, open_from, outbox_events


async def status(client, ticket_id, to, actor="ana"):
    return await client.post(f"/v1/tickets/{ticket_id}/status", json={"status": to, "actor": actor})


async def test_lifecycle_replies_notes_resolve_csat_and_reopen(app, clock):
    async with running_app(app) as client:
        ticket = await open_from(app, classified("billing/refund"))
        note = await client.post(f"/v1/tickets/{ticket.id}/comments",
                                 json={"author": "ana", "public": False, "body": "Internal: ledger shows 2 captures"})
        assert note.status_code == 201 and note.json()["public"] is False
        assert (await client.get(f"/v1/tickets/{ticket.id}")).json()["first_responded_at"] is None

        clock.advance(minutes=30)
        await client.post(f"/v1/tickets/{ticket.id}/comments", json={"author": "ana", "body": "We are on it."})
        shown = (await client.get(f"/v1/tickets/{ticket.id}")).json()
        assert (shown["status"], shown["first_responded_at"]) == ("open", "2026-11-23T09:30:00Z")

        public = await client.get(f"/v1/public/tickets/{ticket.public_token}", headers={"X-API-Key": ""})
        assert public.status_code == 200
        view = public.json()
        assert [r["body"] for r in view["replies"]] == ["We are on it."]
        assert "ledger" not in public.text and "assignee" not in view and "routing_reason" not in view
        assert view["expected_first_response_by"] is None and view["expected_resolution_by"] is not None

        early = await client.post(f"/v1/public/tickets/{ticket.public_token}/csat", json={"score": 5})
        assert early.status_code == 409 and early.json()["errors"][0]["field"] == "path.token"

        bad = await status(client, ticket.id, "closed")
        assert bad.status_code == 409
        assert bad.headers["content-type"] == "application/problem+json"
        assert bad.json()["errors"] == [{"field": "body.status", "message": "a open ticket cannot become closed"}]

        clock.advance(hours=2)
        resolved = await status(client, ticket.id, "resolved")
        assert resolved.status_code == 200 and resolved.json()["resolved_at"] == "2026-11-23T11:30:00Z"
        [event] = await outbox_events(app, "ticket.resolved.v1")
        assert event["csat_url"] == f"http://127.0.0.1:8003/tickets/{ticket.public_token}/csat"
        assert event["ticket"]["customer"]["email"] == "c@example.com"
        assert event["ticket"]["public_token"] == ticket.public_token

        for score in (2, 4):  # a later rating replaces the first
            rated = await client.post(f"/v1/public/tickets/{ticket.public_token}/csat",
                                      json={"score": score, "comment": "quick"}, headers={"X-API-Key": ""})
            assert rated.status_code == 201, rated.text
        invalid = await client.post(f"/v1/public/tickets/{ticket.public_token}/csat", json={"score": 6})
        assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "body.score"
        report = (await client.get("/v1/reports/csat")).json()
        assert (report["responses"], report["average"], report["distribution"]["4"]) == (1, 4.0, 1)

        reopened = await client.post(f"/v1/public/tickets/{ticket.public_token}/replies", json={"body": "Still wrong"})
        assert reopened.status_code == 201 and reopened.json()["status"] == "open"
        assert (await status(client, ticket.id, "resolved")).status_code == 200
        assert (await status(client, ticket.id, "closed")).status_code == 200
        closed_reply = await client.post(f"/v1/public/tickets/{ticket.public_token}/replies", json={"body": "hi"})
        assert closed_reply.status_code == 409
        actions = [a["action"] for a in (await client.get(f"/v1/tickets/{ticket.id}/audit")).json()]
        assert actions == ["created", "internal_note", "public_reply", "status_changed", "status_changed", "csat",
                           "csat", "public_reply", "reopened", "status_changed", "status_changed"]
        assert (await client.get(f"/v1/public/tickets/{uuid4()}")).status_code == 404


async def test_priority_override_and_recategorization_are_audited_and_announced(app):
    async with running_app(app) as client:
        ticket = await open_from(app, classified("billing/refund"))  # P2: 48 business hours
        changed = await client.patch(f"/v1/tickets/{ticket.id}", json={
            "actor": "lead@example.com", "priority": "P0", "reason": "press is asking",
            "category": "billing/unexpected_charge", "category_label": "Unexpected charge", "tags": ["press"]})
        assert changed.status_code == 200, changed.text
        body = changed.json()
        assert (body["priority"], body["category"], body["tags"]) == ("P0", "billing/unexpected_charge", ["press"])
        assert body["first_response_due_at"] == "2026-11-23T09:15:00Z"  # P0 targets, from the opening
        audit = (await client.get(f"/v1/tickets/{ticket.id}/audit")).json()
        override = next(a for a in audit if a["action"] == "priority_overridden")
        # The authenticated caller (here the development key), not the "actor" the body claims.
        assert override["actor"] == "api_key:dev"
        assert override["details"] == {"priority": ["P2", "P0"], "score": 40, "reason": "press is asking"}
        [event] = await outbox_events(app, "ticket.recategorized.v1")
        assert (event["previous_category"], event["category"], event["actor"]) == (
            "billing/refund", "billing/unexpected_charge", "api_key:dev")
        assert event["text"] == ticket.description

        for patch, field in [({"actor": "x", "team": "ghosts"}, "body.team"),
                             ({"actor": "x", "assignee": "nobody"}, "body.assignee"),
                             ({"priority": "P9"}, "body.priority")]:
            response = await client.patch(f"/v1/tickets/{ticket.id}", json=patch)
            assert response.status_code == 422, (patch, response.text)
            assert field in [e["field"] for e in response.json()["errors"]]
        assert (await client.patch(f"/v1/tickets/{uuid4()}", json={"actor": "x"})).status_code == 404


async def test_duplicates_attach_to_the_open_ticket_and_merge_and_link(app, clock):
    async with running_app(app) as client:
        first = await open_from(app, classified("orders/delivery_delay", customer="cust-1"))
        clock.advance(hours=5)
        again = await open_from(app, classified("orders/delivery_delay", customer="cust-1", text="Where is it??"))
        other_category = await open_from(app, classified("billing/refund", customer="cust-1"))
        assert again.id == first.id and other_category.id != first.id
        via_classify = classified("orders/damaged_item", customer="cust-1", duplicate_of=first.feedback_id)
        assert (await open_from(app, via_classify)).id == first.id
        repeat = await open_from(app, via_classify)  # the same event again: still one attachment
        assert repeat.id == first.id
        # The same problem from another customer: their own ticket (status page, CSAT), linked.
        someone_else = await open_from(app, classified("orders/delivery_delay", customer="cust-2",
                                                       duplicate_of=first.feedback_id))
        assert someone_else.id != first.id
        assert (await client.get(f"/v1/tickets/{someone_else.id}")).json()["related_ticket_ids"] == [first.id]
        shown = (await client.get(f"/v1/tickets/{first.id}")).json()
        assert len(shown["attached_feedback_ids"]) == 2
        attached = await outbox_events(app, "ticket.feedback_attached.v1")
        assert sorted(e["feedback_id"] for e in attached) == sorted(shown["attached_feedback_ids"])
        assert all(e["ticket"]["ticket_id"] == first.id for e in attached)
        comments = (await client.get(f"/v1/tickets/{first.id}/comments")).json()
        assert [c["author_type"] for c in comments] == ["customer", "customer"]

        clock.advance(hours=100)  # outside the window: a new ticket
        later = await open_from(app, classified("orders/delivery_delay", customer="cust-1"))
        assert later.id != first.id

        merged = await client.post(f"/v1/tickets/{later.id}/merge", json={"into_ticket_id": first.id, "actor": "ana"})
        assert merged.status_code == 200, merged.text
        assert later.id in merged.json()["related_ticket_ids"]
        source = (await client.get(f"/v1/tickets/{later.id}")).json()
        assert (source["status"], source["merged_into"]) == ("closed", first.id)
        assert (await open_from(app, classified("x/y", customer="z").model_copy(
            update={"feedback_id": later.feedback_id}))).id == first.id
        again_merge = await client.post(f"/v1/tickets/{later.id}/merge",
                                        json={"into_ticket_id": first.id, "actor": "a"})
        assert again_merge.status_code == 409
        missing = await client.post(f"/v1/tickets/{later.id}/merge", json={"into_ticket_id": "nope", "actor": "a"})
        assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body.into_ticket_id"

        linked = await client.post(f"/v1/tickets/{first.id}/links", json={"ticket_id": other_category.id, "actor": "a"})
        assert linked.status_code == 200 and other_category.id in linked.json()["related_ticket_ids"]
        back = (await client.get(f"/v1/tickets/{other_category.id}")).json()
        assert back["related_ticket_ids"] == [first.id]
        self_link = await client.post(f"/v1/tickets/{first.id}/links", json={"ticket_id": first.id, "actor": "a"})
        assert self_link.status_code == 422


async def test_assignment_round_robin_capacity_and_reassignment_when_offline(app):
    async with running_app(app) as client:
        for agent in ("a1", "a2"):
            response = await client.post("/v1/agents", json={"id": agent, "name": agent, "teams": ["payments"],
                                                             "capacity": 2, "languages": ["en"]})
            assert response.status_code == 201
        tickets = [await open_from(app, classified("billing/refund")) for _ in range(5)]
        assert [t.assignee for t in tickets] == ["a1", "a2", "a1", "a2", None]  # round robin, then full
        german = await client.post("/v1/agents", json={"id": "de1", "name": "Jonas", "teams": ["payments"],
                                                       "capacity": 3, "languages": ["de"]})
        assert german.json()["reassigned"] == 1  # picked up the waiting ticket
        assert (await client.get(f"/v1/tickets/{tickets[4].id}")).json()["assignee"] == "de1"
        de_ticket = await open_from(app, classified("billing/refund", language="de"))
        assert de_ticket.assignee == "de1"

        offline = await client.patch("/v1/agents/a1", json={"status": "offline"})
        assert offline.status_code == 200 and offline.json()["reassigned"] == 2
        agents = {a["id"]: a for a in (await client.get("/v1/agents")).json()}
        assert (agents["a1"]["load"], agents["a2"]["load"], agents["de1"]["load"]) == (0, 2, 3)
        unassigned = (await client.get("/v1/tickets", params={"assignee": "none"})).json()
        assert unassigned["total"] == 1  # nobody had room for the second of a1's tickets
        moved = [e for e in await outbox_events(app, "ticket.assigned.v1") if e["reason"] == "a1 went offline"]
        assert [(e["assignee"], e["previous_assignee"]) for e in moved] == [("de1", "a1")]

        for body, field in [({"id": "x", "name": "x", "teams": ["ghosts"]}, "body.teams"),
                            ({"id": "x", "name": "x", "teams": []}, "body.teams"),
                            ({"id": "x", "name": "x", "teams": ["payments"], "capacity": -1}, "body.capacity")]:
            response = await client.post("/v1/agents", json=body)
            assert response.status_code == 422 and field in [e["field"] for e in response.json()["errors"]]
        assert (await client.post("/v1/agents", json={"id": "a1", "name": "again", "teams": ["payments"]})
                ).status_code == 409
        assert (await client.patch("/v1/agents/ghost", json={"status": "online"})).status_code == 404


async def test_duplicates_across_customers_attach_when_configured(database_url, nats_server):
    app = make_app(database_url, nats_server.url, attach_duplicates_across_customers=True)
    async with running_app(app) as client:
        first = await open_from(app, classified("technical/outage", customer="a"))
        duplicate = classified("technical/outage", customer="b", duplicate_of=first.feedback_id)
        assert (await open_from(app, duplicate)).id == first.id
        page = (await client.get("/v1/tickets")).json()
        assert page["total"] == 1
        assert page["items"][0]["attached_feedback_ids"] == [str(duplicate.feedback_id)]


async def test_public_page_is_rate_limited_per_client_address(database_url, nats_server, clock):
    app = make_app(database_url, nats_server.url, clock, rate_limit_ip_per_minute=6, rate_limit_ip_burst=2)
    async with running_app(app, api_key="") as client:
        ticket = await open_from(app, classified("billing/refund"))
        answers = [await client.get(f"/v1/public/tickets/{ticket.public_token}") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[2].headers["content-type"] == "application/problem+json"
        assert int(answers[2].headers["Retry-After"]) >= 1
        # Guessing tokens is limited as well: an unknown token costs a token too.
        assert (await client.get("/v1/public/tickets/guess")).status_code == 429

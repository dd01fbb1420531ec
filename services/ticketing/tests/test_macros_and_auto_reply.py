"""Macros over the API, suggested replies (cold start, then learned from what agents sent), and the
auto-reply rules: praise thanked and closed (or no ticket), feedback matching a declared incident."""

from uuid import uuid4

from closedloop.events import AlertRaisedV1
from closedloop.testing import running_app
from ticketing import conversation
from ticketing.testing import classified, open_from, outbox_events

EN_MESSAGE = "Card payments fail right now; we are fixing it."
ZH_MESSAGE = "银行卡支付暂时失败，我们正在修复。"


async def names(client, ticket_id):
    response = await client.get(f"/v1/tickets/{ticket_id}/suggested-replies")
    assert response.status_code == 200, response.text
    return [(s["name"], s["language"]) for s in response.json()]


async def test_macro_crud_and_placeholders(app):
    async with running_app(app) as client:
        shipped = (await client.get("/v1/macros")).json()
        assert {m["language"] for m in shipped} == {"en", "zh"} and all(m["builtin"] for m in shipped)
        bad = await client.post("/v1/macros", json={"name": "x", "language": "en", "body": "Hi {{ nickname }}"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.body"
        missing = await client.post("/v1/macros", json={"name": "x", "body": "Hi"})
        assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body.language"
        created = await client.post("/v1/macros", json={
            "name": "Invoice resent", "language": "en", "category": "billing/invoice",
            "body": "Hi {{ customer_name }}"})
        assert created.status_code == 201
        macro = created.json()
        changed = await client.patch(f"/v1/macros/{macro['id']}", json={"body": "Hello {{ customer_name }}"})
        assert changed.json()["body"] == "Hello {{ customer_name }}"
        assert (await client.delete(f"/v1/macros/{macro['id']}")).status_code == 204
        assert (await client.get(f"/v1/macros/{macro['id']}")).status_code == 404
        builtin = shipped[0]["id"]
        assert (await client.delete(f"/v1/macros/{builtin}")).status_code == 204
        assert (await client.get(f"/v1/macros/{builtin}")).json()["active"] is False, "shipped ones are deactivated"


async def test_suggestions_cold_start_by_category_emotion_and_language(app):
    async with running_app(app) as client:
        charge = await open_from(app, classified("billing/unexpected_charge"))
        ranked = await names(client, charge.id)
        assert ranked[0] == ("Duplicate charge reversed", "en")
        assert ("Delivery delay", "en") not in ranked, "macros for another category are not suggested"
        [top] = (await client.get(f"/v1/tickets/{charge.id}/suggested-replies", params={"limit": 1})).json()
        assert "Hello Casey" in top["text"] and f"/tickets/{charge.public_token}" in top["text"]
        assert "{{" not in top["text"]

        angry = await open_from(app, classified("orders/damaged_item", emotions=["anger"]))
        assert (await names(client, angry.id))[0] == ("Apology for the trouble", "en")

        chinese = await open_from(app, classified("orders/delivery_delay", language="zh"))
        ranked = await names(client, chinese.id)
        assert ranked[0] == ("Delivery delay", "zh") and {lang for _, lang in ranked} == {"zh"}
        french = await open_from(app, classified("orders/delivery_delay", language="fr"))
        assert {lang for _, lang in await names(client, french.id)} == {"en"}, "no French macros: English"


async def test_suggestions_learn_from_the_macros_agents_send(app):
    async with running_app(app) as client:
        macros = {m["name"]: m["id"] for m in (await client.get("/v1/macros", params={"language": "en"})).json()}
        for _ in range(4):
            ticket = await open_from(app, classified("billing/unexpected_charge"))
            sent = await client.post(f"/v1/tickets/{ticket.id}/comments", json={
                "author": "ana", "body": "Edited by the agent", "macro_id": macros["Refund on its way"]})
            assert sent.status_code == 201
        unknown = await client.post(f"/v1/tickets/{ticket.id}/comments", json={
            "author": "ana", "body": "x", "macro_id": str(uuid4())})
        assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.macro_id"
        [replied] = [e for e in await outbox_events(app, "ticket.replied.v1")][:1]
        assert replied["text"] == "Edited by the agent", "the agent's final text is what is sent"

        fresh = await open_from(app, classified("billing/unexpected_charge"))
        suggestions = (await client.get(f"/v1/tickets/{fresh.id}/suggested-replies")).json()
        assert suggestions[0]["name"] == "Refund on its way" and suggestions[0]["similar_uses"] == 4
        assert "chosen 4 times on similar tickets" in suggestions[0]["reasons"]
        # Tickets of another top level learn nothing from billing's choices.
        other = await open_from(app, classified("orders/delivery_delay"))
        assert all(s["similar_uses"] == 0 for s in (await client.get(
            f"/v1/tickets/{other.id}/suggested-replies")).json())


async def test_praise_is_thanked_and_closes_itself_or_opens_no_ticket(app):
    async with running_app(app) as client:
        praise = await open_from(app, classified("general/praise", sentiment="positive", language="zh"))
        shown = (await client.get(f"/v1/tickets/{praise.id}")).json()
        assert (shown["status"], shown["first_responded_at"], shown["resolved_at"]) == ("closed", None, None)
        [thanks] = await outbox_events(app, "ticket.replied.v1")
        assert (thanks["kind"], thanks["author_type"], thanks["auto_reply_rule"]) == ("auto_reply", "system", "praise")
        assert "感谢您抽出时间" in thanks["text"]
        actions = [a["action"] for a in (await client.get(f"/v1/tickets/{praise.id}/audit")).json()]
        assert "auto_closed" in actions

        await client.put("/v1/auto-reply", json={"praise": {"mode": "no_ticket"}})
        before = (await client.get("/v1/tickets")).json()["total"]
        await open_from(app, classified("general/praise", sentiment="positive"))
        assert (await client.get("/v1/tickets")).json()["total"] == before
        assert len(await outbox_events(app, "ticket.replied.v1")) == 2

        await client.put("/v1/auto-reply", json={"disabled_categories": ["general"]})
        kept = await open_from(app, classified("general/praise", sentiment="positive"))
        assert (await client.get(f"/v1/tickets/{kept.id}")).json()["status"] == "new"
        invalid = await client.put("/v1/auto-reply", json={"praise": {"mode": "sometimes"}})
        assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "body.praise.mode"


async def test_feedback_matching_an_open_incident_gets_its_message(app, clock):
    async with running_app(app) as client:
        declared = await client.post("/v1/incidents", json={
            "title": "Card payments failing", "description": "PSP outage",
            "public_message": {"en": EN_MESSAGE, "zh": ZH_MESSAGE},
            "categories": ["billing/payment_failure"], "keywords": ["checkout"]})
        assert declared.status_code == 201
        incident = declared.json()
        hit = await open_from(app, classified("billing/payment_failure", language="zh"))
        by_keyword = await open_from(app, classified("technical/bug", text="Checkout page spins forever"))
        miss = await open_from(app, classified("orders/delivery_delay"))
        replies = await outbox_events(app, "ticket.replied.v1")
        assert [(r["ticket"]["ticket_id"], r["text"]) for r in replies] == [
            (hit.id, ZH_MESSAGE), (by_keyword.id, EN_MESSAGE)]
        assert (await client.get(f"/v1/tickets/{hit.id}")).json()["status"] == "new", "an agent still answers"
        assert (await client.get(f"/v1/incidents/{incident['id']}")).json()["ticket_count"] == 2
        assert miss.incident_id is None
        audit = [a["action"] for a in (await client.get(f"/v1/tickets/{hit.id}/audit")).json()]
        assert "incident_linked" in audit and "public_reply" in audit

        await client.post(f"/v1/incidents/{incident['id']}/resolve")
        after = await open_from(app, classified("billing/payment_failure"))
        assert after.incident_id is None

        # A spike alert is proposed as an incident; only once an operator confirms it does it answer.
        alert = AlertRaisedV1(kind="negative_spike", severity="critical", message="Negative share 45%")
        async with app.state.runtime.sessions() as session, session.begin():
            await conversation.on_alert_raised(session, alert, app.state.clock)
        proposed = (await client.get("/v1/incidents", params={"status": "proposed"})).json()["items"]
        assert [p["source"] for p in proposed] == ["alert"]
        await open_from(app, classified("technical/outage"))
        assert len(await outbox_events(app, "ticket.replied.v1")) == 2
        confirmed = await client.post(f"/v1/incidents/{proposed[0]['id']}/confirm", json={
            "public_message": {"en": "We are aware of the outage."}, "categories": ["technical/outage"]})
        assert confirmed.json()["status"] == "open"
        again = await client.post(f"/v1/incidents/{proposed[0]['id']}/confirm", json={"public_message": {"en": "x"}})
        assert again.status_code == 409
        outage = await open_from(app, classified("technical/outage"))
        assert outage.incident_id == proposed[0]["id"]


async def test_incidents_page_newest_first_with_the_status_filter(app, clock):
    async with running_app(app) as client:
        for n in range(3):
            created = await client.post("/v1/incidents", json={
                "title": f"Incident {n}", "description": "x", "public_message": {"en": "We are on it."}})
            assert created.status_code == 201
            clock.advance(minutes=1)
        async with app.state.runtime.sessions() as session, session.begin():
            await conversation.on_alert_raised(session, AlertRaisedV1(kind="negative_spike", severity="warning",
                                                                      message="spike"), app.state.clock)
        first = (await client.get("/v1/incidents", params={"limit": 2})).json()
        assert (first["total"], [i["title"] for i in first["items"]]) == (4, ["negative_spike: spike", "Incident 2"])
        rest = (await client.get("/v1/incidents", params={"limit": 2, "cursor": first["next_cursor"]})).json()
        assert ([i["title"] for i in rest["items"]], rest["next_cursor"]) == (["Incident 1", "Incident 0"], None)
        open_only = (await client.get("/v1/incidents", params={"status": "open"})).json()
        assert (open_only["total"], len(open_only["items"])) == (3, 3)
        bad = await client.get("/v1/incidents", params={"cursor": "not a cursor"})
        assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "query.cursor"

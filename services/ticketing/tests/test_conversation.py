"""The conversation with the customer in ticketing: public replies are announced (internal notes never),
the first response is the reply's acceptance, notify's outcomes show on the reply, customer answers
from e-mail reopen the ticket, CSAT from the page and from surveys, the customer's HTML page."""

from uuid import UUID, uuid4

import pytest

from closedloop.events import (
    CustomerRef,
    FeedbackCsatAnsweredV1,
    FeedbackReplyReceivedV1,
    NotificationDeliveredV1,
    NotificationFailedV1,
    NotificationSuppressedV1,
)
from closedloop.testing import running_app
from ticketing import conversation
from ticketing.testing import classified, make_app, open_from, outbox_events


@pytest.fixture
def app(database_url, nats_server, clock):
    return make_app(database_url, nats_server.url, clock, public_base_url="https://help.shop.example/")


async def handle(app, handler, event):
    async with app.state.runtime.sessions() as session, session.begin():
        return await handler(session, event)


async def test_public_reply_is_announced_internal_note_is_not(app, clock):
    async with running_app(app) as client:
        ticket = await open_from(app, classified("billing/refund", language="zh"))
        note = await client.post(f"/v1/tickets/{ticket.id}/comments",
                                 json={"author": "ana", "public": False, "body": "ledger shows 2 captures"})
        assert note.status_code == 201 and note.json()["delivery_status"] is None
        assert await outbox_events(app, "ticket.replied.v1") == []

        clock.advance(minutes=12)
        reply = await client.post(f"/v1/tickets/{ticket.id}/comments", json={"author": "ana", "body": "On it."})
        assert reply.status_code == 201
        assert (reply.json()["delivery_status"], reply.json()["kind"], reply.json()["channel"]) == (
            "pending", "reply", "email")
        [event] = await outbox_events(app, "ticket.replied.v1")
        assert (event["text"], event["author"], event["author_type"], event["visibility"], event["channel"],
                event["language"], event["first_response"]) == ("On it.", "Support team", "agent", "public", "email",
                                                               "zh", True), "an API key's reply is signed by the team"
        assert event["ticket"]["status_url"] == f"https://help.shop.example/tickets/{ticket.public_token}"
        assert event["ticket"]["reference"] == ticket.id.split("-")[0].upper()
        shown = (await client.get(f"/v1/tickets/{ticket.id}")).json()
        assert shown["first_responded_at"] == "2026-11-23T09:12:00Z"

        await client.post(f"/v1/tickets/{ticket.id}/comments", json={"author": "ana", "body": "Second."})
        second = (await outbox_events(app, "ticket.replied.v1"))[1]
        assert second["first_response"] is False


async def test_delivery_outcomes_show_on_the_reply(app):
    async with running_app(app) as client:
        ticket = await open_from(app, classified("billing/refund"))
        for body in ("one", "two", "three"):
            await client.post(f"/v1/tickets/{ticket.id}/comments", json={"author": "ana", "body": body})
        events = await outbox_events(app, "ticket.replied.v1")
        ids = [UUID(e["event_id"]) for e in events]
        common = {"channel": "email", "target": "c@example.com", "event_type": "ticket.replied.v1",
                  "ticket_id": UUID(ticket.id)}

        async def outcome(event):
            await handle(app, lambda s, e: conversation.on_notification_outcome(s, e, app.state.clock), event)

        await outcome(NotificationDeliveredV1(delivery_id=uuid4(), source_event_id=ids[0], attempts=1,
                                              to_customer=True, **common))
        await outcome(NotificationFailedV1(delivery_id=uuid4(), source_event_id=ids[1], attempts=6,
                                           error="SMTP 550: no such user", to_customer=True, **common))
        await outcome(NotificationSuppressedV1(delivery_id=uuid4(), source_event_id=ids[2], to_customer=True,
                                               reason="no_route", **common))
        # A copy to a subscriber that failed says nothing about the customer's message.
        await outcome(NotificationFailedV1(delivery_id=uuid4(), source_event_id=ids[0], attempts=6, error="x",
                                           to_customer=False, **common))
        comments = (await client.get(f"/v1/tickets/{ticket.id}/comments")).json()
        assert [(c["delivery_status"], c["delivery_error"]) for c in comments] == [
            ("delivered", None), ("undelivered", "email: SMTP 550: no such user"), ("undelivered", "email: no_route")]
        audit = (await client.get(f"/v1/tickets/{ticket.id}/audit")).json()
        assert [a["action"] for a in audit].count("reply_undelivered") == 2

        # The dead-lettered one is replayed and gets through.
        await outcome(NotificationDeliveredV1(delivery_id=uuid4(), source_event_id=ids[1], attempts=7,
                                              to_customer=True, **common))
        comments = (await client.get(f"/v1/tickets/{ticket.id}/comments")).json()
        assert comments[1]["delivery_status"] == "delivered"


async def test_customer_answer_by_email_reopens_and_is_announced(app, clock):
    async with running_app(app) as client:
        ticket = await open_from(app, classified("billing/refund"))
        await client.post(f"/v1/tickets/{ticket.id}/status", json={"status": "resolved", "actor": "ana"})
        feedback_id = uuid4()
        event = FeedbackReplyReceivedV1(
            feedback_id=feedback_id, ticket_id=UUID(ticket.id), channel="email", text="Still broken.",
            customer=CustomerRef(id=ticket.customer_id), message_id="<r1@mail.example>",
            in_reply_to="<cl.x@shop>", matched_by="in_reply_to", received_at=clock.now())
        handler = lambda s, e: conversation.on_reply_received(s, e, app.state.routing_table, app.state.clock,  # noqa: E731
                                                              app.state.ticket_options)
        await handle(app, handler, event)
        await handle(app, handler, event)  # redelivered: joined once
        shown = (await client.get(f"/v1/tickets/{ticket.id}")).json()
        assert shown["status"] == "open" and shown["attached_feedback_ids"] == [str(feedback_id)]
        comments = (await client.get(f"/v1/tickets/{ticket.id}/comments")).json()
        assert [(c["author_type"], c["body"], c["channel"], c["feedback_id"]) for c in comments] == [
            ("customer", "Still broken.", "email", str(feedback_id))]
        [announced] = await outbox_events(app, "ticket.customer_replied.v1")
        assert (announced["message_id"], announced["reopened"], announced["channel"]) == (
            "<r1@mail.example>", True, "email")
        assert (await client.get("/v1/tickets")).json()["total"] == 1


async def test_csat_from_the_page_and_from_a_survey(app, clock):
    async with running_app(app) as client:
        ticket = await open_from(app, classified("billing/refund"))
        await client.post(f"/v1/tickets/{ticket.id}/status", json={"status": "resolved", "actor": "ana"})
        page = await client.post(f"/tickets/{ticket.public_token}/csat", content="score=2&comment=slow",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert page.status_code == 303
        assert page.headers["location"].startswith(f"https://help.shop.example/tickets/{ticket.public_token}")
        survey = FeedbackCsatAnsweredV1(feedback_id=uuid4(), ticket=ticket.id.split("-")[0].upper(), score=5,
                                        comment="fine after all", customer=CustomerRef(id=ticket.customer_id),
                                        received_at=clock.now())
        await handle(app, lambda s, e: conversation.on_csat_answered(s, e, app.state.routing_table, app.state.clock),
                     survey)
        stranger = survey.model_copy(update={"customer": CustomerRef(id="someone-else"), "score": 1})
        await handle(app, lambda s, e: conversation.on_csat_answered(s, e, app.state.routing_table, app.state.clock),
                     stranger)
        report = (await client.get("/v1/reports/csat")).json()
        assert (report["responses"], report["average"]) == (1, 5.0)
        events = await outbox_events(app, "ticket.csat_received.v1")
        assert [(e["score"], e["source"], e["replaced_score"]) for e in events] == [(2, "page", None),
                                                                                   (5, "survey", 2)]


async def test_customer_page_in_english_and_chinese_without_internal_details(app, clock):
    async with running_app(app) as client:
        ticket = await open_from(app, classified("billing/refund", text="我被重复扣款了", language="zh"))
        await client.post(f"/v1/tickets/{ticket.id}/comments",
                          json={"author": "agent@shop.example", "public": False, "body": "SECRET NOTE"})
        page = await client.get(f"/tickets/{ticket.public_token}", headers={"X-API-Key": ""})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        assert '<html lang="zh-Hans">' in html and "对话" in html and "我被重复扣款了" in html
        body = html.split("</style>")[1].replace(ticket.public_token, "TOKEN")
        for hidden in ("SECRET NOTE", "agent@shop.example", ticket.routing_reason, "priority", "P2", "billing",
                       "payments", "confidence"):
            assert hidden not in body
        assert "<script" not in html and "http://" not in html.split("</style>")[0]  # nothing loaded from elsewhere
        assert 'for="reply-body"' in html and 'id="reply-body"' in html  # labelled form fields
        assert page.headers["referrer-policy"] == "no-referrer" and "default-src 'none'" in page.headers[
            "content-security-policy"]

        french = await open_from(app, classified("billing/refund", text="On m'a débité deux fois", language="fr"))
        english = await client.get(f"/tickets/{french.public_token}")
        assert '<html lang="en">' in english.text, "a language without a page falls back to English"
        assert '<html lang="en">' in (await client.get(f"/tickets/{ticket.public_token}?lang=en")).text

        sent = await client.post(f"/tickets/{ticket.public_token}/replies", content="body=%E8%BF%98%E6%B2%A1%E5%88%B0",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert sent.status_code == 303
        comments = (await client.get(f"/v1/tickets/{ticket.id}/comments")).json()
        assert (comments[-1]["author_type"], comments[-1]["body"], comments[-1]["channel"]) == (
            "customer", "还没到", "web")
        empty = await client.post(f"/tickets/{ticket.public_token}/replies", content="body=",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert empty.status_code == 422 and "请填写留言内容" in empty.text

        early = await client.get(f"/tickets/{ticket.public_token}/csat")
        assert early.status_code == 200 and 'name="score"' not in early.text
        await client.post(f"/v1/tickets/{ticket.id}/status", json={"status": "resolved", "actor": "ana"})
        rating = await client.get(f"/tickets/{ticket.public_token}/csat?score=4")
        assert rating.text.count('name="score"') == 5 and 'value="4" required checked' in rating.text
        bad = await client.post(f"/tickets/{ticket.public_token}/csat", content="score=9",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert bad.status_code == 422
        assert (await client.get("/tickets/no-such-token")).status_code == 404

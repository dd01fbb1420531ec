"""A customer's answer continues its ticket: recognised by In-Reply-To/References (our Message-ID or the
customer's own first message), the ticket address in To, the ticket tag in the subject, or a chat/app
thread; only for the ticket's own customer. It is announced as feedback.reply_received.v1, never as
feedback.received.v1 (so classify and a second ticket never see it). CSAT surveys about a ticket."""

import json
from uuid import uuid4

import pytest
from sqlalchemy import select

from closedloop import mailthread
from closedloop.testing import running_app
from ingest.models import Feedback, OutboxMessage

TICKET = str(uuid4())


def mime(sender: str, subject: str, body: str, message_id: str, **headers: str) -> dict:
    lines = [f"From: {sender}", f"To: {headers.pop('To', 'support@shop.example')}", f"Subject: {subject}",
             f"Message-ID: {message_id}", *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
             "Content-Type: text/plain; charset=utf-8", "", body]
    return {"content": "\r\n".join(lines).encode(), "headers": {"Content-Type": "message/rfc822"}}


async def events(app) -> list[tuple[str, dict]]:
    async with app.state.runtime.sessions() as session:
        rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [(row.subject, json.loads(row.payload)) for row in rows]


async def first_ticket(app, client) -> None:
    """The customer's first e-mail, and the ticket ticketing opened for it (as its event would tell)."""
    sent = await client.post("/v1/channels/email", **mime("Ana <ana@example.com>", "Charged twice",
                                                          "I was charged twice.", "<first@mail.example>"))
    assert sent.status_code == 202
    async with app.state.runtime.sessions() as session, session.begin():
        feedback = await session.get(Feedback, sent.json()["id"])
        feedback.ticket_id = TICKET


@pytest.mark.parametrize(("headers", "matched_by"), [
    ({"In_Reply_To": mailthread.message_id(str(uuid4()), TICKET, "shop.example")}, "in_reply_to"),
    ({"References": f"<first@mail.example> {mailthread.message_id(str(uuid4()), TICKET, 'shop.example')}"},
     "references"),
    ({"In_Reply_To": "<first@mail.example>"}, "in_reply_to"),  # a follow-up to the customer's own e-mail
    ({"To": mailthread.reply_address("support@shop.example", TICKET)}, "to_address"),
    ({"Subject_tag": ""}, "subject"),
])
async def test_an_answer_continues_its_ticket(app, headers, matched_by):
    headers = dict(headers)
    subject = f"Re: Charged twice [#{TICKET.split('-')[0].upper()}]" if headers.pop("Subject_tag", None) is not None \
        else "Re: Charged twice"
    async with running_app(app) as client:
        await first_ticket(app, client)
        body = "Still two charges.\n\nOn Mon, Support wrote:\n> We are on it."
        answer = await client.post("/v1/channels/email", **mime("ana@example.com", subject, body, "<a2@mail.example>",
                                                                **headers))
        assert answer.status_code == 202, answer.text
        assert (answer.json()["reply_to_ticket"], answer.json()["status"]) == (TICKET, "ticket_opened")
        published = await events(app)
        assert [subject for subject, _ in published] == ["feedback.received.v1", "feedback.reply_received.v1"]
        reply = published[1][1]
        assert (reply["ticket_id"], reply["matched_by"], reply["message_id"]) == (TICKET, matched_by,
                                                                                "<a2@mail.example>")
        assert reply["text"].strip() == "Still two charges.", "the quoted history is stripped"
        shown = (await client.get(f"/v1/feedback/{answer.json()['id']}")).json()
        assert shown["ticket_id"] == TICKET


async def test_somebody_elses_mail_with_the_marks_is_new_feedback(app):
    async with running_app(app) as client:
        await first_ticket(app, client)
        forged = await client.post("/v1/channels/email", **mime(
            "mallory@example.net", f"Re: x [#{TICKET.split('-')[0].upper()}]", "Add this to Ana's ticket",
            "<m1@example.net>", In_Reply_To=mailthread.message_id(str(uuid4()), TICKET, "shop.example"),
            To=mailthread.reply_address("support@shop.example", TICKET)))
        assert forged.status_code == 202 and forged.json()["reply_to_ticket"] is None
        unknown = await client.post("/v1/channels/email", **mime(
            "ana@example.com", "Another thing", "My address changed", "<a3@mail.example>",
            In_Reply_To=mailthread.message_id(str(uuid4()), str(uuid4()), "shop.example")))
        assert unknown.json()["reply_to_ticket"] is None, "a ticket ingest never saw opened"
        assert [s for s, _ in await events(app)].count("feedback.reply_received.v1") == 0


async def test_a_chat_message_in_a_known_thread_continues_the_ticket(app):
    async with running_app(app) as client:
        first = await client.post("/v1/feedback", json={"channel": "chat", "text": "My refund is missing",
                                                        "thread_id": "conv-9", "customer": {"id": "c-9"}})
        async with app.state.runtime.sessions() as session, session.begin():
            (await session.get(Feedback, first.json()["id"])).ticket_id = TICKET
        follow = await client.post("/v1/feedback", json={"channel": "chat", "text": "Any news?",
                                                         "thread_id": "conv-9", "customer": {"id": "c-9"}})
        assert follow.json()["reply_to_ticket"] == TICKET
        other = await client.post("/v1/feedback", json={"channel": "chat", "text": "Any news?",
                                                        "thread_id": "conv-9", "customer": {"id": "c-10"}})
        assert other.json()["reply_to_ticket"] is None


async def test_a_csat_survey_about_a_ticket_is_announced_for_ticketing(app):
    async with running_app(app) as client:
        answer = await client.post("/v1/channels/survey", json={
            "response_id": "r-1", "customer": {"id": "c-1"}, "csat": 4, "ticket_id": TICKET,
            "comment": "Quick help"})
        assert answer.status_code == 202, answer.text
        [(_, csat)] = [(s, e) for s, e in await events(app) if s == "feedback.csat_answered.v1"]
        assert (csat["ticket"], csat["score"], csat["comment"]) == (TICKET, 4, "Quick help")

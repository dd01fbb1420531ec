"""Replies to the customer: over e-mail as a threaded message (Message-ID, In-Reply-To/References to the
previous message of the conversation, a Reply-To naming the ticket, text and HTML), over a partner's
webhook for chat, or recorded as undeliverable; the outcome events say it was the customer's."""

import json
from uuid import uuid4

from sqlalchemy import select

from closedloop import mailthread
from closedloop.events import CustomerRef, TicketCustomerRepliedV1, TicketRepliedV1
from closedloop.testing import eventually, running_app
from notify.models import OutboxMessage


def replied(ticket, text: str, **changes) -> TicketRepliedV1:
    return TicketRepliedV1(ticket=ticket, comment_id=1, author="Ana", author_type="agent", text=text,
                           language=ticket.language, channel=ticket.channel or "email", **changes)


async def outbox(app, subject: str) -> list[dict]:
    async with app.state.runtime.sessions() as session:
        rows = await session.scalars(select(OutboxMessage).where(OutboxMessage.subject == subject))
        return [json.loads(row.payload) for row in rows]


async def test_email_replies_thread_to_the_conversation(make_app, smtp_server, notify_kit):
    app = make_app(smtp_host="127.0.0.1", smtp_port=smtp_server.port, reply_address="help@shop.example")
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        customer = CustomerRef(id="c-5", email="li@example.com", name="李雷")
        ticket = notify_kit.snapshot(customer=customer, channel="email", language="zh", reference="ABCD1234",
                                     source_message_id="<first@mail.example>",
                                     status_url="https://help.shop.example/tickets/tok")
        ticket_id = str(ticket.ticket_id)
        await notify_kit.publish(app, replied(ticket, "我们已经为您退款。\n三天内到账。"))
        [first] = await eventually(notify_kit.where(client, channel="email", status="delivered"), timeout=15)
        assert first["audience"] == "customer" and first["language"] == "zh"
        [message] = smtp_server.to("li@example.com")
        assert message["Subject"] == "回复：Charged twice [#ABCD1234]"
        assert mailthread.ticket_of_message_id(message["Message-ID"]) == ticket_id
        assert message["Message-ID"].endswith("@shop.example>")
        assert message["In-Reply-To"] == "<first@mail.example>"
        assert message["References"] == "<first@mail.example>"
        assert mailthread.ticket_of_address(message["Reply-To"]) == ticket_id
        assert "三天内到账" in message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert "我们已经为您退款" in html and 'href="https://help.shop.example/tickets/tok"' in html

        # The customer answered; our next reply answers their message and lists the whole thread.
        await notify_kit.publish(app, TicketCustomerRepliedV1(ticket=ticket, comment_id=2, text="还没到",
                                                              channel="email", message_id="<answer@mail.example>"))
        await notify_kit.publish(app, replied(ticket, "请再等一天。"))
        await eventually(notify_kit.where(client, 2, channel="email", status="delivered"), timeout=15)
        second = smtp_server.to("li@example.com")[1]
        assert second["In-Reply-To"] == "<answer@mail.example>"
        assert second["References"].split() == ["<first@mail.example>", message["Message-ID"],
                                                "<answer@mail.example>"]
        delivered = await eventually(lambda: _two(outbox(app, "notification.delivered.v1")), timeout=10)
        assert all(e["to_customer"] and e["event_type"] == "ticket.replied.v1" and e["ticket_id"] == ticket_id
                   for e in delivered)


async def _two(rows):
    found = await rows
    return found if len(found) == 2 else None


async def test_chat_replies_go_to_the_partner_endpoint(make_app, http_receiver, notify_kit):
    app = make_app()
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        partner = await client.post("/v1/webhooks", json={"name": "chat partner", "url": http_receiver.url("/chat"),
                                                          "event_types": ["ticket.replied.v1"],
                                                          "customer_channels": ["chat"]})
        assert partner.status_code == 201 and partner.json()["customer_channels"] == ["chat"]
        ticket = notify_kit.snapshot(channel="chat", thread_id="conv-77")
        await notify_kit.publish(app, replied(ticket, "Hi from support"))
        [delivery] = await eventually(notify_kit.where(client, channel="webhook", status="delivered"), timeout=15)
        assert delivery["audience"] == "customer"
        [request] = http_receiver.requests
        body = request.json()
        assert body["type"] == "ticket.replied.v1" and body["data"]["ticket"]["thread_id"] == "conv-77"
        assert body["data"]["text"] == "Hi from support"
        assert (await notify_kit.deliveries(client, channel="email"))["total"] == 0, "chat is answered in chat"


async def test_a_reply_with_no_way_to_the_customer_is_recorded_and_announced(make_app, notify_kit):
    app = make_app()
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        ticket = notify_kit.snapshot(channel="app", customer=CustomerRef(id="anon-1"))
        event = replied(ticket, "Thanks")
        await notify_kit.publish(app, event)
        [delivery] = await eventually(notify_kit.where(client, status="suppressed"), timeout=15)
        assert delivery["reason"].startswith("no_route") and delivery["audience"] == "customer"
        [announced] = await outbox(app, "notification.suppressed.v1")
        assert (announced["source_event_id"], announced["to_customer"]) == (str(event.event_id), True)


def test_threading_headers_are_written_as_they_are():
    """A Message-ID is longer than a folded line: it must not become an encoded word."""
    from notify.channels import Outgoing, Senders, email_payload
    from notify.settings import NotifySettings

    long_id = mailthread.message_id(str(uuid4()), str(uuid4()), "support.shop.example")
    payload = email_payload("Re: x [#ABCD1234]", "text", "<p>text</p>", {
        "Message-ID": long_id, "In-Reply-To": long_id, "References": f"<first@mail.example> {long_id}",
        "Reply-To": "support+0123@shop.example"})
    raw = Senders(NotifySettings()).email_bytes(Outgoing(str(uuid4()), "email", "a@example.com", payload,
                                                        "ticket.replied.v1")).decode()
    assert f"\r\nIn-Reply-To: {long_id}\r\n" in raw and f"References: <first@mail.example> {long_id}" in raw
    assert "=?utf-8?" not in raw

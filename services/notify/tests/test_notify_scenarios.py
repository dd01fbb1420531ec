"""The issue's scenarios through the HTTP API, with real parts: events from a real nats-server, e-mail to
a real aiosmtpd server, webhooks and Slack messages to real local HTTP receivers."""

from datetime import timedelta

from closedloop.events import AlertRaisedV1, CustomerRef, TicketCreatedV1
from closedloop.testing import eventually, running_app
from notify import signing
from notify.sealed import slack_name


async def test_acknowledgement_email_reaches_smtp_in_the_customers_language(make_app, smtp_server, notify_kit):
    app = make_app(smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_from="Support <help@shop.example>")
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        # The customer's language travels on the customer record (`locale`, from ingest's customer profile).
        customer = CustomerRef.model_validate({"id": "c-9", "email": "lucia@example.com", "name": "Lucía",
                                               "locale": "es-MX"})
        # The links come with the event, built by ticketing from its public base URL.
        ticket = notify_kit.snapshot(customer=customer, public_token="pub-abc123",
                                     status_url="https://status.shop.example/t/pub-abc123")
        ticket = ticket.model_copy(update={"customer": customer})
        event = TicketCreatedV1(ticket=ticket)
        ticket = ticket.model_copy(update={"first_response_due_at": event.occurred_at + timedelta(hours=2)})
        event = TicketCreatedV1(ticket=ticket, event_id=event.event_id, occurred_at=event.occurred_at)
        await notify_kit.publish(app, event)

        [delivery] = await eventually(notify_kit.where(client, channel="email", status="delivered"), timeout=15)
        [message] = smtp_server.to("lucia@example.com")
        assert smtp_server.envelopes == [("help@shop.example", ["lucia@example.com"])]
        assert message["From"] == "Support <help@shop.example>"
        reference = str(ticket.ticket_id).split("-")[0].upper()
        assert message["Subject"] == f"Hemos recibido tu mensaje: Charged twice [#{reference}]"
        assert message["Closedloop-Delivery-Id"] == delivery["id"]
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert "Hola Lucía" in text
        assert "https://status.shop.example/t/pub-abc123" in text
        assert "en un plazo de 2 horas" in text
        assert '<a href="https://status.shop.example/t/pub-abc123">' in html
        assert (delivery["recipient"], delivery["language"], delivery["template_key"]) == (
            "lucia@example.com", "es", "ticket.created.v1")
        assert (delivery["ticket_id"], delivery["attempts"], delivery["last_status_code"]) == (
            str(ticket.ticket_id), 1, 250)
        # The webhook-only view is unchanged: no webhook was registered.
        assert (await notify_kit.deliveries(client, channel="webhook"))["total"] == 0


async def test_unknown_language_falls_back_and_html_is_escaped(make_app, smtp_server, notify_kit):
    app = make_app(smtp_host="127.0.0.1", smtp_port=smtp_server.port)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        customer = CustomerRef.model_validate({"id": "c-2", "email": "kim@example.com", "locale": "ko"})
        ticket = notify_kit.snapshot(customer=customer, title="<script>alert(1)</script> broken", priority="P0")
        await notify_kit.publish(app, TicketCreatedV1(ticket=ticket))

        [delivery] = await eventually(notify_kit.where(client, channel="email", status="delivered"), timeout=15)
        assert delivery["language"] == "en"
        [message] = smtp_server.to("kim@example.com")
        # (with the ticket tag the subject is long enough to be folded; unfolding leaves the leading space)
        assert message["Subject"].strip().startswith("We received your message")
        html = message.get_body(("html",)).get_content()
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert "<script>" in message.get_body(("plain",)).get_content(), "text bodies are not escaped"
        assert "within 15 minutes" in message.get_body(("plain",)).get_content(), "P0 default target"


async def test_webhook_failing_twice_with_503_gets_exactly_one_verified_success(make_app, http_receiver,
                                                                                 notify_kit):
    http_receiver.answer("/partner", 503, 503, 200)
    app = make_app()
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        webhook = (await client.post("/v1/webhooks", json={"name": "partner",
                                                           "url": http_receiver.url("/partner")})).json()
        event = TicketCreatedV1(ticket=notify_kit.snapshot())
        await notify_kit.publish(app, event)

        [delivery] = await eventually(notify_kit.where(client, channel="webhook", status="delivered"), timeout=15)
        assert (delivery["attempts"], delivery["last_status_code"]) == (3, 200)
        requests = http_receiver.received("/partner")
        assert [r.headers["Closedloop-Delivery-Id"] for r in requests] == [delivery["id"]] * 3
        successes = [r for r in requests[2:]]
        assert len(successes) == 1
        assert signing.verify(webhook["secret"], successes[0].body, successes[0].headers[signing.HEADER])
        assert successes[0].json()["data"]["event_id"] == str(event.event_id)
        assert (await notify_kit.deliveries(client, status="delivered"))["total"] == 1


async def test_receiver_that_always_fails_is_dead_lettered_and_replayed(make_app, http_receiver, notify_kit):
    http_receiver.answer("/down", 500)
    app = make_app(webhook_max_attempts=3, circuit_failure_threshold=50)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        webhook = (await client.post("/v1/webhooks", json={"name": "down", "url": http_receiver.url("/down")})).json()
        await notify_kit.publish(app, TicketCreatedV1(ticket=notify_kit.snapshot()))

        [failed] = await eventually(notify_kit.where(client, status="failed"), timeout=15)
        assert (failed["attempts"], failed["last_status_code"], failed["channel"]) == (3, 500, "webhook")
        assert len(http_receiver.received("/down")) == 3
        detail = (await client.get(f"/v1/deliveries/{failed['id']}")).json()
        assert detail["payload"].encode() == http_receiver.received("/down")[0].body

        http_receiver.answer("/down", 200)
        replayed = await client.post(f"/v1/deliveries/{failed['id']}/replay")
        assert replayed.status_code == 202, replayed.text
        [delivered] = await eventually(notify_kit.where(client, status="delivered"), timeout=15)
        assert (delivered["id"], delivered["attempts"]) == (failed["id"], 1)
        assert (await notify_kit.deliveries(client, status="failed"))["total"] == 0
        last = http_receiver.received("/down")[-1]
        assert signing.verify(webhook["secret"], last.body, last.headers[signing.HEADER])


async def test_alerts_go_to_the_operations_slack_hook(make_app, http_receiver, notify_kit):
    app = make_app(ops_slack_webhook_url=http_receiver.url("/slack/ops"),
                   quiet_hours_start="00:00", quiet_hours_end="23:59")  # alerts ignore quiet hours
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        alert = AlertRaisedV1(kind="negative_spike", severity="critical", message="Negative share at 42%",
                              metrics={"negative_share": 0.42})
        await notify_kit.publish(app, alert)

        [delivery] = await eventually(notify_kit.where(client, channel="slack", status="delivered"), timeout=15)
        [request] = http_receiver.received("/slack/ops")
        body = request.json()
        assert body["text"].startswith(":rotating_light: *CRITICAL* negative_spike: Negative share at 42%")
        assert "negative_share: 0.42" in body["text"]
        assert body["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn", "text": body["text"].split(
            "\n\n")[0]}}
        assert "Closedloop-Signature" not in request.headers
        # The hook's URL is a credential: deliveries name it by its fingerprint only (notify.sealed).
        assert delivery["recipient"] == delivery["target"] == slack_name(http_receiver.url("/slack/ops"))


async def test_smtp_errors_permanent_fail_at_once_and_disabled_email_is_recorded(make_app, smtp_server,
                                                                                  notify_kit):
    smtp_server.refuse["gone@example.com"] = "550 5.1.1 No such user"
    app = make_app(smtp_host="127.0.0.1", smtp_port=smtp_server.port)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        customer = CustomerRef(id="c-3", email="gone@example.com")
        await notify_kit.publish(app, TicketCreatedV1(ticket=notify_kit.snapshot(customer=customer)))
        [failed] = await eventually(notify_kit.where(client, status="failed"), timeout=15)
        assert (failed["attempts"], failed["last_status_code"]) == (1, 550)
        assert "No such user" in failed["last_error"]
        assert smtp_server.messages == []


async def test_email_is_suppressed_with_a_reason_when_smtp_is_not_configured(make_app, notify_kit):
    app = make_app()  # no NOTIFY_SMTP_HOST
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        await notify_kit.publish(app, TicketCreatedV1(ticket=notify_kit.snapshot()))
        [suppressed] = await eventually(notify_kit.where(client, status="suppressed"), timeout=15)
        assert suppressed["reason"].startswith("channel_disabled")
        assert suppressed["recipient"] == "ana@example.com"

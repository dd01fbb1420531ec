"""Templates over the API: shipped defaults, CRUD, validation, sandboxing, preview, and an edited template
used for a real e-mail."""

import pytest

from closedloop.events import CustomerRef, TicketCreatedV1
from closedloop.testing import eventually, running_app


async def test_shipped_templates_are_listed_in_several_languages(make_app):
    async with running_app(make_app()) as client:
        templates = (await client.get("/v1/templates", params={"key": "ticket.created.v1"})).json()
        assert {t["language"] for t in templates} >= {"en", "es", "pt", "de"}
        assert all(t["builtin"] and t["channel"] == "email" for t in templates)
        keys = {t["key"] for t in (await client.get("/v1/templates")).json()}
        assert keys >= {"ticket.created.v1", "ticket.assigned.v1", "ticket.sla_warning.v1", "ticket.sla_breached.v1",
                        "ticket.resolved.v1", "alert.raised.v1", "event"}
        [german] = (await client.get("/v1/templates", params={"key": "ticket.resolved.v1", "language": "de"})).json()
        preview = await client.post(f"/v1/templates/{german['id']}/preview")
        assert preview.status_code == 200, preview.text
        assert preview.json()["subject"].startswith("Wie zufrieden waren Sie?")
        assert "bewerten" in preview.json()["text"]


async def test_template_crud_and_preview(make_app):
    async with running_app(make_app()) as client:
        body = {"key": "ticket.created.v1", "channel": "email", "language": "FR",
                "subject": "Nous avons reçu votre message : {{ ticket.title }}",
                "body_text": "Bonjour {{ customer.name }}, réponse sous {{ expected_response }}: {{ status_url }}",
                "body_html": "<p>Bonjour {{ customer.name }}</p><p>{{ ticket.title }}</p>"}
        created = await client.post("/v1/templates", json=body)
        assert created.status_code == 201, created.text
        template = created.json()
        assert (template["language"], template["builtin"]) == ("fr", False)
        assert (await client.post("/v1/templates", json=body)).status_code == 409

        preview = await client.post(f"/v1/templates/{template['id']}/preview",
                                    json={"data": {"customer": {"name": "Jo"},
                                                   "ticket": {"title": "<b>bold</b> claim"}}})
        assert preview.status_code == 200, preview.text
        shown = preview.json()
        assert shown["subject"] == "Nous avons reçu votre message : <b>bold</b> claim"
        assert shown["text"].startswith("Bonjour Jo, réponse sous 2 hours")
        assert "&lt;b&gt;bold&lt;/b&gt; claim" in shown["html"], "HTML is autoescaped"
        assert shown["context"]["status_url"].endswith("/pub-3f2b9c1e")

        taken = await client.put(f"/v1/templates/{template['id']}", json={**body, "language": "es"})
        assert taken.status_code == 409, "es is one of the shipped templates"
        assert taken.headers["content-type"] == "application/problem+json"
        changed = await client.put(f"/v1/templates/{template['id']}", json={**body, "subject": "Reçu"})
        assert (changed.status_code, changed.json()["subject"]) == (200, "Reçu")
        assert (await client.get(f"/v1/templates/{template['id']}")).json()["subject"] == "Reçu"

        assert (await client.delete(f"/v1/templates/{template['id']}")).status_code == 204
        for method in ("get", "delete"):
            missing = await getattr(client, method)(f"/v1/templates/{template['id']}")
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/problem+json"
        assert (await client.post(f"/v1/templates/{template['id']}/preview")).status_code == 404


@pytest.mark.parametrize(("change", "field"), [
    ({"body_text": "Hello {{ customer.name "}, "body.body_text"),
    ({"body_html": "{% if x %}<p>"}, "body.body_html"),
    ({"subject": None}, "body.subject"),
    ({"subject": "   "}, "body.subject"),
    ({"body_text": ""}, "body.body_text"),
    ({"language": "english!"}, "body.language"),
    ({"channel": "pigeon"}, "body.channel"),
    ({"key": ""}, "body.key"),
], ids=["syntax", "html-syntax", "no-subject", "blank-subject", "empty-body", "language", "channel", "key"])
async def test_invalid_templates_are_422_naming_the_field(make_app, change, field):
    body = {"key": "k", "channel": "email", "language": "en", "subject": "s", "body_text": "t", **change}
    async with running_app(make_app()) as client:
        response = await client.post("/v1/templates", json=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in response.json()["errors"]]
        assert (await client.get("/v1/templates", params={"key": "k"})).json() == []


async def test_the_sandbox_refuses_python_internals(make_app):
    async with running_app(make_app()) as client:
        response = await client.post("/v1/templates/preview", json={
            "key": "event", "channel": "slack", "language": "en",
            "body_text": "{{ ''.__class__.__mro__[1].__subclasses__() }}"})
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["body.body_text"]
        assert "SecurityError" in response.json()["errors"][0]["message"] or "unsafe" in response.text

        ok = await client.post("/v1/templates/preview", json={
            "key": "alert.raised.v1", "channel": "slack", "language": "en",
            "body_text": "*{{ alert.kind }}*\n\n{{ alert.message }}"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["slack"]["text"].startswith("*negative_spike*")
        assert len(ok.json()["slack"]["blocks"]) == 2


async def test_an_edited_template_is_used_for_the_next_email(make_app, smtp_server, notify_kit):
    app = make_app(smtp_host="127.0.0.1", smtp_port=smtp_server.port)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        [english] = (await client.get("/v1/templates", params={"key": "ticket.created.v1", "language": "en"})).json()
        edited = {k: english[k] for k in ("key", "channel", "language", "body_html")}
        edited |= {"subject": "Got it! #{{ reference }}", "body_text": "Thanks {{ customer.name }}: {{ status_url }}"}
        assert (await client.put(f"/v1/templates/{english['id']}", json=edited)).status_code == 200

        ticket = notify_kit.snapshot(customer=CustomerRef(id="c-8", email="sam@example.com", name="Sam"),
                                     status_url="https://support.example.com/tickets/tok-8")
        await notify_kit.publish(app, TicketCreatedV1(ticket=ticket))
        await eventually(notify_kit.where(client, status="delivered"), timeout=15)
        [message] = smtp_server.to("sam@example.com")
        reference = str(ticket.ticket_id)[:8].upper()
        # The ticket tag is appended to every customer e-mail, so the answer finds its ticket.
        assert message["Subject"] == f"Got it! #{reference} [#{reference}]"
        assert message.get_body(("plain",)).get_content().startswith(
            "Thanks Sam: https://support.example.com/tickets/tok-8")

"""Channel webhooks (raw MIME e-mail, app reviews, chat, surveys) and their signatures, over HTTP
against a real database and a real nats-server."""

import json
import time

import nats
import pytest
from sqlalchemy import func, select

from closedloop.testing import running_app
from ingest.channels import html_to_text, parse_email, sign
from ingest.models import Feedback, OutboxMessage

REPLY_MIME = b"""From: Ana Lima <Ana.Lima@Example.com>
To: support@closedloop.dev
Subject: Re: Export broken
Message-ID: <reply-2@example.com>
In-Reply-To: <answer-1@closedloop.dev>
References: <first-0@example.com> <answer-1@closedloop.dev>
Content-Language: pt-BR
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><head><style>p {color: red}</style></head><body><p>O export continua quebrado, =
liguem para +351 912 345 678.</p><p>Obrigada,<br>Ana</p>
<div class=3D"gmail_quote">Em seg., 2 de mar. de 2026, Suporte escreveu:<blockquote>J=C3=A1 =
corrigimos.</blockquote></div></body></html>
--b1--
"""

PLAIN_MIME = b"""From: bob@example.org
Subject: Login loop
Message-ID: <m-1@example.org>
Content-Type: text/plain; charset=utf-8

The login page keeps sending me back to the start.

On Mon, 2 Mar 2026 at 09:00, Support <help@closedloop.dev> wrote:
> Have you tried clearing cookies? Call 555-123-4567.

--
Bob
"""


@pytest.fixture
def app(make_app):
    return make_app(channel_secrets={"app_review": "review-secret"})


async def count(app, model) -> int:
    async with app.state.runtime.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


def mime(body: bytes) -> dict:
    return {"content": body.replace(b"\n", b"\r\n"), "headers": {"Content-Type": "message/rfc822"}}


def test_parse_email_takes_text_from_html_and_the_thread_from_references():
    parsed = parse_email(REPLY_MIME.replace(b"\n", b"\r\n"))
    assert parsed.sender == "ana.lima@example.com"
    assert parsed.sender_name == "Ana Lima"
    assert parsed.subject == "Re: Export broken"
    assert parsed.thread_id == "<first-0@example.com>"
    assert parsed.message_id == "<reply-2@example.com>"
    assert parsed.language == "pt-BR"
    assert "O export continua quebrado" in parsed.text
    assert "corrigimos" not in parsed.text and "color" not in parsed.text


def test_html_to_text_keeps_visible_words_but_no_styles_or_quotes():
    html = ("<html><head><title>t</title><style>p {}</style></head><body><p>Hello <b>there</b>,<br>it is "
            "broken &amp; slow.</p><div class='gmail_quote'>On Mon, Support wrote:<blockquote>old <p>reply</p>"
            "</blockquote></div><p>One more thing<img src=x>: exports.</p><script>alert(1)</script></body></html>")
    lines = [line for line in html_to_text(html).split("\n") if line]
    assert lines == ["Hello there,", "it is broken & slow.", "One more thing: exports."]


async def test_email_reply_arrives_without_quoted_thread_signature_or_phone_downstream(app, nats_server):
    nc = await nats.connect(nats_server.url)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        sub = await nc.jetstream().subscribe("feedback.received.v1", durable="t")
        response = await client.post("/v1/channels/email", **mime(REPLY_MIME))
        assert response.status_code == 202, response.text
        event = json.loads((await sub.next_msg(timeout=10)).data)
        assert event["text"] == "O export continua quebrado, liguem para [phone]."
        assert event["channel"] == "email"
        assert event["subject"] == "Re: Export broken"
        assert event["customer"]["id"] == "ana.lima@example.com"
        assert event["customer"]["email"] == "ana.lima@example.com"
        assert event["customer"]["locale"] == "pt-BR"
        assert event["thread_id"] == "<first-0@example.com>"
        assert event["source_id"] == event["external_id"] == "<reply-2@example.com>"
        assert event["pii_masked"] == ["phone"]

        plain = await client.post("/v1/channels/email", **mime(PLAIN_MIME))
        assert plain.status_code == 202, plain.text
        event = json.loads((await sub.next_msg(timeout=10)).data)
        assert event["text"] == "The login page keeps sending me back to the start."
        assert event["thread_id"] == "<m-1@example.org>"

        again = await client.post("/v1/channels/email", **mime(PLAIN_MIME))
        assert again.status_code == 200
        assert (again.json()["id"], again.json()["duplicate_reason"]) == (plain.json()["id"], "source_id")
        assert await count(app, Feedback) == 2
    await nc.close()


@pytest.mark.parametrize(("raw", "content_type", "status", "field"), [
    (PLAIN_MIME.replace(b"From: bob@example.org\n", b""), "message/rfc822", 422, "body.headers.From"),
    (PLAIN_MIME.replace(b"The login page keeps sending me back to the start.", b"asdfghjkl qwertz"),
     "message/rfc822", 422, "body.text"),
    (b"From: a@b.io\nSubject: hi\nContent-Type: image/png\n\nxx", "message/rfc822", 422, "body.text"),
    (PLAIN_MIME, "application/json", 415, None),
], ids=["no-sender", "keyboard-mash", "no-text-part", "wrong-content-type"])
async def test_bad_email_is_a_problem_naming_the_field_and_stores_nothing(app, raw, content_type, status, field):
    async with running_app(app) as client:
        response = await client.post("/v1/channels/email", content=raw.replace(b"\n", b"\r\n"),
                                     headers={"Content-Type": content_type})
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        if field:
            assert field in [error["field"] for error in response.json()["errors"]]
        assert (await count(app, Feedback), await count(app, OutboxMessage)) == (0, 0)


REVIEW = {"review_id": "gp-1", "store": "google_play", "app_version": "5.2.1", "rating": 2, "title": "Crashes",
          "text": "Crashes every time I open the camera.", "author_id": "u-77", "author_name": "Ana"}


def signed(payload: dict, secret: str = "review-secret", timestamp: int | None = None) -> dict:
    raw = json.dumps(payload).encode()
    return {"content": raw, "headers": {"Content-Type": "application/json",
                                        "Closedloop-Signature": sign(secret, raw, timestamp)}}


async def test_app_review_with_a_valid_signature_becomes_the_standard_record(app):
    async with running_app(app) as client:
        response = await client.post("/v1/channels/app-review", **signed(REVIEW))
        assert response.status_code == 202, response.text
        shown = (await client.get(response.json()["status_url"])).json()
        assert (shown["channel"], shown["rating"], shown["app_version"], shown["platform"]) == \
            ("app_review", 2.0, "5.2.1", "android")
        assert (shown["subject"], shown["external_id"], shown["customer"]["id"]) == ("Crashes", "gp-1", "u-77")
        assert shown["metadata"] == {"store": "google_play"}


@pytest.mark.parametrize("request_args", [
    {"json": REVIEW},
    signed(REVIEW, secret="wrong-secret"),
    signed(REVIEW, timestamp=int(time.time()) - 3600),
    {"content": json.dumps(REVIEW).encode(), "headers": {"Content-Type": "application/json",
                                                         "Closedloop-Signature": "v1=abc"}},
    {**signed(REVIEW), "content": json.dumps({**REVIEW, "rating": 5}).encode()},
], ids=["missing", "wrong-secret", "too-old", "malformed", "body-changed"])
async def test_app_review_without_a_valid_signature_is_refused(app, request_args):
    async with running_app(app) as client:
        response = await client.post("/v1/channels/app-review", **request_args)
        assert response.status_code == 401, response.text
        problem = response.json()
        assert problem["type"].endswith("/invalid-signature")
        assert problem["errors"][0]["field"] == "header.Closedloop-Signature"
        assert await count(app, Feedback) == 0


async def test_chat_transcript_keeps_the_customers_words(app):
    transcript = {"conversation_id": "conv-1", "customer": {"id": "c-3", "tier": "vip"}, "messages": [
        {"author": "bot", "text": "Hi! How can I help?"},
        {"author": "customer", "text": "My refund has not arrived.", "sent_at": "2026-11-20T10:00:00Z"},
        {"author": "agent", "text": "Let me check, please send your card number."},
        {"author": "customer", "text": "It has been two weeks.", "sent_at": "2026-11-20T10:05:00Z"}]}
    async with running_app(app) as client:
        response = await client.post("/v1/channels/chat", json=transcript)
        assert response.status_code == 202, response.text
        shown = (await client.get(response.json()["status_url"])).json()
        assert shown["text"] == "My refund has not arrived.\nIt has been two weeks."
        assert (shown["thread_id"], shown["external_id"], shown["customer"]["tier"]) == ("conv-1", "conv-1", "vip")
        assert shown["metadata"]["agent_messages"] == 1 and shown["metadata"]["messages"] == 4

        silent = {**transcript, "conversation_id": "conv-2", "messages": transcript["messages"][:1]}
        refused = await client.post("/v1/channels/chat", json=silent)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "body.messages"


async def test_survey_answers(app):
    async with running_app(app) as client:
        nps = await client.post("/v1/channels/survey", json={
            "response_id": "r-1", "survey_id": "nps-q4", "customer": {"id": "c-4"}, "nps": 3,
            "comment": "Support took a week to answer."})
        csat = await client.post("/v1/channels/survey", json={
            "response_id": "r-2", "customer": {"id": "c-5"}, "csat": 5})
        assert (nps.status_code, csat.status_code) == (202, 202), (nps.text, csat.text)
        shown = (await client.get(nps.json()["status_url"])).json()
        assert (shown["nps"], shown["csat"], shown["rating"], shown["text"]) == \
            (3, None, 3.0, "Support took a week to answer.")
        assert shown["metadata"] == {"survey_id": "nps-q4", "score_only": False}
        shown = (await client.get(csat.json()["status_url"])).json()
        assert (shown["csat"], shown["rating"], shown["metadata"]["score_only"]) == (5, 5.0, True)

        for bad, field in [({"nps": 11}, "body.nps"), ({"nps": 5, "csat": 4}, "body.csat"), ({}, "body.csat"),
                           ({"csat": 0}, "body.csat"), ({"nps": 5, "comment": "Ã©Ã©"}, "body.comment")]:
            response = await client.post("/v1/channels/survey",
                                         json={"response_id": "r-x", "customer": {"id": "c-6"}, **bad})
            assert response.status_code == 422, (bad, response.text)
            assert field in [error["field"] for error in response.json()["errors"]], (bad, response.text)
        assert await count(app, Feedback) == 2

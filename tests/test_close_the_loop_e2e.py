"""Closing the loop, end to end through the HTTP APIs with real servers: the four services as processes,
nats-server, aiosmtpd as the mail server. Feedback by e-mail → ticket → the agent's reply arrives by
SMTP threaded to the customer's message → the customer's real MIME answer lands on the same ticket →
resolve → the CSAT link from the e-mail, fetched with GET, shows a page whose form submits → the score
is in the CSAT report."""

import re
from email.message import EmailMessage
from email.utils import make_msgid
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from closedloop.devtools.processes import SERVICES
from closedloop.testing import requires_postgres
from tests.system import SmtpSink, start_system, stop_system, wait_for

pytestmark = pytest.mark.e2e

CUSTOMER = "ana@example.com"


class Forms(HTMLParser):
    """The forms of a page: action, method and the names of their fields."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.forms.append({"action": values.get("action"), "method": values.get("method"), "fields": {}})
        elif tag in ("input", "textarea") and self.forms and values.get("name"):
            self.forms[-1]["fields"].setdefault(values["name"], []).append(values.get("value"))


def mime(subject: str, text: str, message_id: str, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Ana Lima <{CUSTOMER}>"
    message["To"] = headers.pop("to", "support@shop.example")
    message["Subject"] = subject
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return bytes(message)


def send_email(ingest: httpx.Client, raw: bytes) -> dict:
    response = ingest.post("/v1/channels/email", content=raw, headers={"Content-Type": "message/rfc822"})
    assert response.status_code == 202, response.text
    return response.json()


def one_message(smtp: SmtpSink, subject_start: str) -> EmailMessage:
    found = wait_for(lambda: [m for m in smtp.to(CUSTOMER) if str(m["Subject"]).strip().startswith(subject_start)],
                     timeout=60)
    assert len(found) == 1, [str(m["Subject"]) for m in smtp.to(CUSTOMER)]
    return found[0]


def close_the_loop(system, smtp: SmtpSink) -> dict:
    ingest, ticketing, notify = system.client("ingest"), system.client("ticketing"), system.client("notify")

    # 1. The customer writes to support.
    original_id = make_msgid(domain="mail.example")
    accepted = send_email(ingest, mime("Charged twice for my order",
                                       "Hello, I was charged twice for the same order. Please refund one of them.",
                                       original_id))
    feedback = wait_for(lambda: (f := ingest.get(f"/v1/feedback/{accepted['id']}").json())["ticket_id"] and f,
                        timeout=120)
    ticket_id = feedback["ticket_id"]
    assert ticketing.get("/v1/tickets").json()["total"] == 1

    # The acknowledgement answers the customer's message.
    ack = one_message(smtp, "We received your message")
    assert ack["In-Reply-To"] == original_id

    # 2. The agent picks a suggested reply, edits it, and sends the final text.
    suggestions = ticketing.get(f"/v1/tickets/{ticket_id}/suggested-replies").json()
    assert suggestions and all(s["language"] == "en" for s in suggestions)
    final_text = suggestions[0]["text"] + "\n\nI have asked our payments team to check both charges."
    reply = ticketing.post(f"/v1/tickets/{ticket_id}/comments", json={
        "author": "agent-1", "body": final_text, "macro_id": suggestions[0]["macro_id"]})
    assert reply.status_code == 201, reply.text
    answer = one_message(smtp, "Re: Charged twice for my order")
    text_part = answer.get_body(("plain",)).get_content()
    html_part = answer.get_body(("html",)).get_content()
    assert "I have asked our payments team to check both charges." in text_part
    assert "payments team" in html_part
    assert answer["In-Reply-To"] == ack["Message-ID"], "the reply answers the previous message of the thread"
    assert answer["References"].split() == [original_id, ack["Message-ID"]]
    assert ticket_id.replace("-", "") in answer["Reply-To"]
    assert answer["Message-ID"] not in (original_id, ack["Message-ID"])
    # As written on the wire: Message-IDs, never RFC 2047 encoded words (mail clients would not match them).
    assert all(b"In-Reply-To: <" in raw and b"=?utf-8?q?=3C" not in raw for raw in smtp.raw)
    # Ticketing learns from notify that the reply reached the customer; the first response is its acceptance.
    delivered = wait_for(lambda: [c for c in ticketing.get(f"/v1/tickets/{ticket_id}/comments").json()
                                  if c["delivery_status"] == "delivered"], timeout=60)
    assert [c["kind"] for c in delivered] == ["reply"]
    assert ticketing.get(f"/v1/tickets/{ticket_id}").json()["first_responded_at"]

    # 3. The customer answers the reply from their mail client: In-Reply-To and the quoted history.
    quoted = "\n".join("> " + line for line in text_part.splitlines())
    answered = send_email(ingest, mime(f"Re: {answer['Subject']}",
                                       f"Thanks, but I still see both charges on my statement.\n\n"
                                       f"On Tue, 1 Dec 2026 at 10:00, Support wrote:\n{quoted}\n",
                                       make_msgid(domain="mail.example"), In_Reply_To=answer["Message-ID"],
                                       References=f"{answer['References']} {answer['Message-ID']}"))
    assert answered["reply_to_ticket"] == ticket_id
    customer_comment = wait_for(lambda: [c for c in ticketing.get(f"/v1/tickets/{ticket_id}/comments").json()
                                         if c["author_type"] == "customer"], timeout=60)
    assert customer_comment[0]["body"].strip() == "Thanks, but I still see both charges on my statement."
    assert customer_comment[0]["channel"] == "email"

    # 4. Resolve with a resolution message; the CSAT request follows.
    resolved = ticketing.post(f"/v1/tickets/{ticket_id}/status", json={
        "status": "resolved", "actor": "agent-1", "message": "We refunded the second charge today."})
    assert resolved.status_code == 200, resolved.text
    csat_mail = one_message(smtp, "How did we do?")
    link = re.search(r"https?://\S+/csat", csat_mail.get_body(("plain",)).get_content()).group(0)

    # 5. The link from the e-mail, fetched with GET, is a page with a rating form that submits.
    with httpx.Client(timeout=10) as browser:
        page = browser.get(link)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "I have asked our payments team" in page.text and "agent-1" not in page.text
        parser = Forms()
        parser.feed(page.text)
        [rating] = [f for f in parser.forms if "score" in f["fields"]]
        assert rating["method"] == "post" and sorted(rating["fields"]["score"]) == ["1", "2", "3", "4", "5"]
        submitted = browser.post(urljoin(link, rating["action"]), data={"score": "4", "comment": "Quick, thanks"})
        assert submitted.status_code == 303
        thanks = browser.get(urljoin(link, submitted.headers["location"]))
        assert "Thank you for your rating." in thanks.text

    report = ticketing.get("/v1/reports/csat").json()
    assert (report["responses"], report["average"]) == (1, 4.0)
    # Still one ticket: the customer's answer continued it.
    assert ticketing.get("/v1/tickets").json()["total"] == 1
    deliveries = notify.get("/v1/deliveries", params={"channel": "email"}).json()
    return {"tickets": 1, "emails": deliveries["total"], "comments": len(
        ticketing.get(f"/v1/tickets/{ticket_id}/comments").json())}


def run(tmp_path: Path, databases: dict[str, str]) -> dict:
    smtp = SmtpSink()
    system = start_system(tmp_path, databases, overrides={"notify": {
        "NOTIFY_SMTP_HOST": "127.0.0.1", "NOTIFY_SMTP_PORT": str(smtp.port),
        "NOTIFY_REPLY_ADDRESS": "support@shop.example", "NOTIFY_QUIET_HOURS_START": "00:00",
        "NOTIFY_QUIET_HOURS_END": "00:00"}})
    try:
        return close_the_loop(system, smtp)
    finally:
        stop_system(system)
        smtp.close()


def test_close_the_loop_by_email_sqlite(tmp_path):
    counts = run(tmp_path, {name: f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}" for name in SERVICES})
    assert counts == {"tickets": 1, "emails": 4, "comments": 3}  # ack, reply, resolution message, CSAT request


@requires_postgres
@pytest.mark.postgres
def test_close_the_loop_by_email_postgres(tmp_path, postgres_databases):
    counts = run(tmp_path, postgres_databases)
    assert counts == {"tickets": 1, "emails": 4, "comments": 3}

"""The weekly report: built from the read model, e-mailed (HTML with its charts as inline parts) to each
subscribed lead in their language through a real SMTP server (aiosmtpd), once per week."""

import email
import email.policy
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller

from closedloop.devtools.nats_server import free_port
from closedloop.testing import running_app
from insights.generator import generate
from insights.main import create_app
from insights.settings import InsightsSettings
from insights.testing import load_events


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content,
                                                                          policy=email.policy.default)))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


async def test_weekly_report_reaches_each_lead_in_their_language_once(tmp_path, nats_server, smtp):
    controller, inbox = smtp
    events, truth = generate(seed=3, days=35, daily_volume=12)
    app = create_app(InsightsSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'i.db'}",
                                      nats_url=nats_server.url, log_json=False, analysis_interval_seconds=0,
                                      smtp_host="127.0.0.1", smtp_port=controller.port))
    async with running_app(app) as client:
        await load_events(app.state.runtime.sessions, events)
        assert (await client.put("/v1/report-subscribers/lead.en@example.com",
                                 json={"name": "Ana", "language": "en"})).status_code == 200
        assert (await client.put("/v1/report-subscribers/lead.zh@example.com",
                                 json={"language": "zh"})).status_code == 200
        bad = await client.put("/v1/report-subscribers/lead@example.com", json={"language": "fr"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.language"

        week = (truth.end - timedelta(days=7)).date().isoformat()
        preview = await client.get("/v1/reports/weekly", params={"week": week, "language": "zh"})
        assert preview.status_code == 200 and "十大问题" in preview.text and "data:image/png;base64," in preview.text

        sent = (await client.post("/v1/reports/weekly/send", params={"week": week})).json()
        assert sorted(sent["sent_to"]) == ["lead.en@example.com", "lead.zh@example.com"]

    by_recipient = {rcpt[0]: message for rcpt, message in inbox.messages}
    assert set(by_recipient) == {"lead.en@example.com", "lead.zh@example.com"}
    english, chinese = by_recipient["lead.en@example.com"], by_recipient["lead.zh@example.com"]
    for message in (english, chinese):
        html = message.get_body(preferencelist=("html",)).get_content()
        images = [part for part in message.walk() if part.get_content_type() == "image/png"]
        cids = {part["Content-ID"].strip("<>") for part in images}
        assert cids == {"volume", "satisfaction"} and all(f"cid:{cid}" in html for cid in cids)
        assert all(part.get_content().startswith(b"\x89PNG") for part in images)
    assert "Top 10 issues" in english.get_body(preferencelist=("html",)).get_content()
    chinese_html = chinese.get_body(preferencelist=("html",)).get_content()
    assert "十大问题" in chinese_html and "每周洞察" in chinese["Subject"]
    # The top issue of the week is the generator's most frequent category, with its count.
    assert "<td>1</td><td>" in chinese_html

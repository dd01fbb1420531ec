"""The bulk import command against a running ingest app: summary, resume, no doubles."""

import json
import threading
import time

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from typer.testing import CliRunner

from closedloop.config import DEV_API_KEY
from closedloop.devtools.nats_server import free_port
from closedloop.testing import running_app
from ingest import importer
from ingest.main import create_app
from ingest.models import Feedback, IdempotencyKey
from ingest.settings import IngestSettings

CSV = """channel,text,customer_id,customer_tier,rating,external_id,metadata.source
app,The app crashes when I pay,c-1,vip,1,,csv
app,,c-2,,,,
fax,Hello support team,c-3,,,,
email,Ã©tÃ© trÃ¨s mauvais,c-4,,,,
web,asdfghjkl,c-5,,,,
app,Slow loading screens,c-6,,abc,,
app,The app crashes when I pay,c-1,,,,
survey,"Great support, call me on +1 415 555 2671",c-7,,9,ext-1,
survey,Great support again,c-8,,8,ext-1,
chat,"Line one of a long
complaint about refunds",c-9,,,,
app,Export to PDF is missing,,,,,
web,Checkout button does nothing on Safari,c-10,standard,,,
"""
ACCEPTED_LINES = 4
REJECTED = {3: "text", 4: "channel", 5: "mis-encoded", 6: "keyboard", 7: "rating", 13: "customer.id"}


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "feedback.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


class ServerGoneAfter(httpx.ASGITransport):
    """The ASGI app, until `calls` requests were served; then every connection fails."""

    def __init__(self, app, calls: int) -> None:
        super().__init__(app=app)
        self.left = calls

    async def handle_async_request(self, request):
        if self.left <= 0:
            raise httpx.ConnectError("connection refused", request=request)
        self.left -= 1
        return await super().handle_async_request(request)


async def stored(app, model) -> int:
    async with app.state.runtime.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


def assert_summary(summary: importer.Summary) -> None:
    assert (summary.accepted, summary.duplicates, len(summary.rejected)) == (ACCEPTED_LINES, 2, 6)
    assert summary.duplicate_reasons == {"same_text": 1, "source_id": 1}
    reasons = {rejection.line: rejection.reason for rejection in summary.rejected}
    assert sorted(reasons) == sorted(REJECTED)
    for line, word in REJECTED.items():
        assert word in reasons[line], (line, reasons[line])
    assert summary.last_line == 14


async def test_interrupted_import_resumes_from_its_checkpoint_and_never_doubles(app, csv_file, monkeypatch):
    monkeypatch.setattr(importer, "RETRY_DELAY_SECONDS", 0.01)
    async with running_app(app) as client:
        flaky = httpx.AsyncClient(transport=ServerGoneAfter(app, calls=1), base_url="http://testserver",
                                  headers={"X-API-Key": DEV_API_KEY})
        with pytest.raises(importer.ImportAborted, match="cannot reach"):
            await importer.run_import(csv_file, flaky, batch_size=4)
        await flaky.aclose()
        checkpoint = json.loads(importer.default_checkpoint(csv_file).read_text())
        assert checkpoint["last_line"] == 5
        assert await stored(app, Feedback) == 1  # line 2; lines 3-5 were rejected

        summary = await importer.run_import(csv_file, client, batch_size=4)
        assert summary.resumed_from_line == 5
        assert_summary(summary)
        assert await stored(app, Feedback) == ACCEPTED_LINES
        # Accepted rows and the same-text duplicate keep their keys; the source-id repeat is answered by its id.
        assert await stored(app, IdempotencyKey) == ACCEPTED_LINES + 1

        # Nothing left to do on a re-run; and even without the checkpoint nothing is stored twice.
        again = await importer.run_import(csv_file, client, batch_size=4)
        assert again.total == summary.total and again.resumed_from_line == 14
        fresh = await importer.run_import(csv_file, client, batch_size=5, restart=True)
        assert (fresh.accepted, fresh.duplicates, len(fresh.rejected)) == (0, ACCEPTED_LINES + 2, 6)
        assert fresh.duplicate_reasons == {"idempotency_key": ACCEPTED_LINES + 1, "source_id": 1}
        assert await stored(app, Feedback) == ACCEPTED_LINES


def test_command_line_imports_jsonl_over_http_with_progress_and_summary(tmp_path, nats_server):
    app = create_app(IngestSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}",
                                    nats_url=nats_server.url, log_json=False, outbox_poll_seconds=0.05,
                                    consumer_fetch_timeout_seconds=0.1))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "ingest did not start"
        time.sleep(0.05)
    try:
        source = tmp_path / "feedback.jsonl"
        source.write_text("\n".join([
            json.dumps({"channel": "app", "text": "Dark mode please", "customer": {"id": "j-1"}}),
            "{not json",
            "",
            json.dumps({"channel": "app", "text": "  ", "customer": {"id": "j-2"}}),
            json.dumps({"channel": "web", "text": "Search ignores accents", "customer": {"id": "j-3"}}),
        ]) + "\n", encoding="utf-8")
        report = tmp_path / "report.json"
        args = [str(source), "--url", f"http://127.0.0.1:{port}", "--api-key", DEV_API_KEY, "--batch-size", "2",
                "--report", str(report)]
        result = CliRunner().invoke(importer.cli, args)
        assert result.exit_code == 0, result.output
        assert "accepted 2" in result.output and "rejected 2" in result.output, result.output
        assert "invalid JSON" in result.output
        saved = json.loads(report.read_text())
        assert [(r["line"], r["status"]) for r in saved["rejected"]] == [(2, 400), (4, 422)]

        rerun = CliRunner().invoke(importer.cli, args)
        assert rerun.exit_code == 0 and "Resumed after line 5" in rerun.output, rerun.output

        wrong_key = CliRunner().invoke(importer.cli, [*args[:3], "--api-key", "nope", "--restart"])
        assert wrong_key.exit_code == 1 and "401" in wrong_key.output, wrong_key.output
    finally:
        server.should_exit = True
        thread.join(20)


async def test_batches_over_the_body_limit_are_sent_in_halves(database_url, nats_server, tmp_path):
    app = create_app(IngestSettings(database_url=database_url, nats_url=nats_server.url, log_json=False,
                                    max_body_bytes=2_000))
    source = tmp_path / "long.jsonl"
    source.write_text("".join(json.dumps({"channel": "app", "customer": {"id": f"l-{i}"},
                                          "text": f"Row {i}: " + "the export keeps failing " * 12}) + "\n"
                              for i in range(8)), encoding="utf-8")
    async with running_app(app) as client:
        summary = await importer.run_import(source, client, batch_size=8)
        assert (summary.accepted, summary.duplicates, summary.rejected) == (8, 0, [])
        assert await stored(app, Feedback) == 8

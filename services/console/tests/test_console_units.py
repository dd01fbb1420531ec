"""The console's own parts: roles, sign-in, sessions, the message catalogue, dates in the user's zone,
CSV export and the live fan-out from a real nats-server. Pages over the real services are tested in
tests/test_console_browser.py."""

import asyncio
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import httpx
import nats
import pytest

from closedloop.devtools.nats_server import free_port
from closedloop.messaging.broker import Broker
from closedloop.testing import running_app
from console import i18n
from console.identity import login
from console.live import LiveHub
from console.main import create_app
from console.pages.dashboards import ChartData, to_csv
from console.pages.insights_section import BadQuery, TrendView
from console.pages.workspace import next_due, timeline
from console.roles import allows, scopes_of
from console.settings import ConsoleSettings
from console.translations import build


def test_roles_follow_the_auth_contract():
    assert allows(scopes_of("agent"), "tickets:write") and not allows(scopes_of("agent"), "config:write")
    assert not allows(scopes_of("agent"), "models:write")
    assert allows(scopes_of("lead"), "config:write") and allows(scopes_of("lead"), "models:write")
    assert allows(scopes_of("analyst"), "reports:read") and not allows(scopes_of("analyst"), "tickets:write")
    assert allows(scopes_of("admin"), "config:write") and allows(scopes_of("admin"), "customers:write")
    assert scopes_of("nobody") == frozenset()


def test_catalogue_translates_every_message_and_the_committed_files_are_current():
    catalog, missing = build.translated()
    assert missing == [], f"untranslated: {missing}"
    po, mo = build.render(catalog)
    assert build.PO.read_bytes() == po, "messages.po is stale: python -m console.translations.build"
    assert build.MO.read_bytes() == mo, "messages.mo is stale: python -m console.translations.build"
    assert len(catalog) > 200


def test_chinese_text_and_times_in_the_users_zone():
    i18n.use("zh_Hans", "Asia/Shanghai")
    try:
        assert i18n.gettext("Sign in") == "登录"
        assert i18n.gettext("Assigned to %(agent)s.", agent="ana") == "已分配给 ana。"
        shown = i18n.datetime_format("2026-12-02T01:30:00Z")
        assert "09:30" in shown and "2026" in shown, shown  # UTC+8
        assert i18n.duration_format(120) == "2小时"
        i18n.use("en", "America/New_York")
        assert i18n.gettext("Sign in") == "Sign in"
        assert "8:30" in i18n.datetime_format("2026-12-02T13:30:00Z")  # UTC-5 in December
        i18n.use("xx", "Mars/Olympus")
        assert i18n.current_locale() == "en" and "1:30:00" in i18n.datetime_format("2026-12-02T13:30:00Z")
    finally:
        i18n.use("en", "UTC")


async def test_demo_sign_in_checks_the_password():
    settings = ConsoleSettings(demo_users=["ana@example.com:pw:lead:Ana"])
    async with httpx.AsyncClient() as http:
        identity = await login(settings, http, "ana@example.com", "pw")
        assert identity and identity.role == "lead" and "config:write" in identity.scopes
        assert identity.access_token is None  # the service API key is used upstream
        assert await login(settings, http, "ana@example.com", "wrong") is None
        assert await login(settings, http, "bob@example.com", "pw") is None


def _identity_server(token: str) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            ok = body == {"username": "lee@example.com", "password": "secret"}
            payload = json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": 900,
                                  "user": {"id": "u-7", "display_name": "Lee", "role": "lead"},
                                  "scopes": ["config:write", "models:write", "tickets:read"]} if ok
                                 else {"title": "Unauthorized", "status": 401}).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


async def test_sign_in_through_the_identity_service_keeps_its_token_and_role():
    import base64

    claims = base64.urlsafe_b64encode(json.dumps({"sub": "u-7", "name": "Lee", "role": "lead"}).encode()).decode()
    token = f"eyJhbGciOiJIUzI1NiJ9.{claims.rstrip('=')}.signature"
    server, url = _identity_server(token)
    try:
        settings = ConsoleSettings(identity_url=url)
        async with httpx.AsyncClient() as http:
            identity = await login(settings, http, "lee@example.com", "secret")
            assert identity is not None
            assert (identity.user_id, identity.display_name, identity.role) == ("u-7", "Lee", "lead")
            assert identity.access_token == token and "models:write" in identity.scopes
            assert identity.token_expires_at is not None and identity.token_expires_at < identity.expires_at
            assert await login(settings, http, "lee@example.com", "nope") is None
    finally:
        server.shutdown()


def test_chart_numbers_as_csv():
    data = ChartData(["payments", "sre"], [("Within SLA", [3, 0]), ("Breached", [1, None])])
    assert to_csv(data).splitlines() == ["label,Within SLA,Breached", "payments,3,1", "sre,0,"]


def test_next_due_and_timeline_order():
    assert next_due({"first_responded_at": None, "first_response_due_at": "A", "resolution_due_at": "B"}) == "A"
    assert next_due({"first_responded_at": "x", "first_response_due_at": "A", "resolution_due_at": "B"}) == "B"
    items = timeline([{"created_at": "2026-12-01T10:00:00Z", "action": "created"}],
                     [{"created_at": "2026-12-01T10:05:00Z", "public": False, "body": "n"},
                      {"created_at": "2026-12-01T09:59:00+00:00", "public": True, "body": "r"}],
                     [{"created_at": "2026-12-01T10:01:00Z", "status": "delivered"}])
    assert [i["kind"] for i in items] == ["reply", "audit", "delivery", "note"]


async def test_live_hub_fans_nats_events_out_to_every_browser(nats_server):
    broker = Broker(nats_server.url, "console-test")
    broker.start()
    hub = LiveHub(broker)
    hub.start()
    first, second = hub.stream(), hub.stream()
    try:
        assert "connected" in await anext(first) and "connected" in await anext(second)
        await broker.wait_connected(10)
        for _ in range(50):  # the hub subscribes once connected
            if len(broker._nc._subs) >= 3:  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.05)
        publisher = await nats.connect(nats_server.url)
        event = {"ticket": {"ticket_id": "t-1", "title": "Card declined", "priority": "P1", "team": "payments",
                            "status": "new", "customer": {"id": "c", "email": "ana@example.com"}}}
        await publisher.publish("ticket.created.v1", json.dumps(event).encode())
        await publisher.flush()
        for stream in (first, second):
            line = await asyncio.wait_for(anext(stream), 5)
            sent = json.loads(re.match(r"data: (.*)\n\n", line).group(1))
            assert sent == {"type": "ticket.created", "ticket_id": "t-1", "title": "Card declined",
                            "priority": "P1", "team": "payments", "status": "new"}, "no customer data"
        await publisher.close()
    finally:
        await first.aclose()
        await second.aclose()
        await hub.stop()
        await broker.close()


@pytest.fixture
def console_app(tmp_path, nats_server):
    # The services' URLs point at a closed port: these checks must be decided by the console alone.
    closed = f"http://127.0.0.1:{free_port()}"
    return create_app(ConsoleSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/console.db",
                                      nats_url=nats_server.url, log_json=False, ingest_url=closed,
                                      classify_url=closed, ticketing_url=closed, notify_url=closed,
                                      insights_url=closed))


async def _signed_in(client: httpx.AsyncClient, who: str) -> None:
    response = await client.post("/login", data={"username": f"{who}@example.com", "password": who, "next": "/x"})
    assert response.status_code == 303 and response.headers["location"] == "/x"
    assert "console_session" in client.cookies


async def test_pages_need_a_session_and_the_role_is_checked_on_the_server(console_app):
    async with running_app(console_app) as client:
        response = await client.get("/queues/mine")
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
        wrong = await client.post("/login", data={"username": "agent@example.com", "password": "x"})
        assert wrong.status_code == 401 and "Wrong user name or password." in wrong.text

        await _signed_in(client, "agent")
        for path in ("/admin/routing-rules", "/admin/models", "/admin/taxonomy", "/admin"):
            denied = await client.get(path)
            assert denied.status_code == 403, path
        posted = await client.post("/admin/routing-rules", data={"rule": "{}"})
        assert posted.status_code == 403

        await client.post("/logout")
        await _signed_in(client, "analyst")
        for path, form in (("/tickets/t-1/status", {"status": "resolved"}), ("/tickets/t-1/reply", {"body": "hi"})):
            assert (await client.post(path, data=form)).status_code == 403, path
        assert (await client.get("/admin/sla-policies")).status_code == 403
        # The insights section is the analyst's: let through to insights (closed here: 502), never refused.
        assert (await client.get("/insights/trends")).status_code == 502

        await client.post("/logout")
        await _signed_in(client, "agent")
        for path in ("/insights", "/insights/trends", "/insights/trends.csv", "/insights/forecast",
                     "/insights/customers"):
            assert (await client.get(path)).status_code == 403, path
        assert 'href="/insights/trends"' not in (await client.get("/preferences")).text


def test_a_trends_view_is_its_query_string_and_a_drill_down_filters_by_the_group():
    view = TrendView.from_query({"metric": "csat", "interval": "month", "start": "2026-09-01", "end": "2026-09-30",
                                 "channel": "email", "group_by": "region"})
    assert view.api_params() == {"metric": "csat", "interval": "month", "start": "2026-09-01T00:00:00+00:00",
                                 "end": "2026-10-01T00:00:00+00:00", "group_by": "region",
                                 "filter": ["channel:email"]}
    assert TrendView.from_query(dict(parse_qsl(view.query()))) == view
    assert dict(parse_qsl(view.drill("emea"))) == {"metric": "csat", "interval": "month", "start": "2026-09-01",
                                                   "end": "2026-09-30", "channel": "email", "region": "emea"}
    for bad, field in (({"interval": "year"}, "interval"), ({"start": "1 Sept"}, "start"),
                       ({"group_by": "colour"}, "group_by"), ({"start": "2026-10-02", "end": "2026-10-01"}, "start")):
        with pytest.raises(BadQuery) as raised:
            TrendView.from_query(bad)
        assert raised.value.field == field


async def test_preferences_switch_the_language_and_zone_per_user(console_app):
    async with running_app(console_app) as client:
        await _signed_in(client, "lead")
        saved = await client.post("/preferences", data={"locale": "zh_Hans", "timezone": "Asia/Shanghai"})
        assert saved.status_code == 303
        page = await client.get("/preferences")
        assert page.status_code == 200
        assert '<html lang="zh-Hans">' in page.text and "偏好设置已保存。" in page.text and "退出登录" in page.text
        bad = await client.post("/preferences", data={"locale": "klingon", "timezone": "Asia/Shanghai"})
        assert bad.status_code == 422 and "请从列表中选择语言和时区。" in bad.text

        client.cookies.clear()
        await _signed_in(client, "agent")  # another user keeps the default
        assert '<html lang="en">' in (await client.get("/preferences")).text

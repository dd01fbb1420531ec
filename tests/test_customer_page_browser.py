"""The customer's ticket page in a real headless Chromium (Playwright, /usr/bin/chromium): ticketing runs
as its own process on SQLite and a real nats-server; a ticket is opened by publishing the classified
feedback event. The page is used with the keyboard through its labels — reply, then (once resolved) the
rating — in English and in Simplified Chinese. A failing test leaves a screenshot in var/test-screenshots/."""

import asyncio
import threading
from collections.abc import Iterator
from uuid import uuid4

import httpx
import nats as nats_client
import pytest

from closedloop.config import DEV_API_KEY
from closedloop.devtools.nats_server import NatsServer, free_port
from closedloop.devtools.processes import ServiceProcess, service_env
from closedloop.events import Classification, CustomerRef, FeedbackClassifiedV1
from tests.browser import browser_marks, open_browser, open_page
from tests.system import wait_for

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
pytestmark = browser_marks()


@pytest.fixture(scope="module")
def ticketing(tmp_path_factory) -> Iterator[tuple[str, NatsServer]]:
    tmp = tmp_path_factory.mktemp("page")
    nats = NatsServer(free_port(), tmp / "jetstream", tmp / "nats.log").start()
    port = free_port()
    env = service_env("ticketing", database_url=f"sqlite+aiosqlite:///{tmp / 'ticketing.db'}", nats_url=nats.url,
                      api_key=DEV_API_KEY, extra={"TICKETING_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                                                  "TICKETING_LOG_JSON": "false"})
    process = ServiceProcess("ticketing", port, env, tmp / "ticketing.log").start()
    try:
        process.wait_ready(timeout=120)
        yield process.url, nats
    finally:
        process.stop()
        nats.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator["sync_api.Browser"]:
    with open_browser(sync_api) as chromium:
        yield chromium


@pytest.fixture
def page(browser, request) -> Iterator["sync_api.Page"]:
    with open_page(browser, request, viewport={"width": 900, "height": 1000}) as page:
        yield page


def open_ticket(url: str, nats: NatsServer, text: str, language: str) -> dict:

    event = FeedbackClassifiedV1(
        feedback_id=uuid4(), channel="web", text=text,
        customer=CustomerRef(id=f"c-{uuid4().hex[:6]}", email="ana@example.com", name="Ana"),
        classification=Classification(category="billing/refund", category_label="Refund", top_level="billing",
                                      confidence=0.9, sentiment="negative", sentiment_score=0.2,
                                      taxonomy_version="t", model_version="m", language=language))

    async def publish() -> None:
        connection = await nats_client.connect(nats.url)
        await connection.jetstream().publish(event.nats_subject, event.model_dump_json().encode(),
                                             headers={"Nats-Msg-Id": str(event.event_id)})
        await connection.close()

    # Playwright's sync API holds an event loop in this thread: publish from another one.
    worker = threading.Thread(target=asyncio.run, args=(publish(),))
    worker.start()
    worker.join(30)
    api = httpx.Client(base_url=url, headers={"X-API-Key": DEV_API_KEY}, timeout=10)
    return wait_for(lambda: (items := api.get("/v1/tickets", params={"feedback_id": str(event.feedback_id)})
                             .json()["items"]) and items[0], timeout=60)


def test_reply_and_rate_with_the_keyboard(ticketing, page):
    url, nats = ticketing
    api = httpx.Client(base_url=url, headers={"X-API-Key": DEV_API_KEY}, timeout=10)
    ticket = open_ticket(url, nats, "My refund has not arrived", "en")
    page.goto(f"{url}/tickets/{ticket['public_token']}")
    assert page.title().startswith("Your request")
    page.get_by_label("Your message").focus()
    page.keyboard.type("Here is my order number: 1234")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the Send button
    page.get_by_role("status").wait_for()
    assert "your message was added" in page.get_by_role("status").inner_text()
    assert page.get_by_text("Here is my order number: 1234").is_visible()

    resolved = api.post(f"/v1/tickets/{ticket['id']}/status", json={"status": "resolved", "actor": "ana"})
    assert resolved.status_code == 200
    page.goto(f"{url}/tickets/{ticket['public_token']}/csat")
    page.get_by_label("4").focus()
    page.keyboard.press("Space")
    page.get_by_label("Anything you would like to add? (optional)").fill("Quick and kind")
    page.get_by_role("button", name="Send rating").focus()
    page.keyboard.press("Enter")
    page.get_by_role("status").wait_for()
    assert page.get_by_role("status").inner_text() == "Thank you for your rating."
    report = api.get("/v1/reports/csat").json()
    assert (report["responses"], report["distribution"]["4"]) == (1, 1)


def test_the_page_in_simplified_chinese(ticketing, page):
    url, nats = ticketing
    ticket = open_ticket(url, nats, "我的退款还没到", "zh")
    page.goto(f"{url}/tickets/{ticket['public_token']}")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert page.get_by_role("heading", name="对话").is_visible()
    assert page.get_by_role("listitem").get_by_text("我的退款还没到").is_visible()
    page.get_by_role("link", name="English").click()
    assert page.get_by_role("heading", name="Conversation").is_visible()

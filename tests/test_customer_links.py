"""Every link in a default template (notify's e-mails and Slack messages, ticketing's macros) leads to a
route that exists: rendered with links as ticketing builds them from its public base URL, each URL
must start with that base and its path must be a GET route of ticketing's app."""

import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from closedloop.events import CustomerRef, TicketSnapshot
from notify import templating
from notify.default_templates import DEFAULT_TEMPLATES
from notify.settings import NotifySettings
from tests.test_deploy_manifests import app_routes
from ticketing import links, macros

BASE = "https://support.shop.example"
URL = re.compile(r"https?://[^\s\"'<>)]+")


def route_patterns() -> list[re.Pattern[str]]:
    get_routes = [path for path, methods in app_routes()["ticketing"].items() if "GET" in methods]
    return [re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$") for path in get_routes]


def broken_links(text: str, patterns: list[re.Pattern[str]]) -> list[str]:
    broken = []
    for url in URL.findall(text):
        path = url.removeprefix(BASE).split("?")[0].split("#")[0]
        if not url.startswith(BASE + "/") or not any(p.match(path) for p in patterns):
            broken.append(url)
    return broken


@pytest.fixture(scope="module")
def patterns() -> list[re.Pattern[str]]:
    return route_patterns()


@pytest.fixture
def snapshot() -> TicketSnapshot:
    links.set_base_url(BASE)
    token = "tok-" + uuid4().hex
    return TicketSnapshot(
        ticket_id=uuid4(), feedback_id=uuid4(), title="Charged twice", status="resolved", priority="P1",
        team="payments", category="billing/unexpected_charge", sentiment="negative",
        customer=CustomerRef(id="c-1", email="ana@example.com", name="Ana"), public_token=token,
        first_response_due_at=datetime.now(UTC) + timedelta(hours=2), channel="email", reference="ABCD1234",
        status_url=links.status_url(token), csat_url=links.csat_url(token))


def test_every_link_in_the_default_templates_leads_to_a_route(patterns, snapshot):
    settings = NotifySettings()
    checked = 0
    for template in DEFAULT_TEMPLATES:
        event = templating.sample_event(template.key)
        if getattr(event, "ticket", None) is not None:
            event = event.model_copy(update={"ticket": snapshot, "status_url": None, "csat_url": None})
        context = templating.build_context(event, settings, "ana@example.com")
        context["expected_response"] = "2 hours"
        rendered = " ".join(part or "" for part in templating.render_parts(
            template.subject, template.body_text, template.body_html, context))
        checked += len(URL.findall(rendered))
        assert broken_links(rendered, patterns) == [], f"{template.key} {template.channel} {template.language}"
    assert checked >= 20, "the customer templates carry their links"


def test_every_link_in_the_default_macros_leads_to_a_route(patterns, snapshot):
    links.set_base_url(BASE)
    values = {"customer_name": "Ana", "ticket_number": "ABCD1234", "expected_time": "2 hours",
              "status_link": links.status_url(snapshot.public_token)}
    texts = [macros.render(body, values) for macro in macros.DEFAULT_MACROS for body in macro.bodies.values()]
    assert sum(len(URL.findall(text)) for text in texts) >= 10
    for text in texts:
        assert broken_links(text, patterns) == []


def test_a_link_to_a_missing_route_is_caught(patterns):
    """Control: the check above can fail."""
    assert broken_links(f"see {BASE}/status/tok-1 and {BASE}/tickets/tok-1/csat", patterns) == [
        f"{BASE}/status/tok-1"]
    assert broken_links("http://127.0.0.1:8001/tickets/tok-1", patterns) == ["http://127.0.0.1:8001/tickets/tok-1"]

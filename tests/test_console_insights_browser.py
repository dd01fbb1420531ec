"""The console's insights section in a real headless Chromium, against a real nats-server, the insights
service fed the seeded history (`insights.generator`, through JetStream) and the console: an analyst opens
every page and its charts hold the API's numbers; the trends explorer's chart, table and CSV are the same
series, a click drills down; an agent is refused. Same skip rules and screenshots as
tests/test_console_browser.py (whose browser and page fixtures these tests use)."""

import csv
import io
from collections.abc import Iterator
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from tests import test_console_browser as browser_tests
from tests.browser import browser_marks
from tests.insights_stack import InsightsStack, start_insights_stack
from tests.test_console_browser import chart, sign_in

# The same Chromium and page fixtures (screenshots of failures included); `stack` below is this module's.
browser, page = browser_tests.browser, browser_tests.page

pytestmark = browser_marks()


class Stack(InsightsStack):
    # The console's demo users (no identity service in this stack): sign_in reads them from here.
    logins: ClassVar[dict[str, tuple[str, str]]] = {
        role: (f"{role}@example.com", role) for role in ("agent", "lead", "analyst", "admin")}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_insights_stack(tmp_path_factory.mktemp("insights-stack"))
    stack = Stack(started.nats, started.insights, started.console, started.truth, started.forecast_fit_seconds)
    try:
        yield stack
    finally:
        stack.stop()


def expected_trend(api, params: dict, ratio: bool) -> tuple[list[str], dict[str, list]]:
    """What the chart must hold, computed here from the API's points (group -> values per period)."""
    points = api.get("/v1/trends", params=params).json()["points"]
    periods = sorted({p["period"] for p in points})
    value = {(p["period"], p["group"]): p["value"] for p in points}
    groups = {p["group"] for p in points}
    return [p[:10] for p in periods], {g: [value.get((p, g), None if ratio else 0) for p in periods] for g in groups}


def test_trends_chart_table_and_csv_are_the_apis_numbers_and_a_click_drills_down(page, stack):
    sign_in(page, stack, "analyst")
    page.goto("/insights/trends?metric=volume&interval=week&group_by=channel")
    with stack.api() as api:
        labels, by_channel = expected_trend(api, {"metric": "volume", "interval": "week", "group_by": "channel"},
                                            ratio=False)
        shown = chart(page, "trend")
        assert shown["drawn"], "the trend chart has drawn its lines"
        assert shown["labels"] == labels
        assert {name: values for name, values in shown["series"]} == by_channel
        assert sum(sum(v) for v in by_channel.values()) == api.get("/v1/status").json()["feedback_items"]
        # The table and the CSV are the same series.
        assert page.locator('[data-numbers="trend"] tbody tr').count() == len(labels)
        rows = list(csv.reader(io.StringIO(page.request.get(page.locator("#trend-csv").get_attribute("href")).text())))
        assert rows[0] == ["period", *[name for name, _ in shown["series"]]]
        assert [[float(x) for x in row[1:]] for row in rows[1:]] == [
            [values[i] for _, values in shown["series"]] for i in range(len(labels))]
        assert stack.insights.url not in page.content()  # the browser only ever talks to the console

        # Drill down: the group's name in the table filters by it (the chart's click goes to the same URL).
        channel = stack.truth.spike_channel
        page.locator(f'[data-drill="{channel}"]').click()
        page.wait_for_url(f"**channel={channel}**")
        assert "group_by" not in parse_qs(urlparse(page.url).query)
        page.wait_for_function("window.consoleCharts.trend && window.consoleCharts.trend.data.datasets.length == 1")
        _, only = expected_trend(api, {"metric": "volume", "interval": "week", "filter": f"channel:{channel}"},
                                 ratio=False)
        assert chart(page, "trend")["series"][0][1] == only["all"] == by_channel[channel]

        # A ratio metric, filtered and grouped, from the form (an htmx swap that pushes the shareable URL).
        page.locator("#metric").select_option("negative_share")
        page.locator("#group_by").select_option("region")
        page.wait_for_url("**group_by=region**")
        page.wait_for_function("window.consoleCharts.trend && window.consoleCharts.trend.data.datasets.length == 3")
        _, by_region = expected_trend(api, {"metric": "negative_share", "interval": "week", "group_by": "region",
                                            "filter": f"channel:{channel}"}, ratio=True)
        assert {name: values for name, values in chart(page, "trend")["series"]} == by_region

        # Three dimensions are more than the read model keeps: the page says so in place, naming the field.
        page.locator("#filter-product").select_option(index=1)
        page.locator("[data-problem-field]").wait_for()
        assert page.locator("[data-problem-field]").get_attribute("data-problem-field") == "query.filter"
        response = page.goto(f"/insights/trends?metric=volume&channel={channel}&region=emea&group_by=team")
        assert response.status == 422
        assert page.locator("[data-problem-field]").get_attribute("data-problem-field") == "query.filter"


def test_analyst_opens_every_insights_page_with_the_apis_numbers(page, stack):
    sign_in(page, stack, "analyst")
    truth = stack.truth
    with stack.api() as api:
        status = api.get("/v1/status").json()
        page.goto("/insights/anomalies")
        assert "Caught up" in page.locator("#freshness").inner_text()
        anomalies = api.get("/v1/anomalies").json()["items"]
        assert [a["value"] for a in anomalies] == [truth.spike_category]
        row = page.locator(f'[data-anomaly="{anomalies[0]["key"]}"]')
        assert truth.spike_category in row.inner_text()
        row.get_by_role("link").click()
        page.wait_for_url("**/insights/trends?**")
        assert parse_qs(urlparse(page.url).query)["category"] == [truth.spike_category]
        chart(page, "trend")

        page.goto("/insights/forecast")
        forecast = api.get("/v1/forecast").json()
        teams = [t for t in forecast["teams"] if t["metric"] == "tickets"]
        assert teams, "the seeded history is long enough for a forecast"
        first = chart(page, f"forecast-{teams[0]['team']}")
        assert first["series"][0][1] == [d["mean"] for d in teams[0]["days"]]
        assert first["series"][2][1] == [d["upper"] for d in teams[0]["days"]]
        assert page.locator('[data-numbers="forecast"] tbody tr').count() == len(teams)
        assert float(page.locator("[data-wape]").get_attribute("data-wape")) == forecast["backtest_error"]["wape"]

        page.goto("/insights/drivers")
        drivers = api.get("/v1/drivers").json()
        forest = chart(page, "drivers")
        assert forest["labels"] == [e["factor"] for e in drivers["effects"]]
        assert forest["series"][1][1] == [e["risk_difference"] for e in drivers["effects"]]
        assert forest["series"][0][1] == [list(e["risk_difference_ci"]) for e in drivers["effects"]]
        waited = next(e for e in drivers["effects"] if e["factor"].startswith("waited_over"))
        assert waited["risk_difference_ci"][0] > 0, "the planted wait-time effect is there"

        page.goto("/insights/funnel")
        funnel = api.get("/v1/funnel").json()["all"]
        assert chart(page, "funnel")["series"][0][1] == [s["count"] for s in funnel]
        assert funnel[0]["count"] == status["feedback_items"]

        page.goto("/insights/customers")
        segments = api.get("/v1/segments").json()["segments"]
        assert chart(page, "segments")["series"][0][1] == [s["customers"] for s in segments]
        risks = [r["customer_id"] for r in api.get("/v1/churn-risks").json()["customers"]]
        assert sorted(risks) == sorted(truth.churners)
        assert sorted(page.locator('[data-numbers="churn-risks"] tbody tr').evaluate_all(
            "rows => rows.map(r => r.dataset.customer)")) == sorted(truth.churners)

        page.goto("/insights/opportunities")
        items = api.get("/v1/opportunities").json()["opportunities"]
        assert items and chart(page, "opportunities")["labels"] == [o["title"] for o in items]
        assert page.locator('[data-numbers="opportunities"] tbody tr').count() == len(items)

        # In Chinese and the analyst's own zone: the anomaly's window (a UTC day) starts at 08:00 in Shanghai.
        page.goto("/preferences")
        page.locator("#locale").select_option("zh_Hans")
        page.locator("#timezone").select_option("Asia/Shanghai")
        page.locator("form[action='/preferences'] button[type=submit]").click()
        page.wait_for_load_state()
        page.goto("/insights/anomalies")
        assert page.locator("h1").inner_text() == "异常"
        assert "数据截至" in page.locator("#freshness").inner_text()
        assert anomalies[0]["window_start"].endswith(("T00:00:00Z", "T00:00:00+00:00"))
        assert "08:00" in page.locator(f'[data-anomaly="{anomalies[0]["key"]}"] td').nth(2).inner_text()


def test_agent_is_refused_the_insights_pages_and_not_offered_them(page, stack):
    sign_in(page, stack, "agent")
    for path in ("/insights/trends", "/insights/anomalies", "/insights/trends.csv?metric=volume"):
        response = page.goto(path) if not path.endswith("volume") else page.request.get(path)
        assert response.status == 403, path
    page.goto("/preferences")
    assert page.get_by_role("link", name="Insights").count() == 0

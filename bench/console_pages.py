"""Console page load times in a real headless Chromium, with a large ticket base (10,000 by default).

Starts nats-server, the four services and the console on free ports with SQLite files in a temporary
directory, sends the feedback through ingest's batch API (so every ticket goes the real way: cleaned,
classified, routed, with SLA clocks), then loads each page `--loads` times signed in as the role that
uses it and prints p50/p90 of the browser's own navigation timing (request start to the load event:
server time, transfer, parsing, scripts and charts drawn). Figures are printed, never asserted.

    .venv/bin/python bench/console_pages.py [--tickets 10000] [--loads 20] [--texts ../shared/data/banking77/train.csv]
    .venv/bin/python bench/console_pages.py --only insights [--days 98] [--daily-volume 40]

The insights section is measured on a stack of its own (tests/insights_stack.py: nats-server, insights fed
`insights.generator`'s seeded history through JetStream, the console), signed in as an analyst; its table
adds the first load, and the time insights took to fit the forecast on its first request (done before any
page; then kept for five minutes).
"""

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from closedloop.config import DEV_API_KEY  # noqa: E402
from closedloop.devtools.nats_server import NatsServer, free_port  # noqa: E402
from closedloop.devtools.processes import CONSOLE, SERVICES, ServiceProcess, console_env, service_env  # noqa: E402
from tests.insights_stack import start_insights_stack  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
TIERS = ("standard", "standard", "standard", "vip", "enterprise", "free")
CHANNELS = ("app", "email", "chat", "web")


def texts_from(path: Path, n: int) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [row["text"] for row in csv.DictReader(handle)]
    # Each text made distinct, so ingest's same-customer duplicate check does not fold any together.
    return [f"{rows[i % len(rows)]} (order {i})" for i in range(n)]


def start(tmp: Path) -> tuple[NatsServer, dict[str, ServiceProcess]]:
    nats = NatsServer(free_port(), tmp / "jetstream", tmp / "nats.log").start()
    processes: dict[str, ServiceProcess] = {}
    for name in SERVICES:
        extra = {f"{name.upper()}_LOG_JSON": "false", f"{name.upper()}_LOG_LEVEL": "WARNING"}
        if name == "classify":
            extra["CLASSIFY_CONSUMER_BATCH_SIZE"] = "128"
        if name == "identity":
            extra["IDENTITY_SEED_DEMO_USERS"] = "true"  # the demo sign-ins the pages are loaded as
        env = service_env(name, database_url=f"sqlite+aiosqlite:///{tmp / (name + '.db')}", nats_url=nats.url,
                          api_key=DEV_API_KEY, extra=extra)
        processes[name] = ServiceProcess(name, free_port(), env, tmp / f"{name}.log").start()
    for process in processes.values():
        process.wait_ready(timeout=300)
    urls = {name: p.url for name, p in processes.items()}
    # No insights in this stack (its pages are measured on their own stack, see bench_insights): a closed port,
    # so the lead view's insight panels fail fast instead of reaching whatever answers on insights' default port.
    urls["insights"] = f"http://127.0.0.1:{free_port()}"
    processes[CONSOLE] = ServiceProcess(CONSOLE, free_port(), console_env(
        database_url=f"sqlite+aiosqlite:///{tmp / 'console.db'}", nats_url=nats.url, api_key=DEV_API_KEY,
        urls=urls, extra={"CONSOLE_LOG_JSON": "false", "CONSOLE_LOG_LEVEL": "WARNING"}), tmp / "console.log").start()
    processes[CONSOLE].wait_ready(timeout=120)
    return nats, processes


def seed(processes: dict[str, ServiceProcess], texts: list[str]) -> str:
    headers = {"X-API-Key": DEV_API_KEY}
    ticketing = httpx.Client(base_url=processes["ticketing"].url, headers=headers, timeout=60)
    teams = [t["key"] for t in ticketing.get("/v1/teams").json()]
    ticketing.post("/v1/agents", json={"id": "agent@example.com", "name": "Alex Agent", "teams": teams,
                                       "capacity": 50}).raise_for_status()
    for i in range(8):
        ticketing.post("/v1/agents", json={"id": f"agent{i}@example.com", "name": f"Agent {i}",
                                           "teams": [teams[i % len(teams)]], "capacity": 30})
    with httpx.Client(base_url=processes["ingest"].url, headers=headers, timeout=300) as ingest:
        for start_at in range(0, len(texts), 1000):
            items = [{"channel": CHANNELS[i % len(CHANNELS)], "text": text,
                      "customer": {"id": f"cust-{i}", "tier": TIERS[i % len(TIERS)], "email": f"c{i}@example.com"}}
                     for i, text in enumerate(texts[start_at:start_at + 1000], start=start_at)]
            response = ingest.post("/v1/feedback/batch", json={"items": items})
            response.raise_for_status()
    started, total = time.monotonic(), 0
    while total < len(texts):
        answer = ticketing.get("/v1/tickets", params={"limit": 1})
        if answer.status_code != 200:  # a busy moment (e.g. SQLite locked while the consumer commits)
            print(f"\n  ticketing answered {answer.status_code}: {answer.text[:200]}")
            time.sleep(2)
            continue
        total = answer.json()["total"]
        print(f"\r  tickets: {total}/{len(texts)} ({time.monotonic() - started:.0f} s)", end="", flush=True)
        if time.monotonic() - started > 1800:
            raise TimeoutError("tickets did not all open within 30 minutes")
        time.sleep(2)
    print()
    return ticketing.get("/v1/tickets", params={"assignee": "agent@example.com", "limit": 1}).json()["items"][0]["id"]


NAVIGATION = """() => { const n = performance.getEntriesByType("navigation")[0];
  return {total: n.loadEventEnd - n.startTime, server: n.responseStart - n.requestStart}; }"""


def measure(page, url: str, loads: int) -> tuple[list[float], list[float]]:
    totals, servers = [], []
    for _ in range(loads):
        response = page.goto(url, wait_until="load")
        assert response is not None and response.status == 200, f"{url}: {response and response.status}"
        # A lost session would time the sign-in page instead: the page loaded must be the one asked for.
        assert urlsplit(page.url).path == urlsplit(url).path, f"{url}: landed on {page.url}"
        timing = page.evaluate(NAVIGATION)
        totals.append(timing["total"])
        servers.append(timing["server"])
    return totals, servers


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


INSIGHTS_PAGES = ["/insights/trends", "/insights/trends?metric=negative_share&interval=day&group_by=channel",
                  "/insights/anomalies", "/insights/forecast", "/insights/drivers", "/insights/funnel",
                  "/insights/customers", "/insights/opportunities"]


def measure_pages(browser, base: str, who: str, paths: list[str], loads: int) -> list[tuple]:
    """Signed in as the demo user of the role `who`: (path, who, p50, p90, server p50, first load) per page."""
    context = browser.new_context(base_url=base, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto("/login")
    page.fill("#username", f"{who}@example.com")
    page.fill("#password", who)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if urlsplit(page.url).path == "/login":
        raise RuntimeError(f"signing in as {who}@example.com failed: {page.locator('body').inner_text()[:300]}")
    rows = []
    for path in paths:
        # One warm-up load (connection pools, template compilation; insights fits its forecast), timed too.
        page.goto(path, timeout=300_000)
        first = page.evaluate(NAVIGATION)["total"]
        totals, servers = measure(page, path, loads)
        shown = path if not path.startswith("/tickets/") else "/tickets/{id}"
        rows.append((shown, who, p(totals, 50), p(totals, 90), p(servers, 50), first))
        print(f"  {shown:<22} {who:<6} p50 {rows[-1][2]:7.0f} ms")
    context.close()
    return rows


def print_table(title: str, rows: list[tuple], first: bool = False) -> None:
    print(f"\n{title}\n")
    print("| page | as | p50 (ms) | p90 (ms) | server p50 (ms) |" + (" first load (ms) |" if first else ""))
    print("|---|---|---:|---:|---:|" + ("---:|" if first else ""))
    for path, who, p50, p90, server, first_ms in rows:
        print(f"| `{path}` | {who} | {p50:.0f} | {p90:.0f} | {server:.0f} |" + (f" {first_ms:.0f} |" if first else ""))


def bench_insights(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="console-insights-bench-") as scratch:
        print(f"Replaying {args.days} days of seeded history into insights…")
        started = time.monotonic()
        stack = start_insights_stack(Path(scratch), days=args.days, daily_volume=args.daily_volume, timeout=1800)
        print(f"  {stack.truth.items} feedback items read in {time.monotonic() - started:.0f} s; "
              f"the first GET /v1/forecast took {stack.forecast_fit_seconds:.1f} s")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
                rows = measure_pages(browser, stack.url, "analyst", INSIGHTS_PAGES, args.loads)
                browser.close()
        finally:
            stack.stop()
    print_table(f"Insights pages over {args.days} days of seeded history ({stack.truth.items} feedback items), "
                f"{args.loads} loads each (browser navigation timing, request start to load event); the forecast "
                f"fitted before the first page in {stack.forecast_fit_seconds:.1f} s:", rows, first=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--texts", type=Path, default=ROOT.parent / "shared" / "data" / "banking77" / "train.csv")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--only", choices=["pipeline", "insights"], help="measure one of the two stacks only")
    parser.add_argument("--days", type=int, default=98, help="days of seeded history for the insights pages")
    parser.add_argument("--daily-volume", type=float, default=40.0)
    args = parser.parse_args()
    if args.only != "insights":
        bench_pipeline(args)
    if args.only != "pipeline":
        bench_insights(args)


def bench_pipeline(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="console-bench-") as scratch:
        tmp = Path(scratch)
        print(f"Logs in {tmp} (removed at the end)")
        nats, processes = start(tmp)
        try:
            print(f"Seeding {args.tickets} feedback items through ingest…")
            ticket_id = seed(processes, texts_from(args.texts, args.tickets))
            base = processes[CONSOLE].url
            pages = {
                "agent": ["/queues/mine", "/queues/team", "/queues/triage", "/queues/breaching", "/queues/unassigned",
                          f"/tickets/{ticket_id}", "/preferences"],
                "lead": ["/dashboards", "/admin/taxonomy", "/admin/models", "/admin/routing-rules",
                         "/admin/sla-policies", "/admin/agents", "/admin/webhooks", "/admin/templates"],
            }
            rows = []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
                for who, paths in pages.items():
                    rows += measure_pages(browser, base, who, paths, args.loads)
                browser.close()
        finally:
            for process in reversed(list(processes.values())):
                process.stop()
            nats.stop()
    print_table(f"Console page loads with {args.tickets} tickets, {args.loads} loads each "
                "(browser navigation timing, request start to load event):", rows)


if __name__ == "__main__":
    main()

"""A seeded, realistic history of events for insights: what the other services would have published.

Months of feedback with weekday and hour-of-day seasonality and a slight upward trend, classified into
the default taxonomy, each becoming a ticket that is assigned (sometimes reassigned), answered, resolved
(sometimes reopened) and sometimes rated. Planted in it, and returned as the `Truth` the tests check:
- a spike in one category on one day (extra, mostly negative items through one channel);
- a wait-time effect on ratings: a first response later than the threshold raises the chance of a low
  rating (1-2) by `planted_risk_difference`, independently of everything else;
- a few high-value customers who start writing repeatedly and negatively in the last weeks (one of them
  with a breached ticket still open): the churners; plus decoys that must not be flagged (a low-value
  customer just as unhappy, a high-value customer writing often but happily);
- feature-request themes, one growing, one asked for by valuable customers.

`python -m insights.generator --nats nats://127.0.0.1:15005 --days 98` publishes it onto NATS.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID, uuid4

import numpy as np

from closedloop.events import (
    Channel,
    Classification,
    CustomerRef,
    Event,
    FeedbackClassifiedV1,
    FeedbackReceivedV1,
    SentimentLabel,
    TicketAssignedV1,
    TicketCreatedV1,
    TicketCsatReceivedV1,
    TicketCustomerRepliedV1,
    TicketRepliedV1,
    TicketResolvedV1,
    TicketSlaBreachedV1,
    TicketSnapshot,
)

if TYPE_CHECKING:
    from nats.js import JetStreamContext

T = TypeVar("T", bound=str)

CATEGORIES = {  # leaf -> (weight, negative probability)
    "billing/payment_failure": (6, 0.6), "billing/refund": (5, 0.5), "billing/unexpected_charge": (4, 0.65),
    "billing/subscription": (4, 0.3), "billing/invoice": (2, 0.2),
    "account/login_access": (7, 0.55), "account/profile_settings": (3, 0.2), "account/notifications": (2, 0.25),
    "technical/outage": (2, 0.75), "technical/bug": (8, 0.5), "technical/performance": (4, 0.5),
    "technical/integration": (2, 0.35),
    "product/feature_request": (6, 0.05), "product/usability": (4, 0.3), "product/documentation": (2, 0.2),
    "orders/delivery_delay": (6, 0.6), "orders/damaged_item": (3, 0.6), "orders/wrong_item": (2, 0.55),
    "security/fraud_phishing": (1, 0.7), "security/data_privacy": (1, 0.4),
}
TEAMS = {"billing": "payments", "account": "accounts", "technical": "engineering-support", "product": "product",
         "orders": "fulfilment", "security": "trust-and-safety"}
CHANNELS: tuple[tuple[Channel, float], ...] = (
    ("app", 0.3), ("email", 0.25), ("web", 0.2), ("chat", 0.15), ("app_review", 0.05), ("survey", 0.05))
REGIONS = (("emea", 0.45), ("amer", 0.35), ("apac", 0.2))
LANGUAGES = {"emea": (("en", 0.5), ("de", 0.25), ("pt", 0.25)), "amer": (("en", 0.7), ("es", 0.3)),
             "apac": (("en", 0.5), ("zh", 0.5))}
PRODUCTS = (("mobile-app", 0.5), ("web-app", 0.35), ("payments-api", 0.15))
HOUR_PROFILE = np.array([1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 11, 11, 10, 10, 11, 11, 10, 9, 7, 6, 5, 4, 3, 2], float)
WEEKDAY_FACTOR = (1.25, 1.15, 1.05, 1.0, 0.95, 0.55, 0.5)  # Monday .. Sunday
THEMES = {  # feature-request wording; growth per day of the history, share of valuable askers
    "dark mode": (["Please add a dark mode to the app", "Dark mode would make the app easier at night",
                   "I would love a dark mode option", "Any plans for dark mode in the mobile app?"], 0.02, 0.1),
    "export csv": (["Let us export reports to CSV", "We need an export of invoices to CSV",
                    "Please add CSV export for our accounting", "Export transactions to CSV please"], 0.0, 0.8),
    "offline mode": (["The app needs an offline mode", "Offline mode for when I have no signal",
                      "Please make the app work in offline mode"], 0.0, 0.1),
}
TEXTS = {
    "billing": "I have a problem with my payment and billing", "account": "I cannot manage my account access",
    "technical": "The app shows an error and does not work", "orders": "My order has a problem",
    "security": "I am worried about the security of my account", "product": "Some thoughts about the product",
}


@dataclass
class Truth:
    start: datetime
    end: datetime
    items: int
    spike_category: str
    spike_channel: str
    spike_day: datetime
    spike_items: int
    wait_threshold_minutes: float
    planted_risk_difference: float
    churners: list[str]
    decoys: list[str]
    themes: list[str] = field(default_factory=list)


def _choice(rng: np.random.Generator, options: tuple[tuple[T, float], ...]) -> T:
    names, weights = zip(*options, strict=True)
    p = np.array(weights, float)
    return names[rng.choice(len(names), p=p / p.sum())]


class History:
    def __init__(self, seed: int, days: int, daily_volume: float, start: datetime) -> None:
        self.rng = np.random.default_rng(seed)
        self.days, self.daily_volume, self.start = days, daily_volume, start
        self.end = start + timedelta(days=days)
        self.events: list[Event] = []
        self.items = 0
        rng = self.rng
        n_customers = max(int(daily_volume * 75), 300)
        values = rng.lognormal(mean=7.0, sigma=1.1, size=n_customers)
        self.customers = [(f"cust-{i:05d}", float(round(v, 2))) for i, v in enumerate(values)]
        # Nobody in the crowd reaches the churn value on their own: valuable customers are few and known.
        self.customers = [(cid, min(v, 9_000.0)) for cid, v in self.customers]
        self.valuable = [(f"key-{i:03d}", float(20_000 + 5_000 * i)) for i in range(12)]
        self.churners = [cid for cid, _ in self.valuable[:4]]
        self.happy_valuable = self.valuable[4]
        self.unhappy_small = ("cust-decoy", 800.0)
        leaves = list(CATEGORIES)
        weights = np.array([CATEGORIES[c][0] for c in leaves], float)
        self.leaves, self.leaf_p = leaves, weights / weights.sum()

    def tier(self, value: float) -> str:
        return "vip" if value >= 20_000 else "premium" if value >= 3_000 else "standard"

    def agents(self, team: str) -> list[str]:
        return [f"{team}.agent{i}@example.com" for i in range(1, 5)]

    def item(self, at: datetime, customer: tuple[str, float], category: str | None = None,
             sentiment: SentimentLabel | None = None, channel: Channel | None = None, text: str | None = None,
             breach_open: bool = False) -> None:
        rng = self.rng
        if at + timedelta(seconds=10) >= self.end:  # received, classified and ticketed within the history
            return
        self.items += 1
        category = category or str(self.leaves[rng.choice(len(self.leaves), p=self.leaf_p)])
        top = category.split("/", 1)[0]
        if sentiment is None:
            negative = CATEGORIES[category][1]
            sentiment = "negative" if rng.random() < negative else ("positive" if rng.random() < 0.3 else "neutral")
        channel = channel or _choice(rng, CHANNELS)
        region = _choice(rng, REGIONS)
        language = _choice(rng, LANGUAGES[region])
        product = _choice(rng, PRODUCTS)
        customer_id, value = customer
        ref = CustomerRef(id=customer_id, tier=self.tier(value), value=value)
        if text is None and category == "product/feature_request":
            text = self.feature_request(at, value)
        text = text or f"{TEXTS[top]} ({category.split('/')[1].replace('_', ' ')})"
        feedback_id = uuid4()
        nps = None
        if channel == "survey":
            nps = int(rng.choice([2, 5, 7, 8, 9, 10])) if sentiment != "negative" else int(rng.integers(0, 7))
        self.events.append(FeedbackReceivedV1(
            occurred_at=at, feedback_id=feedback_id, channel=channel, text=text, customer=ref, language=language,
            received_at=at, region=region, product=product, nps=nps))
        score = float(np.clip(rng.normal(0.8, 0.1), 0.4, 0.99))
        self.events.append(FeedbackClassifiedV1(
            occurred_at=at + timedelta(seconds=2), feedback_id=feedback_id, channel=channel, text=text,
            customer=ref, classification=Classification(
                category=category, category_label=category, top_level=top, confidence=0.8, sentiment=sentiment,
                sentiment_score=score, taxonomy_version="t1", model_version="generator", language=language)))
        self.ticket(at, feedback_id, category, sentiment, ref, breach_open)

    def feature_request(self, at: datetime, value: float) -> str:
        rng = self.rng
        day = (at - self.start).days
        themes = list(THEMES)
        weights = np.array([1.0 + THEMES[t][1] * day * 3 for t in themes])
        theme = themes[rng.choice(len(themes), p=weights / weights.sum())]
        return str(rng.choice(THEMES[theme][0]))

    def ticket(self, at: datetime, feedback_id: UUID, category: str, sentiment: SentimentLabel, ref: CustomerRef,
               breach_open: bool) -> None:
        rng, end = self.rng, self.end
        team = TEAMS[category.split("/", 1)[0]]
        ticket_id = uuid4()

        def snap(status: str, assignee: str | None) -> TicketSnapshot:
            return TicketSnapshot(ticket_id=ticket_id, feedback_id=feedback_id, title=category, status=status,
                                  priority="P2", team=team, category=category, sentiment=sentiment, customer=ref,
                                  assignee=assignee)

        created = at + timedelta(seconds=5)
        self.events.append(TicketCreatedV1(occurred_at=created, ticket=snap("new", None)))
        agents = self.agents(team)
        agent = str(rng.choice(agents))
        self.events.append(TicketAssignedV1(occurred_at=created + timedelta(seconds=1), ticket=snap("new", agent),
                                            assignee=agent, reason="load"))
        reassigned = rng.random() < 0.12
        if reassigned:
            other = str(rng.choice([a for a in agents if a != agent]))
            self.events.append(TicketAssignedV1(occurred_at=created + timedelta(minutes=8), ticket=snap("new", other),
                                                assignee=other, previous_assignee=agent, reason="transfer"))
            agent = other
        wait = float(rng.lognormal(np.log(45), 1.0))  # minutes to the first response, independent of all else
        replied = created + timedelta(minutes=wait)
        resolved = replied + timedelta(hours=float(rng.lognormal(np.log(18), 0.8)))
        if breach_open:  # a churner's ticket: breached, and still open at the end
            self.events.append(TicketSlaBreachedV1(occurred_at=created + timedelta(hours=2), ticket=snap("new", agent),
                                                   target="first_response", due_at=created + timedelta(hours=2)))
            return
        if replied >= end:
            return
        self.events.append(TicketRepliedV1(occurred_at=replied, ticket=snap("open", agent), comment_id=1,
                                           author=agent, author_type="agent", text="Thanks, looking into it",
                                           channel="email", first_response=True))
        if resolved >= end:
            return
        if wait > 240:
            self.events.append(TicketSlaBreachedV1(occurred_at=created + timedelta(minutes=240),
                                                   ticket=snap("open", agent), target="first_response",
                                                   due_at=created + timedelta(minutes=240)))
        self.events.append(TicketResolvedV1(occurred_at=resolved, ticket=snap("resolved", agent), resolved_at=resolved))
        last = resolved
        reopen_p = 0.06 + 0.10 * reassigned + 0.05 * (category.startswith("technical"))
        if rng.random() < reopen_p and resolved + timedelta(days=2) < end:
            back = resolved + timedelta(days=1)
            self.events.append(TicketCustomerRepliedV1(occurred_at=back, ticket=snap("open", agent), comment_id=2,
                                                       text="Still broken", channel="email", reopened=True))
            last = back + timedelta(hours=20)
            self.events.append(TicketResolvedV1(occurred_at=last, ticket=snap("resolved", agent), resolved_at=last))
        if rng.random() < 0.6 and last + timedelta(hours=3) < end:
            low = rng.random() < 0.12 + self.truth_rd * (wait > self.truth_threshold) + 0.05 * reassigned
            score = int(rng.choice([1, 2])) if low else int(rng.choice([3, 4, 5], p=[0.2, 0.4, 0.4]))
            self.events.append(TicketCsatReceivedV1(occurred_at=last + timedelta(hours=2),
                                                    ticket=snap("resolved", agent), score=score, source="page"))

    truth_rd = 0.22
    truth_threshold = 60.0

    def moment(self, day: datetime) -> datetime:
        hour = int(self.rng.choice(24, p=HOUR_PROFILE / HOUR_PROFILE.sum()))
        return day + timedelta(hours=hour, seconds=float(self.rng.uniform(0, 3599)))


def generate(seed: int = 15, days: int = 98, daily_volume: float = 40.0,
             start: datetime | None = None) -> tuple[list[Event], Truth]:
    start = start or datetime(2026, 8, 24, tzinfo=UTC)  # a Monday
    h = History(seed, days, daily_volume, start)
    rng = h.rng
    spike_day = start + timedelta(days=days - 17)
    spike_category, spike_items = "technical/outage", int(daily_volume * 2)
    spike_channel: Channel = "app"
    for d in range(days):
        day = start + timedelta(days=d)
        mean = daily_volume * WEEKDAY_FACTOR[day.weekday()] * (1 + 0.15 * d / days)
        for _ in range(int(rng.poisson(mean))):
            h.item(h.moment(day), h.customers[int(rng.integers(len(h.customers)))])
        for customer in h.valuable[4:]:  # valuable customers write now and then, like everyone
            if rng.random() < 0.03:
                h.item(h.moment(day), customer, sentiment="neutral")
        if day == spike_day:
            for _ in range(spike_items):  # an outage: within business hours, through the app
                at = day + timedelta(hours=float(rng.uniform(9, 17)))
                h.item(at, h.customers[int(rng.integers(len(h.customers)))], category=spike_category,
                       sentiment="negative" if rng.random() < 0.9 else "neutral", channel=spike_channel)
    for i, customer in enumerate(h.valuable[:4]):  # churners: unhappy, again and again, lately
        for k in range(4 + i % 2):
            at = h.moment(h.end - timedelta(days=25 - 5 * k))
            h.item(at, customer, category="billing/unexpected_charge", sentiment="negative",
                   breach_open=(i == 0 and k == 0))
    for k in range(5):  # decoys: as unhappy but not valuable; valuable and writing often but content
        h.item(h.moment(h.end - timedelta(days=20 - 3 * k)), h.unhappy_small, category="billing/refund",
               sentiment="negative")
        h.item(h.moment(h.end - timedelta(days=20 - 3 * k)), h.happy_valuable, category="billing/invoice",
               sentiment="positive")
    for k in range(int(daily_volume)):  # valuable customers asking for the same feature
        customer = h.valuable[4 + k % 8]
        at = h.moment(start + timedelta(days=int(rng.integers(max(days - 60, 0), days))))
        h.item(at, customer, category="product/feature_request", sentiment="neutral",
               text=str(rng.choice(THEMES["export csv"][0])))
    h.events.sort(key=lambda e: e.occurred_at)
    events = [e for e in h.events if e.occurred_at < h.end]  # what had happened by the end of the history
    truth = Truth(start=start, end=h.end, items=sum(isinstance(e, FeedbackClassifiedV1) for e in events),
                  spike_category=spike_category, spike_channel=spike_channel,
                  spike_day=spike_day, spike_items=spike_items, wait_threshold_minutes=History.truth_threshold,
                  planted_risk_difference=History.truth_rd, churners=h.churners,
                  decoys=[h.unhappy_small[0], h.happy_valuable[0]], themes=list(THEMES))
    return events, truth


async def publish(events: list[Event], js: "JetStreamContext", chunk: int = 200) -> None:
    """Publish in time order, a chunk at a time concurrently (the consumers never rely on order across
    subjects; within a chunk two events of one ticket may swap, as redeliveries can make them)."""
    for offset in range(0, len(events), chunk):
        await asyncio.gather(*(js.publish(e.nats_subject, e.model_dump_json().encode(), timeout=60,
                                          headers={"Nats-Msg-Id": str(e.event_id)})
                               for e in events[offset:offset + chunk]))


def main() -> None:
    import argparse

    import nats

    from closedloop.config import ServiceSettings
    from closedloop.messaging.broker import ensure_streams

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nats", default="nats://127.0.0.1:14222")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--days", type=int, default=98)
    parser.add_argument("--daily-volume", type=float, default=40.0)
    args = parser.parse_args()

    async def run() -> None:
        events, truth = generate(args.seed, args.days, args.daily_volume)
        nc = await nats.connect(args.nats)
        js = nc.jetstream()
        await ensure_streams(js, max_age_days=ServiceSettings().stream_max_age_days)  # as the services do
        await publish(events, js)
        await nc.close()
        print(f"published {len(events)} events for {truth.items} feedback items, "
              f"{truth.start.date()} to {truth.end.date()}")

    asyncio.run(run())


if __name__ == "__main__":
    main()

"""Pain points: what goes with low ratings and reopened tickets, as effect sizes with intervals.

For each factor (waited longer than the threshold for a first response, was reassigned, came through a
channel, is in a top-level category) the tickets split into exposed and not: the risk difference of the
outcome with a Wald 95% interval, the odds ratio with Woolf's interval (0.5 added to every cell when one
is empty), and the odds ratio adjusted for all the other factors by a logistic regression (statsmodels).
A crude difference can be confounded (e.g. one channel waits longer); the adjusted odds ratio is the
one to trust when they disagree.
"""

import math
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from insights.models import FeedbackFact, TicketFact

Z95 = 1.959964


@dataclass
class Effect:
    factor: str
    exposed: int
    exposed_events: int
    unexposed: int
    unexposed_events: int
    risk_exposed: float
    risk_unexposed: float
    risk_difference: float
    risk_difference_ci: tuple[float, float]
    odds_ratio: float
    odds_ratio_ci: tuple[float, float]
    adjusted_odds_ratio: float | None = None
    adjusted_odds_ratio_ci: tuple[float, float] | None = None


def two_by_two(factor: str, exposed: np.ndarray, outcome: np.ndarray) -> Effect | None:
    a: float = int(np.sum(exposed & outcome))  # floats: the continuity correction below may add 0.5
    n1 = int(np.sum(exposed))
    c: float = int(np.sum(~exposed & outcome))
    n0 = int(np.sum(~exposed))
    if n1 == 0 or n0 == 0:
        return None
    p1, p0 = a / n1, c / n0
    rd = p1 - p0
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    b, d = n1 - a, n0 - c
    cells = [a, b, c, d]
    if min(cells) == 0:
        a, b, c, d = (x + 0.5 for x in cells)
    log_or = math.log((a * d) / (b * c))
    se_or = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    return Effect(factor, n1, int(np.sum(exposed & outcome)), n0, int(np.sum(~exposed & outcome)),
                  round(p1, 4), round(p0, 4), round(rd, 4), (round(rd - Z95 * se, 4), round(rd + Z95 * se, 4)),
                  round(math.exp(log_or), 3),
                  (round(math.exp(log_or - Z95 * se_or), 3), round(math.exp(log_or + Z95 * se_or), 3)))


def adjust(effects: list[Effect], factors: dict[str, np.ndarray], outcome: np.ndarray) -> None:
    """Odds ratios from one logistic regression over all the factors (left unset if it cannot be fitted)."""
    import statsmodels.api as sm

    names = [e.factor for e in effects]
    matrix = np.column_stack([factors[name].astype(float) for name in names])
    matrix = sm.add_constant(matrix, has_constant="add")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.Logit(outcome.astype(float), matrix).fit(disp=False, maxiter=100)
    except Exception:  # singular design (e.g. a factor that is the complement of others): crude only
        return
    intervals = fit.conf_int(alpha=0.05)
    for i, effect in enumerate(effects, start=1):
        effect.adjusted_odds_ratio = round(float(np.exp(fit.params[i])), 3)
        effect.adjusted_odds_ratio_ci = (round(float(np.exp(intervals[i][0])), 3),
                                         round(float(np.exp(intervals[i][1])), 3))


async def load_tickets(session: AsyncSession, start: datetime, end: datetime) -> list:
    # The channel is the feedback's (ticket events do not carry it).
    return list((await session.execute(select(
        TicketFact.created_at, TicketFact.first_response_at, TicketFact.reassignments, FeedbackFact.channel,
        TicketFact.category, TicketFact.csat, TicketFact.reopens, TicketFact.resolutions,
    ).outerjoin(FeedbackFact, FeedbackFact.feedback_id == TicketFact.feedback_id)
        .where(TicketFact.created_at >= start, TicketFact.created_at < end))).all())


async def drivers(session: AsyncSession, outcome: str, start: datetime, end: datetime,
                  wait_threshold_minutes: float = 60.0, low_rating_max: int = 2, min_exposed: int = 30
                  ) -> tuple[int, float | None, list[Effect]]:
    """(tickets considered, outcome rate, effects largest first). `outcome`: low_rating | reopened."""
    rows = await load_tickets(session, start, end)
    if outcome == "low_rating":
        rows = [r for r in rows if r.csat is not None]
        y = np.array([r.csat <= low_rating_max for r in rows], dtype=bool)
    else:
        rows = [r for r in rows if r.resolutions > 0]
        y = np.array([r.reopens > 0 for r in rows], dtype=bool)
    if not rows:
        return 0, None, []
    threshold = timedelta(minutes=wait_threshold_minutes)
    factors: dict[str, np.ndarray] = {
        f"waited_over_{wait_threshold_minutes:g}_min": np.array(
            [r.first_response_at is not None and r.first_response_at - r.created_at > threshold for r in rows]),
        "reassigned": np.array([r.reassignments > 0 for r in rows]),
    }
    for label, values in (("channel", [r.channel or "unknown" for r in rows]),
                          ("category", [(r.category or "unknown").split("/", 1)[0] for r in rows])):
        levels = sorted(set(values))
        for level in levels[1:] if len(levels) > 1 else []:  # the first level is the reference
            factors[f"{label}={level}"] = np.array([v == level for v in values])
    effects = []
    for name, exposed in factors.items():
        if exposed.sum() >= min_exposed and (~exposed).sum() >= min_exposed:
            effect = two_by_two(name, exposed, y)
            if effect is not None:
                effects.append(effect)
    if effects and y.any() and not y.all():
        adjust(effects, factors, y)
    effects.sort(key=lambda e: abs(e.risk_difference), reverse=True)
    return len(rows), round(float(y.mean()), 4), effects


FUNNEL_STEPS = (("consulted", "items"), ("ticket_opened", "tickets"), ("responded", "frt_n"),
                ("resolved", "resolved"), ("rated", "rated"), ("satisfied", "rated_satisfied"))

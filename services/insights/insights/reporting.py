"""The weekly report: top-10 issues with their trend, service levels, CSAT and NPS, the anomalies and
opportunities of the week; HTML with its charts inline (PNG parts referenced by Content-ID), in English
or Chinese, e-mailed to the subscribed leads. Each week is sent once (its row in `report_runs`)."""

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any, cast

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import CursorResult, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from insights.charts import line_chart
from insights.dimensions import day_of, week_of
from insights.models import RaisedAnomaly, ReportRun, ReportSubscriber
from insights.opportunities import find_opportunities
from insights.series import series, watermark
from insights.settings import InsightsSettings

log = logging.getLogger(__name__)
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(["html"]))

TEXT = {
    "en": {"title": "Weekly insights",
           "summary": "{items} feedback items ({change} on the week before), {negative} negative.",
           "top_issues": "Top 10 issues", "category": "Category", "items": "Items", "trend": "Trend",
           "negative": "Negative", "service": "Service levels", "sla": "SLA breaches per ticket",
           "first_response": "Mean first response", "resolution": "Mean resolution", "minutes": "min",
           "hours": "h", "previous": "week before:", "anomalies": "Anomalies", "observed": "observed",
           "expected": "expected", "opportunities": "Opportunities", "mentions": "mentions",
           "customers": "customers", "value": "value", "none": "None.",
           "volume_chart": "Daily volume and negative items",
           "csat_chart": "Daily CSAT", "footer": "Sent by Closedloop insights. Times are UTC."},
    "zh": {"title": "每周洞察", "summary": "共 {items} 条反馈（较上周 {change}），负面占 {negative}。",
           "top_issues": "十大问题", "category": "类别", "items": "数量", "trend": "趋势", "negative": "负面",
           "service": "服务水平", "sla": "每张工单的 SLA 违约", "first_response": "平均首次响应",
           "resolution": "平均解决时间", "minutes": "分钟", "hours": "小时", "previous": "上周：",
           "anomalies": "异常", "observed": "实际", "expected": "预期", "opportunities": "机会",
           "mentions": "次提及", "customers": "位客户", "value": "价值", "none": "无。",
           "volume_chart": "每日反馈量与负面数量", "csat_chart": "每日 CSAT",
           "footer": "由 Closedloop insights 发送。时间为 UTC。"},
}
LANGUAGES = tuple(TEXT)


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def delta(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.0f}%"


def num(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


@dataclass
class Report:
    week_start: datetime
    html: str
    images: dict[str, bytes]  # content id -> PNG
    subject: str


def _change(current: float, previous: float) -> float | None:
    return (current - previous) / previous if previous else None


def _value(points: list, metric: str, group: str = "all") -> float | None:
    for p in points:
        if p.metric == metric and p.group == group:
            return p.value
    return None


async def report_week(session: AsyncSession, week: date | None) -> datetime:
    """The Monday that starts the report's week: `week`'s, or the last complete week of data."""
    if week is not None:
        return week_of(datetime(week.year, week.month, week.day, tzinfo=UTC))
    latest = await watermark(session) or datetime.now(UTC)
    return week_of(latest) - timedelta(days=7)  # the last complete week


async def build_report(session: AsyncSession, week_start: datetime, language: str, inline: bool = False) -> Report:
    """`inline`: images as data: URIs (a browser preview) instead of cid: references (the e-mail)."""
    import base64

    week_start = week_of(week_start)
    week_end = week_start + timedelta(days=7)
    before = week_start - timedelta(days=7)
    week = await series(session, ["volume", "negative_share", "sla_breach_rate", "first_response_minutes",
                                  "resolution_hours", "csat", "nps"], "week", before, week_end)
    this = [p for p in week if p.period == week_start]
    last = [p for p in week if p.period == before]
    items, items_before = _value(this, "volume") or 0.0, _value(last, "volume") or 0.0
    by_category = await series(session, ["volume", "negative_share"], "week", before, week_end, group_by="category")
    current = {p.group: p for p in by_category if p.period == week_start and p.metric == "volume"}
    previous = {p.group: p.value or 0 for p in by_category if p.period == before and p.metric == "volume"}
    negative = {p.group: p.value for p in by_category if p.period == week_start and p.metric == "negative_share"}
    issues = sorted(current.values(), key=lambda p: -(p.value or 0))[:10]
    daily_start = week_end - timedelta(days=56)
    daily = await series(session, ["volume", "negative_volume", "csat"], "day", daily_start, week_end)
    days = sorted({p.period for p in daily})
    values = {(p.period, p.metric): p.value for p in daily}
    images = {
        "volume": line_chart(days, {"volume": [values.get((d, "volume")) or 0 for d in days],
                                    "negative": [values.get((d, "negative_volume")) or 0 for d in days]},
                             {"volume": "#2563eb", "negative": "#dc2626"}),
        "satisfaction": line_chart(days, {"CSAT": [values.get((d, "csat")) or float("nan") for d in days]},
                                   {"CSAT": "#059669"}),
    }
    anomalies = list(await session.scalars(select(RaisedAnomaly).where(
        RaisedAnomaly.window_start >= week_start, RaisedAnomaly.window_start < week_end)
        .order_by(RaisedAnomaly.window_start)))
    opportunities = (await find_opportunities(session, week_end))[:5]
    sources = {name: (f"data:image/png;base64,{base64.b64encode(png).decode()}" if inline else f"cid:{name}")
               for name, png in images.items()}
    t = TEXT[language]
    html = TEMPLATES.get_template("weekly_report.html").render(
        lang="zh-CN" if language == "zh" else "en", t=t, pct=pct, delta=delta, num=num,
        week_start=week_start.date().isoformat(), week_end=(week_end - timedelta(days=1)).date().isoformat(),
        totals={"items": items, "change": _change(items, items_before),
                "negative_share": _value(this, "negative_share")},
        issues=[{"category": p.group, "items": p.value or 0, "change": _change(p.value or 0, previous.get(p.group, 0)),
                 "negative_share": negative.get(p.group)} for p in issues],
        service={"sla_breach_rate": _value(this, "sla_breach_rate"),
                 "first_response_minutes": _value(this, "first_response_minutes"),
                 "resolution_hours": _value(this, "resolution_hours"), "csat": _value(this, "csat"),
                 "csat_previous": _value(last, "csat"), "nps": _value(this, "nps"),
                 "nps_previous": _value(last, "nps")},
        anomalies=anomalies, opportunities=opportunities, images=sources)
    return Report(week_start, html, images, f"{t['title']} {week_start.date().isoformat()}")


def email_for(report: Report, sender: str, recipient: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = report.subject, sender, recipient
    message["Message-ID"] = make_msgid(domain="closedloop.local")
    message.set_content("This report is HTML; open it in a mail reader that shows HTML.\n")
    message.add_alternative(report.html, subtype="html")
    html_part = cast(list[EmailMessage], message.get_payload())[1]  # multipart now: its parts, plain and HTML
    for name, png in report.images.items():  # multipart/related: the HTML's cid: references resolve here
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{name}>", filename=f"{name}.png")
    return message


async def send_email(settings: InsightsSettings, message: EmailMessage) -> None:
    await aiosmtplib.send(
        message, hostname=settings.smtp_host, port=settings.smtp_port,
        username=settings.smtp_username or None, password=settings.smtp_password.get_secret_value() or None,
        use_tls=settings.smtp_security == "tls", start_tls=settings.smtp_security == "starttls", timeout=30)


async def send_weekly_report(sessions: async_sessionmaker[AsyncSession], settings: InsightsSettings,
                             week_start: datetime, force: bool = False) -> list[str]:
    """Send the week's report to every subscriber, once per week across replicas (unless `force`).
    Returns the addresses it went to."""
    week_start = week_of(week_start)
    key = week_start.date().isoformat()
    async with sessions() as session, session.begin():
        insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        claimed = cast(CursorResult[Any], await session.execute(insert(ReportRun).values(
            week_start=key, started_at=datetime.now(UTC), sent_to=[]).on_conflict_do_nothing(
            index_elements=["week_start"])))
        if claimed.rowcount != 1 and not force:
            return []
        subscribers = list(await session.scalars(select(ReportSubscriber).order_by(ReportSubscriber.email)))
        reports = {lang: await build_report(session, week_start, lang)
                   for lang in {s.language for s in subscribers}}
    sent, errors = [], []
    for subscriber in subscribers:
        try:
            await send_email(settings, email_for(reports[subscriber.language], settings.smtp_from, subscriber.email))
            sent.append(subscriber.email)
        except Exception as exc:  # one bad address must not keep the report from the others
            errors.append(f"{subscriber.email}: {type(exc).__name__}: {exc}")
    async with sessions() as session, session.begin():
        run = await session.get(ReportRun, key)
        if run is not None:
            run.sent_to, run.error = sent, "; ".join(errors)[:4000] or None
    return sent


class ReportScheduler:
    """After each analysis run: on the configured weekday and hour (UTC), send last week's report."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: InsightsSettings) -> None:
        self.sessions, self.settings = sessions, settings

    async def maybe_send(self, _summary: object) -> None:
        if not self.settings.smtp_host:
            return
        now = datetime.now(UTC)
        if now.weekday() != self.settings.report_weekday or now.hour < self.settings.report_hour_utc:
            return
        async with self.sessions() as session:
            if await watermark(session) is None:
                return
        await send_weekly_report(self.sessions, self.settings, day_of(now) - timedelta(days=7))

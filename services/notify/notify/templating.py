"""Rendering notifications with Jinja2 in a sandbox: templates are edited over the API, so they must
not reach Python internals, nor take the process's memory or CPU. HTML bodies are autoescaped; subjects
and text bodies are not (they are never interpreted as markup).

Limits (a template preview is an API call anyone with config rights can make):
- output: at most `MAX_OUTPUT_CHARS` characters per part, counted while rendering, so a loop stops early;
- expressions: `*` and `**` refuse results that would exceed the output limit *before* computing them
  (`{{ 'x' * 100000000 }}` would otherwise allocate 100 MB in one step), and `range` is capped by the
  sandbox (100,000 items);
- time: `MAX_RENDER_SECONDS` per part, checked on every line the compiled template executes (a trace
  function on the template's own frames only), so nested loops cannot run for minutes.
"""

import operator
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from jinja2 import TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.durations import humanize
from closedloop.events import (
    AlertRaisedV1,
    CustomerRef,
    Event,
    TicketAssignedV1,
    TicketCreatedV1,
    TicketRepliedV1,
    TicketResolvedV1,
    TicketSlaBreachedV1,
    TicketSlaWarningV1,
    TicketSnapshot,
)
from notify.default_templates import DEFAULT_TEMPLATES, DefaultTemplate
from notify.models import Template
from notify.settings import NotifySettings

MAX_OUTPUT_CHARS = 200_000
MAX_RENDER_SECONDS = 2.0
MAX_EXPONENT = 1_000


class RenderLimitExceeded(SecurityError):
    pass


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple) else None


class BoundedSandbox(SandboxedEnvironment):
    """The sandbox with the size checks of `*` and `**` described above."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            for sequence, times in ((left, right), (right, left)):
                size = _size(sequence)
                if size is not None and isinstance(times, int) and size * times > MAX_OUTPUT_CHARS:
                    raise RenderLimitExceeded(f"a repeated value longer than {MAX_OUTPUT_CHARS} characters")
            return operator.mul(left, right)
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise RenderLimitExceeded(f"an exponent above {MAX_EXPONENT}")
            return operator.pow(left, right)
        return super().call_binop(context, operator_name, left, right)


TEXT_ENV = BoundedSandbox(autoescape=False, trim_blocks=False, keep_trailing_newline=True)
HTML_ENV = BoundedSandbox(autoescape=True, keep_trailing_newline=True)


def render_limited(template: Any, context: dict[str, Any]) -> str:
    """Render within the output and time limits; RenderLimitExceeded when one is reached."""
    deadline = time.monotonic() + MAX_RENDER_SECONDS

    def trace_template_line(frame: Any, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise RenderLimitExceeded(f"rendering took longer than {MAX_RENDER_SECONDS} s")
        return trace_template_line

    def trace_calls(frame: Any, event: str, arg: Any) -> Any:
        # Only the template's compiled code is traced; the rest of the process runs at full speed.
        return trace_template_line if frame.f_code.co_filename == "<template>" else None

    previous = sys.gettrace()
    sys.settrace(trace_calls)
    try:
        chunks, size = [], 0
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise RenderLimitExceeded(f"the output is longer than {MAX_OUTPUT_CHARS} characters")
            chunks.append(chunk)
        return "".join(chunks)
    finally:
        sys.settrace(previous)
GENERIC_KEY = "event"
PARTS = ("subject", "body_text", "body_html")

# First response targets by priority when the event carries no SLA due time (product defaults).
DEFAULT_FIRST_RESPONSE = {"P0": timedelta(minutes=15), "P1": timedelta(hours=2), "P2": timedelta(hours=48)}

class TemplateInvalid(ValueError):
    def __init__(self, part: str, message: str) -> None:
        super().__init__(f"{part}: {message}")
        self.part, self.message = part, message


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None
    template_id: str | None
    language: str


def language_candidates(language: str | None, fallback: str) -> list[str]:
    """'pt-BR' → ['pt-br', 'pt', <fallback>]."""
    candidates = []
    if language:
        language = language.strip().lower().replace("_", "-")
        candidates += [language, language.split("-")[0]]
    candidates.append(fallback.lower())
    return list(dict.fromkeys(c for c in candidates if c))


def validate(channel: str, subject: str | None, body_text: str, body_html: str | None) -> None:
    for part, source, env in (("subject", subject, TEXT_ENV), ("body_text", body_text, TEXT_ENV),
                              ("body_html", body_html, HTML_ENV)):
        if source is None:
            continue
        try:
            env.parse(source)
        except TemplateSyntaxError as exc:
            raise TemplateInvalid(part, f"line {exc.lineno}: {exc.message}") from exc
    if channel == "email" and not (subject or "").strip():
        raise TemplateInvalid("subject", "an e-mail template needs a subject")


def render_parts(subject: str | None, body_text: str, body_html: str | None, context: dict[str, Any],
                 ) -> tuple[str, str, str | None]:
    results: list[str | None] = []
    for part, source, env in (("subject", subject, TEXT_ENV), ("body_text", body_text, TEXT_ENV),
                              ("body_html", body_html, HTML_ENV)):
        if source is None:
            results.append(None)
            continue
        try:
            results.append(render_limited(env.from_string(source), context))
        except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError, AttributeError,
                RecursionError) as exc:
            # A template is user input: whatever it does wrong (range(1e8) is a TypeError) is its own fault,
            # answered as an invalid template, never as a server error.
            raise TemplateInvalid(part, f"{type(exc).__name__}: {exc}") from exc
    subject_out, text_out, html_out = results
    return " ".join((subject_out or "").split()), text_out or "", html_out


def _defaults(key: str, channel: str, language: str) -> DefaultTemplate | None:
    return next((t for t in DEFAULT_TEMPLATES if (t.key, t.channel, t.language) == (key, channel, language)), None)


async def find_template(session: AsyncSession, key: str, channel: str, language: str | None,
                        fallback: str) -> tuple[Template | DefaultTemplate, str] | None:
    """The stored template for the key in the best language, else the shipped one; then the same for the
    generic key. Returns the template and the language it is in."""
    languages = language_candidates(language, fallback)
    for candidate_key in dict.fromkeys((key, GENERIC_KEY)):
        rows = {t.language: t for t in await session.scalars(
            select(Template).where(Template.key == candidate_key, Template.channel == channel,
                                   Template.language.in_(languages)))}
        for lang in languages:
            found = rows.get(lang) or _defaults(candidate_key, channel, lang)
            if found is not None:
                return found, lang
    return None


async def render(session: AsyncSession, key: str, channel: str, language: str | None, context: dict[str, Any],
                 fallback: str) -> Rendered:
    found = await find_template(session, key, channel, language, fallback)
    if found is None:
        raise TemplateInvalid("key", f"no {channel} template for {key!r}")
    template, lang = found
    context = {**context, "language": lang}
    if context.get("_expected_response_delta") is not None:
        context["expected_response"] = humanize(context["_expected_response_delta"], lang)
    try:
        subject, text, html = render_parts(template.subject, template.body_text, template.body_html, context)
    except TemplateInvalid:
        shipped = _defaults(template.key, channel, lang)
        if shipped is None or isinstance(template, DefaultTemplate):
            raise
        # An edited template that no longer renders must not silence the notification.
        subject, text, html = render_parts(shipped.subject, shipped.body_text, shipped.body_html, context)
        template = shipped
    return Rendered(subject, text, html, getattr(template, "id", None), lang)


# --- context -------------------------------------------------------------------------------------

def expected_response(event: Event, ticket: TicketSnapshot) -> timedelta | None:
    due = ticket.first_response_due_at
    if due is not None:
        return max(due - event.occurred_at, timedelta(minutes=1))
    return DEFAULT_FIRST_RESPONSE.get(ticket.priority)


def reference_of(ticket: TicketSnapshot) -> str:
    return ticket.reference or str(ticket.ticket_id).split("-")[0].upper()


def build_context(event: Event, settings: NotifySettings, recipient: str | None = None) -> dict[str, Any]:
    data = event.model_dump(mode="json")
    ticket: TicketSnapshot | None = getattr(event, "ticket", None)
    context: dict[str, Any] = {
        "event_type": event.nats_subject, "event": data, "recipient": recipient,
        "ticket": data.get("ticket"), "customer": (data.get("ticket") or {}).get("customer") or {},
        "alert": data if isinstance(event, AlertRaisedV1) else None,
        "status_url": None, "csat_url": None, "expected_response": None, "due_at": None, "reference": None,
        # ticket.replied.v1: what the agent wrote and who they are (a display name, never an address).
        "reply": {"text": data["text"], "author": data["author"], "kind": data.get("kind")}
        if isinstance(event, TicketRepliedV1) else None,
    }
    if ticket is not None:
        context["reference"] = reference_of(ticket)
        # Links come from ticketing (one public base URL for every link that leaves the system).
        context["status_url"] = getattr(event, "status_url", None) or ticket.status_url
        context["csat_url"] = getattr(event, "csat_url", None) or ticket.csat_url
        context["due_at"] = ticket.first_response_due_at.isoformat() if ticket.first_response_due_at else None
        context["_expected_response_delta"] = expected_response(event, ticket)
    return context


# --- sample data for previews --------------------------------------------------------------------

def sample_event(key: str) -> Event:
    now = datetime.now(UTC)
    ticket = TicketSnapshot(
        ticket_id=UUID("3f2b9c1e-8a4d-4c2b-9e1f-0a1b2c3d4e5f"), feedback_id=uuid4(),
        title="Charged twice for my subscription", status="new", priority="P1", team="payments",
        category="billing/unexpected_charge", sentiment="negative",
        customer=CustomerRef(id="cust-1", tier="vip", email="ana@example.com", name="Ana"),
        assignee="agent@example.com", public_token="pub-3f2b9c1e", team_lead="lead@example.com",
        first_response_due_at=now + timedelta(hours=2), channel="email", reference="3F2B9C1E",
        status_url="https://support.example.com/tickets/pub-3f2b9c1e",
        csat_url="https://support.example.com/tickets/pub-3f2b9c1e/csat",
    )
    samples: dict[str, Event] = {
        "ticket.created.v1": TicketCreatedV1(ticket=ticket, occurred_at=now),
        "ticket.assigned.v1": TicketAssignedV1(ticket=ticket, assignee="agent@example.com", occurred_at=now),
        "ticket.sla_warning.v1": TicketSlaWarningV1(ticket=ticket, target="first_response",
                                                    due_at=now + timedelta(minutes=20), occurred_at=now),
        "ticket.sla_breached.v1": TicketSlaBreachedV1(ticket=ticket, target="first_response", due_at=now,
                                                      previous_priority="P2", occurred_at=now),
        "ticket.resolved.v1": TicketResolvedV1(ticket=ticket, resolved_at=now, occurred_at=now),
        "ticket.replied.v1": TicketRepliedV1(ticket=ticket, comment_id=1, author="Ana", author_type="agent",
                                             text="We refunded the duplicate charge; it shows within 3 days.",
                                             language="en", channel="email", occurred_at=now),
        "alert.raised.v1": AlertRaisedV1(kind="negative_spike", severity="critical", occurred_at=now,
                                         message="Negative feedback share is 42% over the last hour",
                                         metrics={"negative_share": 0.42, "volume": 180}),
    }
    return samples.get(key, samples["ticket.created.v1"])


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for name, value in override.items():
        merged[name] = merge(merged[name], value) if isinstance(value, dict) and isinstance(
            merged.get(name), dict) else value
    return merged

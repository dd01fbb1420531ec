"""Macros (reply templates per language with placeholders) and the replies suggested for a ticket.

Ranking: every active macro in the ticket's language (or, when none is written in it, in English) gets
a prior from what it was written for — its category against the ticket's (exact, parent, any) and the
customer's emotions — and the prior is pulled towards what agents actually chose on similar tickets
(same category, then the same top level; sharing an emotion and the language weigh more). With few uses
the prior decides (cold start); with many, the agents' choices do:

    score = (PSEUDO_USES × prior + similar uses of this macro) / (PSEUDO_USES + similar uses of all macros)
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, uuid4, uuid5

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.api import get_or_404
from closedloop.durations import humanize
from closedloop.errors import field_problem
from ticketing import links
from ticketing.models import Macro, MacroUse, Ticket
from ticketing.schemas.macros import MacroIn, MacroPatchIn, SuggestedReply

PLACEHOLDERS = ("customer_name", "ticket_number", "expected_time", "status_link")
_PLACEHOLDER = re.compile(r"{{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*}}")
FALLBACK_LANGUAGE = "en"
PSEUDO_USES = 3.0
EXACT, PARENT, ANY = 1.0, 0.6, 0.3

# --- rendering ---------------------------------------------------------------------------------------

_CUSTOMER = {"en": "there", "zh": "您好", "es": "", "pt": "", "de": ""}


def base_language(language: str | None) -> str:
    return (language or FALLBACK_LANGUAGE).strip().lower().replace("_", "-").split("-")[0] or FALLBACK_LANGUAGE


def unknown_placeholders(body: str) -> list[str]:
    return sorted({name for name in _PLACEHOLDER.findall(body) if name not in PLACEHOLDERS})


def placeholder_values(ticket: Ticket, language: str, now: datetime) -> dict[str, str]:
    due = ticket.first_response_due_at if ticket.first_responded_at is None else ticket.resolution_due_at
    if due is not None and ticket.status not in ("resolved", "closed"):
        expected = humanize(max(due - now, timedelta(minutes=1)), language)
    else:
        expected = ""
    lang = base_language(language)
    return {"customer_name": ticket.customer_name or _CUSTOMER.get(lang, ""),
            "ticket_number": links.reference(ticket.id), "expected_time": expected,
            "status_link": links.status_url(ticket.public_token)}


def render(body: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), body)


# --- ranking -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    macro: Macro
    score: float
    prior: float
    similar_uses: int
    reasons: list[str]


def category_fit(macro_category: str | None, ticket_category: str) -> float:
    if not macro_category:
        return ANY
    if macro_category == ticket_category:
        return EXACT
    if ticket_category.startswith(macro_category + "/"):
        return PARENT
    return 0.0


def prior(macro: Macro, ticket: Ticket) -> tuple[float, list[str]]:
    fit = category_fit(macro.category, ticket.category)
    reasons = []
    if fit == EXACT:
        reasons.append(f"written for {ticket.category}")
    elif fit == PARENT:
        reasons.append(f"written for {macro.category}")
    elif fit == ANY:
        reasons.append("fits any category")
    shared = sorted(set(macro.emotions or []) & set(ticket.emotions or []))
    if shared:
        fit += 0.3
        reasons.append("for a customer showing " + ", ".join(shared))
    elif macro.emotions:
        fit -= 0.15  # written for an upset customer; this one is not
    return max(fit, 0.0) / 1.3, reasons


def use_weight(use: MacroUse, ticket: Ticket) -> float:
    """How much a past use on another ticket says about this one."""
    if use.category == ticket.category:
        weight = 1.0
    elif use.category.split("/")[0] == ticket.category.split("/")[0]:
        weight = 0.4
    else:
        return 0.0
    if set(use.emotions or []) & set(ticket.emotions or []):
        weight *= 1.5
    if base_language(use.language) != base_language(ticket.language):
        weight *= 0.5
    return weight


async def suggest(session: AsyncSession, ticket: Ticket, limit: int = 5) -> list[Suggestion]:
    macros = list(await session.scalars(select(Macro).where(Macro.active.is_(True)).order_by(Macro.name)))
    wanted = base_language(ticket.language)
    in_language = [m for m in macros if base_language(m.language) == wanted]
    candidates = in_language or [m for m in macros if base_language(m.language) == FALLBACK_LANGUAGE]
    top = ticket.category.split("/")[0]
    uses = list(await session.scalars(select(MacroUse).where(
        MacroUse.category.startswith(top), MacroUse.ticket_id != ticket.id)))
    weights: dict[str, float] = {}
    counts: dict[str, int] = {}
    for use in uses:
        weight = use_weight(use, ticket)
        if weight:
            weights[use.macro_id] = weights.get(use.macro_id, 0.0) + weight
            counts[use.macro_id] = counts.get(use.macro_id, 0) + 1
    total = sum(weights.get(m.id, 0.0) for m in candidates)
    ranked = []
    for macro in candidates:
        p, reasons = prior(macro, ticket)
        learned = weights.get(macro.id, 0.0)
        if p == 0 and learned == 0:
            continue  # written for another category and never chosen for one like this
        score = (PSEUDO_USES * p + learned) / (PSEUDO_USES + total)
        if counts.get(macro.id):
            reasons.append(f"chosen {counts[macro.id]} times on similar tickets")
        ranked.append(Suggestion(macro, round(score, 4), round(p, 4), counts.get(macro.id, 0), reasons))
    ranked.sort(key=lambda s: (-s.score, s.macro.name))
    return ranked[:limit]


def record_use(session: AsyncSession, macro: Macro, ticket: Ticket, now: datetime) -> None:
    session.add(MacroUse(macro_id=macro.id, ticket_id=ticket.id, category=ticket.category,
                         language=ticket.language, emotions=list(ticket.emotions or []), sentiment=ticket.sentiment,
                         used_at=now))


# --- the macro library over the API (each change one transaction) ---------------------------------------


def check_placeholders(body: str | None) -> None:
    """422 naming `body.body` when the text uses a placeholder we cannot fill."""
    unknown = unknown_placeholders(body or "")
    if unknown:
        raise field_problem("body.body", f"unknown placeholder(s) {', '.join(unknown)}; use {', '.join(PLACEHOLDERS)}")


async def list_macros(session: AsyncSession, language: str | None = None, category: str | None = None,
                      active: bool | None = None) -> list[Macro]:
    """By name (then language)."""
    query = select(Macro).order_by(Macro.name, Macro.language)
    if language:
        query = query.where(Macro.language == language)
    if category:
        query = query.where(Macro.category == category)
    if active is not None:
        query = query.where(Macro.active.is_(active))
    return list(await session.scalars(query))


async def get_macro(session: AsyncSession, macro_id: str) -> Macro:
    return await get_or_404(session, Macro, macro_id, "Macro")


async def create_macro(session: AsyncSession, body: MacroIn, now: datetime) -> Macro:
    check_placeholders(body.body)
    async with session.begin():
        macro = Macro(id=str(uuid4()), **body.model_dump(), builtin=False, created_at=now, updated_at=now)
        session.add(macro)
    return macro


async def update_macro(session: AsyncSession, macro_id: str, change: MacroPatchIn, now: datetime) -> Macro:
    """Only the fields sent (shipped macros too); `category: null` makes it fit any category."""
    async with session.begin():
        macro = await get_macro(session, macro_id)
        check_placeholders(change.body)
        for name, value in change.model_dump(exclude_unset=True).items():
            if value is None and name not in ("category",):
                continue
            setattr(macro, name, value)
        macro.updated_at = now
    return macro


async def delete_macro(session: AsyncSession, macro_id: str, now: datetime) -> None:
    """A shipped macro is deactivated instead, so it does not come back at the next start."""
    async with session.begin():
        macro = await get_macro(session, macro_id)
        if macro.builtin:
            macro.active, macro.updated_at = False, now
        else:
            await session.delete(macro)


async def suggested_replies(session: AsyncSession, ticket_id: str, now: datetime, limit: int) -> list[SuggestedReply]:
    """The macros ranked for the ticket (`suggest`), filled in for it."""
    ticket = await get_or_404(session, Ticket, ticket_id, "Ticket")
    result = []
    for suggestion in await suggest(session, ticket, limit):
        values = placeholder_values(ticket, suggestion.macro.language, now)
        result.append(SuggestedReply(
            macro_id=suggestion.macro.id, name=suggestion.macro.name, language=suggestion.macro.language,
            score=suggestion.score, prior=suggestion.prior, similar_uses=suggestion.similar_uses,
            reasons=suggestion.reasons, text=render(suggestion.macro.body, values)))
    return result


# --- the macros ticketing ships (English and Simplified Chinese) --------------------------------------------


@dataclass(frozen=True)
class DefaultMacro:
    name: str
    category: str | None
    emotions: tuple[str, ...]
    bodies: dict[str, str]


DEFAULT_MACROS = (
    DefaultMacro("Acknowledge and investigate", None, (), {
        "en": "Hello {{ customer_name }},\n\nThank you for writing to us about ticket {{ ticket_number }}. "
              "We are looking into it and will get back to you within {{ expected_time }}.\n\n"
              "You can follow the ticket here: {{ status_link }}",
        "zh": "{{ customer_name }}，您好：\n\n感谢您就工单 {{ ticket_number }} 联系我们。我们正在处理，"
              "将在 {{ expected_time }}内回复您。\n\n您可以在这里查看工单进展：{{ status_link }}",
    }),
    DefaultMacro("Apology for the trouble", None, ("anger", "frustration"), {
        "en": "Hello {{ customer_name }},\n\nI am sorry for the trouble this has caused you — that is not the "
              "experience we want you to have. I have taken ticket {{ ticket_number }} personally and will update "
              "you within {{ expected_time }}.\n\n{{ status_link }}",
        "zh": "{{ customer_name }}，您好：\n\n非常抱歉给您带来了困扰，这不是我们希望您遇到的体验。"
              "我已亲自跟进工单 {{ ticket_number }}，将在 {{ expected_time }}内向您更新进展。\n\n{{ status_link }}",
    }),
    DefaultMacro("Refund on its way", "billing", (), {
        "en": "Hello {{ customer_name }},\n\nWe have issued your refund. Depending on your bank it shows on your "
              "statement within 3 to 5 business days. Ticket {{ ticket_number }}: {{ status_link }}",
        "zh": "{{ customer_name }}，您好：\n\n我们已为您办理退款。"
              "根据您的银行处理时间，款项将在 3 至 5 个工作日内到账。"
              "工单 {{ ticket_number }}：{{ status_link }}",
    }),
    DefaultMacro("Duplicate charge reversed", "billing/unexpected_charge", (), {
        "en": "Hello {{ customer_name }},\n\nYou were right: the payment was taken twice. We have reversed the "
              "duplicate charge; it disappears from your statement within a few days.\n\n{{ status_link }}",
        "zh": "{{ customer_name }}，您好：\n\n您说得对，这笔款项被重复扣除了。我们已撤销重复扣款，"
              "几天内将从您的账单中消失。\n\n{{ status_link }}",
    }),
    DefaultMacro("Technical problem under investigation", "technical", (), {
        "en": "Hello {{ customer_name }},\n\nThank you for the report. Our engineers are investigating the problem "
              "now; we will tell you as soon as it is fixed, at the latest within {{ expected_time }}.\n\n"
              "{{ status_link }}",
        "zh": "{{ customer_name }}，您好：\n\n感谢您的反馈。我们的工程师正在排查这个问题，修复后会第一时间通知您，"
              "最迟在 {{ expected_time }}内。\n\n{{ status_link }}",
    }),
    DefaultMacro("Delivery delay", "orders/delivery_delay", (), {
        "en": "Hello {{ customer_name }},\n\nI am sorry your order is late. I have asked the carrier for an update "
              "and will let you know what they say within {{ expected_time }}.\n\n{{ status_link }}",
        "zh": "{{ customer_name }}，您好：\n\n很抱歉您的订单延误了。我已联系承运商了解最新情况，"
              "将在 {{ expected_time }}内告诉您结果。\n\n{{ status_link }}",
    }),
    DefaultMacro("Sign-in help", "account/login_access", (), {
        "en": "Hello {{ customer_name }},\n\nPlease use “Forgot password” on the sign-in page; the link we send is "
              "valid for one hour. If it does not arrive, reply to this message and we will unlock your account.",
        "zh": "{{ customer_name }}，您好：\n\n请在登录页面点击“忘记密码”，我们发送的链接一小时内有效。"
              "如果没有收到，请直接回复此消息，我们会为您解锁账户。",
    }),
    DefaultMacro("Thanks for the kind words", "general/praise", (), {
        "en": "Hello {{ customer_name }},\n\nThank you for taking the time to tell us — it means a lot to the team. "
              "If there is ever anything we can do for you, just reply to this message.",
        "zh": "{{ customer_name }}，您好：\n\n感谢您抽出时间告诉我们，这对我们的团队意义重大。"
              "如果以后有任何需要，直接回复此消息即可。",
    }),
)


def default_macro_id(name: str, language: str) -> str:
    """Stable ids, so replicas starting together insert each shipped macro once."""
    return str(uuid5(NAMESPACE_URL, f"closedloop:macro:{name}:{language}"))


async def seed_default_macros(sessions: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Insert the shipped macros that are missing (an edited or deleted one is not brought back)."""
    added = 0
    for shipped in DEFAULT_MACROS:
        for language, body in shipped.bodies.items():
            macro_id = default_macro_id(shipped.name, language)
            try:
                async with sessions() as session, session.begin():
                    if await session.get(Macro, macro_id) is not None:
                        continue
                    session.add(Macro(id=macro_id, name=shipped.name, language=language, category=shipped.category,
                                      emotions=list(shipped.emotions), body=body, active=True, builtin=True,
                                      created_at=now, updated_at=now))
                added += 1
            except IntegrityError:
                continue  # another replica inserted it first
    return added

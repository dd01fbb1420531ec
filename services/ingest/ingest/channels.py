"""Channel webhooks: each source's own shape turned into the standard record (`FeedbackIn`).

Every channel may require a signature (a per-channel secret in `INGEST_CHANNEL_SECRETS`):
`Closedloop-Signature: t=<unix time>,v1=<hex>` with `v1 = HMAC-SHA256(secret, "<t>.<raw body>")`,
the same recipe notify uses for the webhooks it sends.
"""

import hashlib
import hmac
import re
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from html.parser import HTMLParser
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.errors import FieldError, ProblemError, field_problem
from ingest.intake import Accepted, accept_record
from ingest.models import Customer
from ingest.schemas.feedback import LANGUAGE_TAG, FeedbackIn
from ingest.settings import IngestSettings

SIGNATURE_HEADER = "Closedloop-Signature"
SIGNATURE_DESCRIPTION = (
    "Required when the channel has a secret (`INGEST_CHANNEL_SECRETS`): `t=<unix time>,v1=<hex>` where "
    "`v1 = HMAC-SHA256(secret, \"<t>.<raw body>\")`; `t` must be within 5 minutes of the server's clock."
)
ChannelName = Literal["email", "app_review", "chat", "survey"]


# --- signatures ---------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value a sender puts in `Closedloop-Signature`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _bad_signature(detail: str) -> ProblemError:
    return ProblemError(401, "Invalid signature", detail, slug="invalid-signature",
                        errors=[FieldError(field=f"header.{SIGNATURE_HEADER}", message=detail)],
                        headers={"WWW-Authenticate": "Signature"})


def verify_signature(secret: str, header: str | None, body: bytes, tolerance_seconds: int) -> None:
    if not header:
        raise _bad_signature(f"this channel requires the {SIGNATURE_HEADER} header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise _bad_signature("expected t=<unix time>,v1=<hex>") from None
    if abs(time.time() - timestamp) > tolerance_seconds:
        raise _bad_signature("the timestamp is too old or in the future")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", [])):
        raise _bad_signature("the signature does not match the body")


# --- the standard record ------------------------------------------------------------------------


def to_record(data: dict[str, Any], fields: dict[str, str]) -> FeedbackIn:
    """Build the standard record; a validation error names the field of the channel's own payload
    (`fields` maps standard field → channel field, e.g. {"text": "body.comment"})."""
    try:
        return FeedbackIn.model_validate(data)
    except ValidationError as exc:
        errors = []
        for error in exc.errors():
            loc = [str(part) for part in error["loc"]]
            head = fields.get(loc[0], "body." + loc[0]) if loc else "body"
            errors.append(FieldError(field=".".join([head, *loc[1:]]),
                                     message=error["msg"].removeprefix("Value error, ")))
        detail = "; ".join(f"{error.field}: {error.message}" for error in errors[:5])
        raise ProblemError(422, "Request validation failed", detail, slug="validation-error",
                           errors=errors) from None


# --- e-mail -------------------------------------------------------------------------------------


_BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr", "table"})


_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base", "source"})
_QUOTE_IDS = ("gmail_quote", "divrplyfwdmsg", "appendonsend", "moz-cite-prefix", "yahoo_quoted")


class _HtmlText(HTMLParser):
    """Visible text of an HTML mail, without scripts, styles and quoted earlier messages."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._open: list[tuple[str, bool]] = []  # (tag, hides its content)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")
        if tag in _VOID:
            return
        marks = " ".join(value or "" for name, value in attrs if name in ("class", "id")).lower()
        hides = tag in ("script", "style", "head", "blockquote") or any(mark in marks for mark in _QUOTE_IDS)
        self._open.append((tag, hides))

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")
        if any(name == tag for name, _ in self._open):  # tolerate unclosed tags inside
            while self._open and self._open.pop()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        if not any(hides for _, hides in self._open):
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return "\n".join(line.strip() for line in "".join(parser.parts).split("\n"))


class ParsedEmail(BaseModel):
    sender: str | None
    sender_name: str | None
    subject: str | None
    text: str
    message_id: str | None
    thread_id: str | None
    language: str | None
    to: list[str]
    cc: list[str] = []
    in_reply_to: list[str] = []
    references: list[str] = []


def _message_ids(value: str | None) -> list[str]:
    return re.findall(r"<[^<>\s]+>", value or "")


def parse_email(raw: bytes) -> ParsedEmail:
    """Subject, sender, thread and body text of a raw MIME message: the text/plain part, or the
    text of the HTML part when there is no plain one."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    text = ""
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        try:
            content = body.get_content()
        except (LookupError, UnicodeError):
            payload = body.get_payload(decode=True) or b""
            content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else str(payload)
        text = html_to_text(content) if body.get_content_type() == "text/html" else content
    senders = getaddresses([str(message.get("From", ""))])
    sender_name, sender = senders[0] if senders else ("", "")
    message_ids = _message_ids(message.get("Message-ID"))
    # The thread is named by its first message: the first of References, else the parent, else this one.
    thread = (_message_ids(message.get("References")) or _message_ids(message.get("In-Reply-To")) or message_ids)
    language = str(message.get("Content-Language", "")).split(",")[0].strip() or None
    return ParsedEmail(
        sender=sender.strip().lower() or None, sender_name=sender_name.strip() or None,
        subject=str(message.get("Subject")) if message.get("Subject") is not None else None, text=text,
        message_id=message_ids[0] if message_ids else None, thread_id=thread[0] if thread else None,
        language=language if language and re.match(LANGUAGE_TAG, language) else None,
        to=[address for _, address in getaddresses([str(message.get("To", ""))]) if address],
        cc=[address for _, address in getaddresses([str(message.get("Cc", ""))]) if address],
        in_reply_to=_message_ids(message.get("In-Reply-To")), references=_message_ids(message.get("References")),
    )


def email_record(parsed: ParsedEmail, customer_id: str, tier: str | None) -> FeedbackIn:
    if not parsed.sender or "@" not in parsed.sender:
        raise field_problem("body.headers.From", "no sender address")
    if not parsed.text.strip():
        raise field_problem("body.text", "the message has no text or HTML part")
    return to_record({
        "channel": "email", "text": parsed.text, "subject": parsed.subject,
        "customer": {"id": customer_id, "email": parsed.sender, "name": parsed.sender_name, "tier": tier},
        "external_id": parsed.message_id[:200] if parsed.message_id else None, "thread_id": parsed.thread_id,
        "language": parsed.language,
        # The threading headers: ingest.replies joins an answer to its ticket by them.
        "metadata": {"to": parsed.to, "message_id": parsed.message_id,
                     **({"cc": parsed.cc} if parsed.cc else {}),
                     **({"in_reply_to": parsed.in_reply_to} if parsed.in_reply_to else {}),
                     **({"references": parsed.references} if parsed.references else {})},
    }, {"subject": "body.headers.Subject", "customer": "body.headers.From", "external_id": "body.headers.Message-ID",
        "thread_id": "body.headers.References"})


async def accept_email(session: AsyncSession, parsed: ParsedEmail, tier: str | None, *,
                       idempotency_key: str | None, settings: IngestSettings) -> Accepted:
    """The message as one feedback item. The sender is matched to a customer profile by e-mail address
    (the latest updated), in the transaction that stores the item; without one the address is the
    customer id."""

    async def record(session: AsyncSession) -> FeedbackIn:
        customer_id = parsed.sender or ""
        if parsed.sender:
            known = await session.scalar(select(Customer.id).where(func.lower(Customer.email) == parsed.sender)
                                         .order_by(Customer.updated_at.desc()).limit(1))
            customer_id = known or parsed.sender
        return email_record(parsed, customer_id[:200], tier)

    return await accept_record(session, record, idempotency_key=idempotency_key, settings=settings)

"""How each channel sends one rendered delivery: signed webhook POST, Slack-compatible incoming
webhook, or an e-mail over SMTP. Senders never touch the database; they report a `SendResult`."""

import email.policy
import json
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib
import httpx

from closedloop.outbound import OutboundPolicy, UnsafeTarget
from notify import signing
from notify.retry import is_retryable, parse_retry_after
from notify.settings import NotifySettings

CHANNELS = ("webhook", "email", "slack")
# Lines up to RFC 5322's 998 characters: with the default 78, a long In-Reply-To or References (one
# Message-ID has no space to fold at) would be written as an RFC 2047 encoded word, which mail clients
# do not match against their Message-IDs — the thread would break.
EMAIL_POLICY = email.policy.default.clone(max_line_length=998)


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: int | None
    error: str | None
    retry_after: float | None = None
    # None: decide from the HTTP status (network errors, 408, 429, 5xx retry). SMTP sets it itself.
    retryable: bool | None = None

    @property
    def should_retry(self) -> bool:
        return self.retryable if self.retryable is not None else is_retryable(self.status_code)


@dataclass(frozen=True)
class Outgoing:
    """What the dispatcher leased: one delivery and what is needed to send it."""

    id: str
    channel: str
    target: str
    payload: str
    event_type: str
    secret: str | None = None
    circuit_key: str = ""


def email_payload(subject: str, text: str, html: str | None, headers: dict[str, str] | None = None) -> str:
    """`headers`: Message-ID, In-Reply-To, References and Reply-To of a customer e-mail (see notify.threads)."""
    content: dict[str, object] = {"subject": subject, "text": text, "html": html}
    if headers:
        content["headers"] = headers
    return json.dumps(content, ensure_ascii=False)


def slack_payload(text: str) -> str:
    """Slack's incoming-webhook shape: `text` is the notification fallback, `blocks` the layout."""
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": part[:3000]}}
              for part in text.strip().split("\n\n") if part.strip()][:50]
    return json.dumps({"text": text, "blocks": blocks}, ensure_ascii=False)


async def post_json(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str],
                    policy: OutboundPolicy | None = None) -> SendResult:
    extensions = {}
    if policy is not None:
        # Resolved and checked now, and connected to the checked address (DNS rebinding).
        try:
            pinned = await policy.pin(url)
        except UnsafeTarget as exc:
            return SendResult(False, None, f"refused: {exc}"[:1000], retryable=False)
        except OSError as exc:
            return SendResult(False, None, str(exc)[:1000], retryable=True)
        url, headers = pinned.url, {**headers, "Host": pinned.host_header}
        if pinned.sni_hostname:
            extensions["sni_hostname"] = pinned.sni_hostname
    try:
        response = await client.post(url, content=body, headers={"Content-Type": "application/json", **headers},
                                     extensions=extensions)
    except httpx.HTTPError as exc:
        return SendResult(False, None, f"{type(exc).__name__}: {exc}"[:1000])
    if 200 <= response.status_code < 300:
        return SendResult(True, response.status_code, None)
    return SendResult(False, response.status_code, f"HTTP {response.status_code}: {response.text[:500]}",
                      parse_retry_after(response.headers.get("Retry-After")))


class Senders:
    def __init__(self, settings: NotifySettings, timeout: float | None = None, max_connections: int = 100) -> None:
        self.settings = settings
        # Redirects are never followed: a redirect could point anywhere, past the address check.
        # Connections are kept alive and reused, as many as the dispatcher has sends in flight.
        self.client = httpx.AsyncClient(timeout=timeout or settings.webhook_timeout_seconds,
                                        follow_redirects=False, headers={"User-Agent": "Closedloop-Webhooks/1"},
                                        limits=httpx.Limits(max_connections=max_connections,
                                                            max_keepalive_connections=max_connections))
        self.policy = OutboundPolicy.from_settings(settings)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(self, item: Outgoing) -> SendResult:
        if item.channel == "email":
            return await self.send_email(item)
        if item.channel == "slack":
            if not item.target:
                return SendResult(False, None, "no Slack hook of this name any more (its subscription was removed)",
                                  retryable=False)
            return await post_json(self.client, item.target, item.payload.encode(), {}, self.policy)
        return await self.send_webhook(item)

    async def send_webhook(self, item: Outgoing) -> SendResult:
        if item.secret is None:  # sealed under a key no longer in NOTIFY_SECRET_KEYS: never send it unsigned
            return SendResult(False, None, "the endpoint's signing secret cannot be opened (NOTIFY_SECRET_KEYS)",
                              retryable=True)
        body = item.payload.encode()
        return await post_json(self.client, item.target, body, {
            signing.HEADER: signing.sign(item.secret, body),
            "Closedloop-Delivery-Id": item.id,
            "Closedloop-Event-Type": item.event_type,
        }, self.policy)

    def email_message(self, item: Outgoing) -> EmailMessage:
        content = json.loads(item.payload)
        message = EmailMessage(policy=EMAIL_POLICY)
        message["From"] = self.settings.smtp_from
        message["To"] = item.target
        message["Subject"] = content["subject"]
        message["Date"] = formatdate(localtime=False)
        headers = content.get("headers") or {}
        message["Message-ID"] = headers.get("Message-ID") or make_msgid(idstring=item.id.replace("-", ""),
                                                                         domain="closedloop")
        for name in ("In-Reply-To", "References", "Reply-To"):
            if headers.get(name):
                message[name] = headers[name]
        message["Closedloop-Delivery-Id"] = item.id
        message["Closedloop-Event-Type"] = item.event_type
        message.set_content(content["text"])
        if content.get("html"):
            message.add_alternative(content["html"], subtype="html")
        return message

    def email_bytes(self, item: Outgoing) -> bytes:
        """The message as sent. Flattened here, not by aiosmtplib, whose SMTP policy folds at 78
        characters and would encode a long In-Reply-To (see EMAIL_POLICY)."""
        return self.email_message(item).as_bytes(policy=EMAIL_POLICY.clone(linesep="\r\n"))

    async def send_email(self, item: Outgoing) -> SendResult:
        settings = self.settings
        sender = parseaddr(settings.smtp_from)[1] or settings.smtp_from
        try:
            await aiosmtplib.send(
                self.email_bytes(item), sender=sender, recipients=[item.target],
                hostname=settings.smtp_host, port=settings.smtp_port,
                use_tls=settings.smtp_security == "tls", start_tls=settings.smtp_security == "starttls",
                username=settings.smtp_username or None,
                password=settings.smtp_password.get_secret_value() or None,
                timeout=settings.smtp_timeout_seconds, cert_bundle=settings.smtp_ca_file or None,
            )
        except aiosmtplib.SMTPResponseException as exc:
            # 4xx replies are temporary (greylisting, mailbox busy); 5xx are permanent.
            return SendResult(False, exc.code, f"SMTP {exc.code}: {exc.message}"[:1000], retryable=exc.code < 500)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [error.code for error in exc.recipients]
            return SendResult(False, codes[0] if codes else None, f"SMTP recipients refused: {exc}"[:1000],
                              retryable=all(code < 500 for code in codes))
        except (aiosmtplib.SMTPException, OSError) as exc:
            return SendResult(False, None, f"{type(exc).__name__}: {exc}"[:1000], retryable=True)
        return SendResult(True, 250, None)

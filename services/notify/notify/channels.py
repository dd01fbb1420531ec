"""How each channel sends one rendered delivery: signed webhook POST, Slack-compatible incoming
webhook, or an e-mail over SMTP. Senders never touch the database; they report a `SendResult`."""

import email.policy
import json
import socket
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from ipaddress import ip_address
from urllib.parse import urlsplit

import aiohttp
import aiosmtplib
from aiohttp.abc import AbstractResolver, ResolveResult

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
    # What the outcome events (notification.delivered.v1, ...) say about it.
    source_event_id: str = ""
    ticket_id: str | None = None
    audience: str | None = None
    endpoint_id: str | None = None
    # The target as the delivery records it, for the outcome events: a Slack hook's name, never its URL.
    recorded_target: str | None = None


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


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver for outbound targets: a name is resolved, and every address it resolves to
    checked against the policy (closedloop.outbound), whenever a new connection is opened. The connection
    goes to a checked address and keeps the name for Host and TLS (SNI, certificate), so a name that
    points inside by now (DNS rebinding) is never connected to; a kept-alive connection was checked when
    it was opened. aiohttp skips resolvers for address literals: `Senders.refusal` checks those."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        try:
            addresses = await self.policy.resolve(host, port)
        except (OSError, TimeoutError) as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise OSError(f"{host} has no address")
        for address in addresses:
            self.policy.check_address(address, host)  # UnsafeTarget: not an OSError, aiohttp passes it on
        return [{"hostname": host, "host": str(address), "port": port,
                 "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET, "proto": 0,
                 "flags": socket.AI_NUMERICHOST} for address in addresses]

    async def close(self) -> None:
        pass


async def post_json(client: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
    try:
        async with client.post(url, data=body, headers={"Content-Type": "application/json", **headers},
                               allow_redirects=False) as response:
            if 200 <= response.status < 300:
                await response.read()  # to the end, so the connection goes back to the pool
                return SendResult(True, response.status, None)
            text = (await response.read())[:2000].decode("utf-8", "replace")
            return SendResult(False, response.status, f"HTTP {response.status}: {text[:500]}",
                              parse_retry_after(response.headers.get("Retry-After")))
    except UnsafeTarget as exc:  # from CheckedResolver: refused for good, not retried
        return SendResult(False, None, f"refused: {exc}"[:1000], retryable=False)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return SendResult(False, None, f"{type(exc).__name__}: {exc}"[:1000])
    except ValueError as exc:  # a URL aiohttp cannot use (e.g. a legacy numeric IPv4 form): not retried
        return SendResult(False, None, f"refused: {type(exc).__name__}: {exc}"[:1000], retryable=False)


class Senders:
    """The channels' senders. Webhooks and Slack hooks go through one aiohttp session: its connections are
    kept alive and reused (no TCP or TLS set-up per delivery), at most `max_connections` at once (the
    dispatcher bounds the sends per target). aiohttp rather than httpx: a POST to a local receiver costs
    ~0.2 ms of CPU with it against ~3-5 ms with httpx (most of that in httpcore's per-request bookkeeping),
    and notify's throughput is bounded by CPU (issue 14)."""

    def __init__(self, settings: NotifySettings, timeout: float | None = None, max_connections: int = 100) -> None:
        self.settings = settings
        self.timeout = timeout or settings.webhook_timeout_seconds
        self.max_connections = max_connections
        self.policy = OutboundPolicy.from_settings(settings)
        self._client: aiohttp.ClientSession | None = None
        self._refusals: dict[str, str | None] = {}  # URL -> why it is refused (address literals), None: not

    @property
    def client(self) -> aiohttp.ClientSession:
        if self._client is None or self._client.closed:  # created in the running event loop, on first use
            self._client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0,
                                               resolver=CheckedResolver(self.policy), ttl_dns_cache=10),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "Closedloop-Webhooks/1"},
                trust_env=False,  # never a proxy from the environment: the address check is about our target
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    def refusal(self, url: str) -> str | None:
        """Why a target given as an address literal may not be called (names: CheckedResolver), or None."""
        if url not in self._refusals:
            reason = None
            try:
                host = urlsplit(url).hostname or ""
                address = ip_address(host.split("%", 1)[0])
            except ValueError:
                address = None  # a name (or no host at all: aiohttp says why)
            if address is not None:
                try:
                    self.policy.check_address(address, host)
                except UnsafeTarget as exc:
                    reason = f"refused: {exc}"[:1000]
            if len(self._refusals) > 10_000:
                self._refusals.clear()
            self._refusals[url] = reason
        return self._refusals[url]

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        refused = self.refusal(url)
        if refused is not None:
            return SendResult(False, None, refused, retryable=False)
        return await post_json(self.client, url, body, headers)

    async def send(self, item: Outgoing) -> SendResult:
        if item.channel == "email":
            return await self.send_email(item)
        if item.channel == "slack":
            if not item.target:
                return SendResult(False, None, "no Slack hook of this name any more (its subscription was removed)",
                                  retryable=False)
            return await self.post(item.target, item.payload.encode(), {})
        return await self.send_webhook(item)

    async def send_webhook(self, item: Outgoing) -> SendResult:
        if item.secret is None:  # sealed under a key no longer in NOTIFY_SECRET_KEYS: never send it unsigned
            return SendResult(False, None, "the endpoint's signing secret cannot be opened (NOTIFY_SECRET_KEYS)",
                              retryable=True)
        body = item.payload.encode()
        return await self.post(item.target, body, {
            signing.HEADER: signing.sign(item.secret, body),
            "Closedloop-Delivery-Id": item.id,
            "Closedloop-Event-Type": item.event_type,
        })

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

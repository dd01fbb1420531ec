from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from closedloop.config import ServiceSettings


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    service_name: str = "notify"
    # Events per consumer transaction: planning a batch of 128 costs little more than one of 16, and per
    # webhook the transaction was a large part of notify's CPU (issue 14). Latency is unchanged: a fetch
    # takes what is there, it does not wait for a full batch.
    consumer_batch_size: int = 128
    database_url: str = "sqlite+aiosqlite:///var/notify.db"
    # Retention: delivered deliveries (their payloads carry ticket texts) are deleted after this many days.
    delivered_retention_days: float = 90.0
    # Webhook endpoints created at start-up if missing (comma-separated URLs), e.g. for the demo.
    seed_webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_timeout_seconds: float = 10.0
    webhook_max_attempts: int = 6
    webhook_backoff_base_seconds: float = 2.0
    webhook_backoff_max_seconds: float = 600.0
    # The dispatcher wakes when deliveries are planned; the poll is the safety net (and times retries).
    dispatch_poll_seconds: float = 0.5
    # Sends in flight at once, and at most this many to one target (webhook endpoint, Slack hook, SMTP
    # server), so one slow receiver cannot hold every slot and no receiver gets more than it should bear.
    dispatch_concurrency: int = 64
    dispatch_per_target_concurrency: int = 16
    # Networks outbound targets (webhooks, Slack hooks) may be in besides public addresses, comma-separated
    # CIDRs (e.g. 10.20.0.0/16 for an in-house receiver). Unset: loopback in development mode (the local
    # demo), nothing in production. Loopback, link-local (cloud metadata) and private addresses are
    # refused otherwise, at registration and at every delivery (closedloop.outbound).
    outbound_allowed_networks: Annotated[list[str] | None, NoDecode] = None

    # Circuit breaker per target (webhook endpoint, Slack URL, SMTP server): open after this many
    # consecutive failures, stay open for the cool-down, then let one probe through (half-open).
    circuit_failure_threshold: int = 5
    circuit_cooldown_seconds: float = 60.0

    # E-mail over SMTP. With no host the e-mail channel is off: e-mails are recorded as suppressed.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "Closedloop <no-reply@closedloop.local>"
    smtp_timeout_seconds: float = 10.0
    # CA bundle (PEM) to trust for STARTTLS/TLS, e.g. a private mail relay's CA; the system store when empty.
    smtp_ca_file: str = ""

    # Who gets what by default (on top of the subscriptions made over the API).
    default_notifications: bool = True
    # Customers' answers come back to this address: Reply-To is "<local>+<ticket>@<domain>" (route the
    # domain's mail to ingest's /v1/channels/email); its domain also names our Message-IDs. Links in
    # messages come from the ticket events (ticketing's TICKETING_PUBLIC_BASE_URL), never from here.
    reply_address: str = "support@closedloop.local"
    # Operations: a Slack-compatible incoming webhook and/or an e-mail address for alert.raised.v1.
    ops_slack_webhook_url: str = ""
    ops_email: str = ""
    # Team leads by team (JSON in the environment: {"payments": "lead@example.com"}), used when the
    # ticket event names no team lead with an e-mail address.
    team_lead_emails: dict[str, str] = Field(default_factory=dict)

    # Templates: the language used when there is none in the recipient's language.
    fallback_language: str = "en"

    # No spam (e-mail and Slack; webhooks are machine-to-machine and exempt).
    frequency_cap_per_hour: int = 10
    dedupe_window_seconds: float = 3600.0
    quiet_hours_start: str = "21:00"  # local time of the recipient; equal start and end turn it off
    quiet_hours_end: str = "08:00"
    default_timezone: str = "UTC"

    @field_validator("outbound_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("seed_webhook_urls", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @field_validator("quiet_hours_start", "quiet_hours_end")
    @classmethod
    def _clock(cls, value: str) -> str:
        hours, _, minutes = value.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
            raise ValueError("expected HH:MM")
        return value

"""Settings every service shares. Each service subclasses `ServiceSettings` with its own env prefix
(`INGEST_`, `CLASSIFY_`, ...), so one process environment can configure all four without clashes."""

import os
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_API_KEY = "dev-key-change-me"
# How long the streams keep a message, unless STREAM_MAX_AGE_DAYS says otherwise (ServiceSettings). The one
# default, so a tool that creates the streams without the settings does not change what the services set.
DEFAULT_STREAM_MAX_AGE_DAYS = 30.0


def _default_environment() -> Literal["development", "production"]:
    # One variable for every service of a local run or a test run (`make run`, the test fixtures set it);
    # `<PREFIX>ENVIRONMENT` still wins for one service. Anything else is production.
    return "development" if os.environ.get("CLOSEDLOOP_ENVIRONMENT") == "development" else "production"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    service_name: str = "closedloop"
    database_url: str = "sqlite+aiosqlite:///var/closedloop.db"
    nats_url: str = "nats://127.0.0.1:14222"
    # NATS credentials (a user of the server's CLOSEDLOOP account) and the CA that signed its TLS
    # certificate; empty for the embedded server of `make run` and the tests. See deploy/k8s/README.md.
    nats_user: str = ""
    nats_password: SecretStr = SecretStr("")
    nats_tls_ca_file: str = ""
    # JetStream replicas for the streams this service creates (3 on a 3-node cluster).
    stream_replicas: int = 1
    # How long the streams keep a message (with its texts) after it was published, 0 = forever. Bounds
    # how long an erased customer's texts stay in the broker, and what an insights rebuild can replay.
    # Every service creates the streams, so every service must be given the same value.
    stream_max_age_days: float = DEFAULT_STREAM_MAX_AGE_DAYS
    # "development" accepts the well-known development key; "production" (the default) refuses it.
    environment: Literal["development", "production"] = Field(default_factory=_default_environment)
    # Admin keys from settings, for bootstrap and break-glass use; comma-separated in the environment
    # (`INGEST_API_KEYS=key1,key2`, two keys allow rotation). Day-to-day keys come from the identity service.
    api_keys: Annotated[list[str], NoDecode] = [DEV_API_KEY]
    # Keys that may read /metrics and nothing else (Prometheus' scrape key), comma-separated; an identity
    # API key with the scope `metrics:read` works too, and so does any admin credential.
    metrics_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Fernet keys that seal the secrets a service stores (closedloop.secretbox), comma-separated, the
    # first seals and all open (rotation). Empty: the public development key in development mode,
    # refused in production by the services that store secrets (identity, notify).
    secret_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # People's tokens (from the identity service): who issues them, for whom, and clock skew allowed.
    token_issuer: str = "closedloop-identity"
    token_audience: str = "closedloop"
    token_leeway_seconds: int = 30
    # How often the copy of API keys and signing keys is checked against the identity bucket.
    identity_refresh_seconds: float = 1.0
    # Rate limits of the routes that take them (closedloop.ratelimit): token buckets per API key or
    # person and per client IP, in this process (per replica). X-Forwarded-For is believed only from
    # these proxies (CIDRs, comma-separated; e.g. the ingress controller's pod network).
    rate_limit_enabled: bool = True
    rate_limit_key_per_minute: float = 1200.0
    rate_limit_key_burst: int = 200
    rate_limit_ip_per_minute: float = 1200.0
    rate_limit_ip_burst: int = 200
    rate_limit_trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: str = "INFO"
    log_json: bool = True
    # OTLP/HTTP endpoint such as http://otel-collector:4318; tracing stays in-process when empty.
    otlp_endpoint: str = ""
    run_migrations: bool = True
    # SQLite: how long a write waits for another process's lock; any database: how long a request waits
    # for a pooled connection. Past either the answer is 503 with Retry-After (closedloop.api).
    database_busy_timeout_seconds: float = 30.0
    database_pool_timeout_seconds: float = 60.0

    outbox_poll_seconds: float = 0.5
    outbox_batch_size: int = 100
    consumer_batch_size: int = 16
    consumer_fetch_timeout_seconds: float = 1.0
    consumer_ack_wait_seconds: float = 60.0
    consumer_max_deliver: int = 5
    consumer_backoff_seconds: Annotated[list[float], NoDecode] = [1.0, 5.0, 15.0, 30.0]
    max_body_bytes: int = 1_000_000
    # Retention (closedloop.retention): how often the job runs, and how long rows are kept (0 = forever).
    retention_interval_seconds: float = 3600.0
    outbox_retention_days: float = 7.0
    inbox_retention_days: float = 30.0

    @field_validator("api_keys", "metrics_keys", "secret_keys", "rate_limit_trusted_proxies", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("consumer_backoff_seconds", mode="before")
    @classmethod
    def _split_floats(cls, value: object) -> object:
        if isinstance(value, str):
            return [float(part) for part in value.split(",") if part.strip()]
        return value

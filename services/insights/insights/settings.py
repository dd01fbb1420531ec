from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from closedloop.config import ServiceSettings


class InsightsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INSIGHTS_", extra="ignore")

    service_name: str = "insights"
    database_url: str = "sqlite+aiosqlite:///var/insights.db"
    # A read model catches up in large batches: one commit folds hundreds of events into few upserts.
    consumer_batch_size: int = 512

    # How often the analysis worker looks for anomalies, churn risk and opportunities, and whether the
    # weekly report is due (0 turns the worker off; the API still runs every analysis on demand).
    analysis_interval_seconds: float = 300.0
    # Anomalies: an hour-of-week seasonal baseline (STL, period 168 hours) per series; a day is anomalous
    # when its count is `anomaly_z` standard deviations above the baseline AND at least
    # `anomaly_min_increase` above it relatively AND `anomaly_min_excess` items above it.
    anomaly_z: float = Field(default=4.0, gt=0)
    anomaly_min_increase: float = Field(default=0.3, ge=0)
    anomaly_min_excess: float = Field(default=10, ge=0)
    anomaly_history_days: int = Field(default=56, ge=14)  # weeks of hourly history each baseline is fitted on
    # Churn risk: a customer worth at least this much with this many negative contacts in the window,
    # or an SLA breach on a ticket still unresolved.
    churn_min_value: float = 10_000.0
    churn_negative_contacts: int = 3
    churn_window_days: int = 30
    # Opportunities: feature requests and usability complaints clustered by wording.
    opportunity_categories: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["product/feature_request", "product/usability"])
    opportunity_min_mentions: int = 5
    # Agent-hours of a forecast: measured replies per ticket x this many minutes per reply.
    minutes_per_reply: float = 6.0
    # Weekly report (Mondays, for the week before): SMTP like notify's; empty host = not sent.
    report_weekday: int = Field(default=0, ge=0, le=6)
    report_hour_utc: int = Field(default=7, ge=0, le=23)
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "insights@closedloop.local"

    @field_validator("opportunity_categories", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

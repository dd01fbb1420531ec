"""Settings an operator can change at run time (PUT /v1/config): anomaly sensitivity and churn rules.
The environment gives the defaults; what was set over the API is stored and wins."""

from datetime import UTC, datetime

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from insights.anomalies import Sensitivity
from insights.models import InsightsConfig
from insights.settings import InsightsSettings

CONFIG_KEY = "analysis"


class AnalysisConfig(BaseModel):
    anomaly_z: float = Field(gt=0, le=50, description="Standard deviations above the seasonal baseline.")
    anomaly_min_increase: float = Field(ge=0, le=100, description="Relative increase needed, e.g. 0.3 = +30%.")
    anomaly_min_excess: float = Field(ge=0, description="Items above the baseline needed.")
    anomaly_history_days: int = Field(ge=14, le=365, description="Days of hourly history a baseline is fitted on.")
    churn_min_value: float = Field(ge=0, description="Customer value from which churn risk is watched.")
    churn_negative_contacts: int = Field(ge=1, description="Negative contacts within the window that flag it.")
    churn_window_days: int = Field(ge=1, le=365)

    def sensitivity(self) -> Sensitivity:
        return Sensitivity(self.anomaly_z, self.anomaly_min_increase, self.anomaly_min_excess,
                           self.anomaly_history_days)


class AnalysisConfigIn(BaseModel):
    model_config = {"extra": "forbid"}

    anomaly_z: float | None = Field(default=None, gt=0, le=50)
    anomaly_min_increase: float | None = Field(default=None, ge=0, le=100)
    anomaly_min_excess: float | None = Field(default=None, ge=0)
    anomaly_history_days: int | None = Field(default=None, ge=14, le=365)
    churn_min_value: float | None = Field(default=None, ge=0)
    churn_negative_contacts: int | None = Field(default=None, ge=1)
    churn_window_days: int | None = Field(default=None, ge=1, le=365)


def defaults(settings: InsightsSettings) -> AnalysisConfig:
    return AnalysisConfig(**{name: getattr(settings, name) for name in AnalysisConfig.model_fields})


async def current_config(session: AsyncSession, settings: InsightsSettings) -> AnalysisConfig:
    stored = await session.get(InsightsConfig, CONFIG_KEY)
    base = defaults(settings).model_dump()
    if stored is not None:
        base.update(stored.value)
    return AnalysisConfig(**base)


async def update_config(session: AsyncSession, settings: InsightsSettings, update: AnalysisConfigIn
                        ) -> AnalysisConfig:
    stored = await session.get(InsightsConfig, CONFIG_KEY)
    values = dict(stored.value) if stored is not None else {}
    values.update(update.model_dump(exclude_none=True))
    merged = AnalysisConfig(**{**defaults(settings).model_dump(), **values})
    if stored is None:
        session.add(InsightsConfig(key=CONFIG_KEY, value=values, updated_at=datetime.now(UTC)))
    else:
        stored.value, stored.updated_at = values, datetime.now(UTC)
    return merged

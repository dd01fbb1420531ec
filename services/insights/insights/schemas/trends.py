"""Bodies of the trends routes."""

from datetime import datetime

from pydantic import BaseModel, Field


class TrendPoint(BaseModel):
    period: datetime
    group: str
    metric: str
    value: float | None = Field(description="The metric; null when its denominator is 0.")
    numerator: float
    denominator: float | None


class TrendSeries(BaseModel):
    metrics: list[str]
    interval: str
    start: datetime
    end: datetime
    group_by: str | None
    filters: dict[str, str]
    points: list[TrendPoint]


class MetricInfo(BaseModel):
    name: str
    description: str
    ratio: bool


class DimensionValue(BaseModel):
    value: str
    items: float


class FunnelStep(BaseModel):
    step: str
    count: float
    of_first: float | None
    drop_off: float | None = Field(description="1 - this step / the step before.")

"""Bodies of the analyses routes."""

from datetime import datetime

from pydantic import BaseModel, Field

from closedloop.pagination import Page


class AnomalyPublic(BaseModel):
    key: str
    dimension: str
    value: str
    window_start: datetime
    window_end: datetime
    observed: dict[str, float]
    expected: dict[str, float]
    z: float | dict[str, float]
    raised_at: datetime | None = None


class AnomalyPage(Page[AnomalyPublic]):
    pass


# One scan judges every day of its range in one request: a range of centuries (a fuzzer sent `end` in
# 2620) kept the service busy for minutes. A year covers any real backfill; longer ones go in pieces.
MAX_SCAN_DAYS = 366


class AnomalyScanIn(BaseModel):
    model_config = {"extra": "forbid"}

    start: datetime | None = Field(default=None, description="First day scanned (default: yesterday, as of the data).")
    end: datetime | None = Field(default=None, description=f"End of the scan (default: the latest data); at most "
                                                            f"{MAX_SCAN_DAYS} days after `start`.")


class AnomalyScanResult(BaseModel):
    found: list[AnomalyPublic]
    raised: list[str] = Field(description="Keys raised by this scan (the others had been raised before).")

"""Business-hours arithmetic: how far a number of working minutes reaches, and how many working
minutes lie between two instants, in a time zone with weekly hours and holidays.

`None` as a calendar means 24/7 (plain calendar time). All arithmetic is done in UTC and only the
day boundaries are taken in local time, so daylight-saving changes are handled by `zoneinfo`.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS_SCANNED = 3 * 366

HourMinute = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$", examples=["09:00"])]


class BusinessHours(BaseModel):
    """Working hours of a support team. Days not listed are closed; holidays are closed all day."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [{
        "timezone": "Europe/Berlin",
        "weekly": {day: ["09:00", "17:00"] for day in WEEKDAYS[:5]},
        "holidays": ["2026-12-25", "2026-12-26"],
    }]})

    timezone: str = Field(default="UTC", description="IANA time zone, e.g. `Europe/Berlin`.")
    weekly: dict[str, tuple[HourMinute, HourMinute]] = Field(
        default_factory=lambda: {day: ("09:00", "17:00") for day in WEEKDAYS[:5]},
        description="Opening and closing time per weekday (`mon` … `sun`), local time.")
    holidays: list[date] = Field(default_factory=list, description="Closed dates (local).")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _valid_days(self) -> "BusinessHours":
        for day, (start, end) in self.weekly.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use one of {', '.join(WEEKDAYS)}")
            if start >= end:
                raise ValueError(f"{day}: opening time {start} must be before closing time {end}")
        if not self.weekly:
            raise ValueError("at least one working day is needed")
        return self

    def calendar(self) -> "Calendar":
        return Calendar.from_spec(self)


def _parse(hm: str) -> time | None:
    """`24:00` means midnight at the end of the day: returned as None."""
    if hm == "24:00":
        return None
    hours, minutes = hm.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class Calendar:
    zone: ZoneInfo
    weekly: dict[int, tuple[time, time | None]]
    holidays: frozenset[date]

    @classmethod
    def from_spec(cls, spec: BusinessHours) -> "Calendar":
        weekly = {}
        for day, (start, end) in spec.weekly.items():
            opening = _parse(start)
            assert opening is not None
            weekly[WEEKDAYS.index(day)] = (opening, _parse(end))
        return cls(ZoneInfo(spec.timezone), weekly, frozenset(spec.holidays))

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        """The open interval of a local date, in UTC; None when closed."""
        if day in self.holidays or day.weekday() not in self.weekly:
            return None
        start, end = self.weekly[day.weekday()]
        opening = datetime.combine(day, start, self.zone)
        closing = (datetime.combine(day + timedelta(days=1), time(0), self.zone) if end is None
                   else datetime.combine(day, end, self.zone))
        return opening.astimezone(UTC), closing.astimezone(UTC)

    def _windows_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        day = moment.astimezone(self.zone).date()
        for offset in range(MAX_DAYS_SCANNED):
            window = self._window(day + timedelta(days=offset))
            if window is not None:
                yield window
        raise ValueError("no working time within three years")

    def is_open(self, moment: datetime) -> bool:
        window = self._window(moment.astimezone(self.zone).date())
        return window is not None and window[0] <= moment < window[1]

    def add(self, start: datetime, minutes: float) -> datetime:
        """The instant at which `minutes` of working time after `start` have passed."""
        remaining = timedelta(minutes=minutes)
        cursor = start.astimezone(UTC)
        for opening, closing in self._windows_from(cursor):
            if closing <= cursor:
                continue
            cursor = max(cursor, opening)
            available = closing - cursor
            if remaining <= available:
                return cursor + remaining
            remaining -= available
        raise AssertionError("unreachable")

    def between(self, start: datetime, end: datetime) -> float:
        """Working minutes in [start, end)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return 0.0
        total = timedelta()
        for opening, closing in self._windows_from(start):
            if opening >= end:
                break
            overlap = min(closing, end) - max(opening, start)
            if overlap > timedelta():
                total += overlap
        return total.total_seconds() / 60


def add_working_minutes(calendar: Calendar | None, start: datetime, minutes: float) -> datetime:
    return start + timedelta(minutes=minutes) if calendar is None else calendar.add(start, minutes)


def working_minutes_between(calendar: Calendar | None, start: datetime, end: datetime) -> float:
    if calendar is None:
        return max((end - start).total_seconds() / 60, 0.0)
    return calendar.between(start, end)


def is_working_time(calendar: Calendar | None, moment: datetime) -> bool:
    return calendar is None or calendar.is_open(moment)

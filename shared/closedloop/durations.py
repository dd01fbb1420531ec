"""A duration as a customer reads it: '15 minutes', '2 hours', '3 días', '2 小时' — in the languages the
customer-facing texts ship in (notify's templates, ticketing's macros and pages), English otherwise."""

import math
from datetime import timedelta

# language -> (minute, hour, day), each (singular, plural).
_UNITS: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (("minute", "minutes"), ("hour", "hours"), ("day", "days")),
    "zh": (("分钟", "分钟"), ("小时", "小时"), ("天", "天")),
    "es": (("minuto", "minutos"), ("hora", "horas"), ("día", "días")),
    "pt": (("minuto", "minutos"), ("hora", "horas"), ("dia", "dias")),
    "de": (("Minute", "Minuten"), ("Stunde", "Stunden"), ("Tag", "Tage")),
}


def humanize(duration: timedelta, language: str | None) -> str:
    """Rounded up: minutes below 90 minutes, hours below 48 hours, days above."""
    base = (language or "en").strip().lower().replace("_", "-").split("-")[0]
    minutes_unit, hours_unit, days_unit = _UNITS.get(base, _UNITS["en"])
    minutes = max(1, math.ceil(duration.total_seconds() / 60))
    if minutes < 90:
        value, unit = minutes, minutes_unit
    elif minutes < 48 * 60:
        value, unit = math.ceil(minutes / 60), hours_unit
    else:
        value, unit = math.ceil(minutes / 1440), days_unit
    return f"{value} {unit[0] if value == 1 else unit[1]}"

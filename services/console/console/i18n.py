"""The UI's languages (a gettext catalogue per locale, compiled .mo files committed beside the .po)
and dates and durations in the user's own time zone (Babel's CLDR data).

The locale and zone of the request being rendered live in context variables, so templates and Python
code call the same `_()` without passing them around."""

from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale
from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
# Locale code → its own name (shown in the language picker in that language).
LOCALES = {"en": "English", "zh_Hans": "简体中文"}
DEFAULT_LOCALE = "en"

_catalogues: dict[str, NullTranslations] = {}
_locale: ContextVar[str] = ContextVar("console_locale", default=DEFAULT_LOCALE)
_zone: ContextVar[str] = ContextVar("console_zone", default="UTC")


def catalogue(locale: str) -> NullTranslations:
    if locale not in _catalogues:
        _catalogues[locale] = (NullTranslations() if locale == "en"
                               else Translations.load(str(TRANSLATIONS_DIR), [locale], domain="messages"))
    return _catalogues[locale]


def use(locale: str, zone: str) -> None:
    _locale.set(locale if locale in LOCALES else DEFAULT_LOCALE)
    _zone.set(zone if valid_zone(zone) else "UTC")


def current_locale() -> str:
    return _locale.get()


def html_lang() -> str:
    return current_locale().replace("_", "-")


def gettext(message: str, **values: object) -> str:
    text = catalogue(_locale.get()).gettext(message)
    return text % values if values else text


def ngettext(singular: str, plural: str, n: int, **values: object) -> str:
    text = catalogue(_locale.get()).ngettext(singular, plural, n)
    return text % {"num": n, **values}


_ = gettext


def valid_zone(zone: str) -> bool:
    try:
        ZoneInfo(zone)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


def zone_names() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


def _babel_locale() -> Locale:
    return Locale.parse(_locale.get())


def parse_time(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def datetime_format(value: str | datetime | None, fmt: str = "medium") -> str:
    moment = parse_time(value)
    if moment is None:
        return "—"
    return format_datetime(moment, format=fmt, tzinfo=ZoneInfo(_zone.get()), locale=_babel_locale())


def duration_format(minutes: float | None) -> str:
    if minutes is None:
        return "—"
    return format_timedelta(timedelta(minutes=minutes), threshold=1.5, locale=_babel_locale())


def relative_format(value: str | datetime | None) -> str:
    moment = parse_time(value)
    if moment is None:
        return "—"
    return format_timedelta(moment - datetime.now(UTC), add_direction=True, threshold=1.5, locale=_babel_locale())


def number_format(value: float | int | None) -> str:
    return "—" if value is None else format_decimal(value, locale=_babel_locale())


def percent_format(value: float | None) -> str:
    return "—" if value is None else format_percent(value, format="#,##0.0%", locale=_babel_locale())

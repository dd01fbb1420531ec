"""Field checks the request bodies share: e-mail addresses, http(s) URLs, time zones, language tags."""

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
LANGUAGE = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$"


def check_email(value: str) -> str:
    if not EMAIL.match(value):
        raise ValueError("not an e-mail address")
    return value


def check_http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("not an http(s) URL")
    return value


def check_timezone(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value

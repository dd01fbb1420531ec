"""Durations as customers read them, rounded up, in the languages the customer-facing texts ship in."""

from datetime import timedelta

from closedloop.durations import humanize


def test_minutes_hours_and_days_rounded_up_with_singular_and_plural():
    assert humanize(timedelta(seconds=20), "en") == "1 minute"
    assert humanize(timedelta(minutes=88, seconds=1), "en") == "89 minutes"
    assert humanize(timedelta(minutes=90), "en") == "2 hours"
    assert humanize(timedelta(hours=47, minutes=1), "en") == "48 hours"
    assert humanize(timedelta(hours=48), "en") == "2 days"


def test_the_customer_s_language_with_region_or_any_case_and_english_otherwise():
    assert humanize(timedelta(hours=2), "zh-CN") == "2 小时"
    assert humanize(timedelta(days=3), "ES") == "3 días"
    assert humanize(timedelta(minutes=1), "de_AT") == "1 Minute"
    assert humanize(timedelta(hours=1), "fr") == "60 minutes"
    assert humanize(timedelta(days=2, hours=1), None) == "3 days"

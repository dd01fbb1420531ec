"""Unit tests of webhook retry decisions: back-off, Retry-After, and delivery state transitions."""

from datetime import UTC, datetime, timedelta

import pytest

from notify.dispatcher import SendResult, record_attempt
from notify.models import Delivery
from notify.retry import RetryPolicy, is_retryable, parse_retry_after

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=4, base_seconds=2.0, max_seconds=20.0)


@pytest.mark.parametrize(("attempts", "low", "high"), [
    (1, 1.0, 2.0), (2, 2.0, 4.0), (3, 4.0, 8.0), (4, 8.0, 16.0), (5, 10.0, 20.0), (30, 10.0, 20.0),
])
def test_delay_is_exponential_with_jitter_and_capped(attempts, low, high):
    delays = [POLICY.delay(attempts) for _ in range(300)]
    assert all(low <= delay <= high for delay in delays), (min(delays), max(delays))
    assert max(delays) - min(delays) > (high - low) / 4, "no jitter"


def test_retry_after_is_honoured_as_a_minimum():
    assert all(POLICY.delay(1, retry_after=15.0) == 15.0 for _ in range(50))
    assert all(2.0 <= POLICY.delay(2, retry_after=0.5) <= 4.0 for _ in range(50))


def test_retry_after_is_capped_at_the_maximum():
    assert POLICY.delay(1, retry_after=86_400) == POLICY.max_seconds


@pytest.mark.parametrize(("status", "retryable"), [
    (None, True), (408, True), (429, True), (500, True), (502, True), (503, True), (599, True),
    (400, False), (401, False), (403, False), (404, False), (410, False), (422, False), (301, False),
])
def test_is_retryable(status, retryable):
    assert is_retryable(status) is retryable


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0),
    (" 7 ", 7.0),
    ("0", 0.0),
    ("Tue, 24 Nov 2026 12:01:30 GMT", 90.0),
    ("Tue, 24 Nov 2026 12:00:30 -0000", 30.0),  # "no zone information": still GMT for HTTP
    ("Tue, 24 Nov 2026 12:00:45", 45.0),
    ("Tue, 24 Nov 2026 11:00:00 GMT", 0.0),  # in the past: retry now
    (None, None),
    ("", None),
    ("soon", None),
    ("-5", None),
    ("1.5", None),
])
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


def pending(attempts: int = 0) -> Delivery:
    return Delivery(id="d-1", endpoint_id="e-1", source_event_id="ev-1", event_type="ticket.created.v1",
                    target="http://hooks.example/x", payload="{}", status="pending", attempts=attempts,
                    next_attempt_at=NOW - timedelta(seconds=1), leased_until=NOW + timedelta(minutes=2),
                    created_at=NOW - timedelta(minutes=1))


def test_success_delivers():
    delivery = pending()
    record_attempt(delivery, SendResult(True, 204, None), POLICY, NOW)
    assert (delivery.status, delivery.attempts, delivery.delivered_at) == ("delivered", 1, NOW)
    assert (delivery.last_status_code, delivery.last_error, delivery.leased_until) == (204, None, None)


@pytest.mark.parametrize("result", [
    SendResult(False, 500, "HTTP 500: boom"),
    SendResult(False, 429, "HTTP 429: slow down"),
    SendResult(False, None, "ConnectError: refused"),
], ids=["5xx", "429", "network"])
def test_retryable_failure_stays_pending_with_back_off(result):
    delivery = pending(attempts=1)
    record_attempt(delivery, result, POLICY, NOW)
    assert (delivery.status, delivery.attempts) == ("pending", 2)
    assert NOW + timedelta(seconds=2) <= delivery.next_attempt_at <= NOW + timedelta(seconds=4)
    assert (delivery.last_status_code, delivery.last_error) == (result.status_code, result.error)
    assert delivery.leased_until is None
    assert delivery.delivered_at is None


def test_retry_after_sets_the_next_attempt():
    delivery = pending()
    record_attempt(delivery, SendResult(False, 503, "HTTP 503", retry_after=15.0), POLICY, NOW)
    assert delivery.status == "pending"
    assert delivery.next_attempt_at == NOW + timedelta(seconds=15)


def test_last_retryable_attempt_fails_for_good():
    delivery = pending(attempts=POLICY.max_attempts - 1)
    record_attempt(delivery, SendResult(False, 500, "HTTP 500"), POLICY, NOW)
    assert (delivery.status, delivery.attempts) == ("failed", POLICY.max_attempts)
    assert delivery.leased_until is None


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_client_error_fails_at_once(status):
    delivery = pending()
    record_attempt(delivery, SendResult(False, status, f"HTTP {status}"), POLICY, NOW)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, status)
    assert delivery.delivered_at is None


def test_success_after_failures_keeps_counting_attempts():
    delivery = pending()
    record_attempt(delivery, SendResult(False, 500, "HTTP 500"), POLICY, NOW)
    record_attempt(delivery, SendResult(False, None, "ReadTimeout"), POLICY, NOW + timedelta(seconds=3))
    record_attempt(delivery, SendResult(True, 200, None), POLICY, NOW + timedelta(seconds=9))
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 3, None)
    assert delivery.delivered_at == NOW + timedelta(seconds=9)

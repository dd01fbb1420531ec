"""Unit tests of webhook signatures (HMAC-SHA256 over "<timestamp>.<body>")."""

import hashlib
import hmac
import time

import pytest

from notify import signing

SECRET = "s3cret-s3cret-s3cret"
BODY = b'{"id":"d-1","type":"ticket.created.v1","data":{"x":1}}'
NOW = 1_732_412_345


def test_signature_format_is_documented_hmac():
    header = signing.sign(SECRET, BODY, timestamp=NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"


def test_valid_signature_verifies():
    header = signing.sign(SECRET, BODY, timestamp=NOW)
    assert signing.verify(SECRET, BODY, header, now=NOW)
    assert signing.verify(SECRET, BODY, header, now=NOW + 299)


def test_signature_uses_the_current_time_by_default():
    header = signing.sign(SECRET, BODY)
    assert abs(int(header.split(",")[0].removeprefix("t=")) - time.time()) < 5
    assert signing.verify(SECRET, BODY, header)


@pytest.mark.parametrize("body", [
    BODY.replace(b"d-1", b"d-2"),
    BODY + b" ",
    b"",
], ids=["changed", "appended", "empty"])
def test_tampered_body_fails(body):
    assert not signing.verify(SECRET, body, signing.sign(SECRET, BODY, timestamp=NOW), now=NOW)


def test_wrong_secret_fails():
    header = signing.sign(SECRET, BODY, timestamp=NOW)
    assert not signing.verify("another-secret-entirely", BODY, header, now=NOW)


def test_changed_timestamp_fails():
    digest = signing.sign(SECRET, BODY, timestamp=NOW).split("v1=")[1]
    assert not signing.verify(SECRET, BODY, f"t={NOW + 1},v1={digest}", now=NOW)


@pytest.mark.parametrize("age", [301, 3600, -301], ids=["stale", "very-stale", "future"])
def test_timestamp_outside_tolerance_fails(age):
    header = signing.sign(SECRET, BODY, timestamp=NOW - age)
    assert not signing.verify(SECRET, BODY, header, now=NOW)
    assert signing.verify(SECRET, BODY, header, now=NOW, tolerance_seconds=abs(age))


@pytest.mark.parametrize("header", ["", "garbage", "t=abc,v1=00", f"v1={'0' * 64}", f"t={NOW}", f"t={NOW},v1="])
def test_malformed_header_fails(header):
    assert not signing.verify(SECRET, BODY, header, now=NOW)

"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>", sent as

    Closedloop-Signature: t=1732412345,v1=5f2b...

To verify: recompute HMAC-SHA256(secret, f"{t}.{raw_body}") in hex, compare in constant time, and
reject timestamps older than a few minutes (replay protection).
"""

import hashlib
import hmac
import time

HEADER = "Closedloop-Signature"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, tolerance_seconds: int = 300, now: float | None = None) -> bool:
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))

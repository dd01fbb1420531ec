"""When to try a failed webhook delivery again."""

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_seconds: float = 2.0
    max_seconds: float = 600.0

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Exponential back-off with full jitter; a server's Retry-After is honoured as a minimum."""
        ceiling = min(self.base_seconds * 2 ** (attempts - 1), self.max_seconds)
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_seconds))
        return delay


def is_retryable(status_code: int | None) -> bool:
    """Network errors (no status), 408, 429 and 5xx are worth retrying; other 4xx are not."""
    return status_code is None or status_code in (408, 429) or status_code >= 500


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone at all: HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())

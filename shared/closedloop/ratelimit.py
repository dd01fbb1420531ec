"""Rate limits: token buckets per API key / person and per client IP, answered with 429 problem+json
and `Retry-After`.

In-process, per replica: N replicas together admit up to N times the configured rate. That is the
point of the limit here — keep one partner, script or guesser from flooding a service — and it needs
no shared store on the request path. A cluster-wide quota belongs in the ingress controller or an
API gateway in front (documented in docs/operations.md).

    router = api_router("feedback", dependencies=[Depends(rate_limit("ingest"))])
"""

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import ip_address, ip_network

from fastapi import Request

from closedloop.errors import ProblemError

# A bucket not touched for this long is full again anyway; the table forgets the oldest beyond this size.
MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """`capacity` tokens (the burst), refilled at `per_minute / 60` per second; one request takes one."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(max(burst, 1))
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """0 when allowed, else the seconds until a token is there (and nothing is taken)."""
        now = self.clock()
        bucket = self._buckets.pop(key, None) or _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[key] = bucket  # most recently used last
        if len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate if self.rate > 0 else 60.0


def client_ip(request: Request, trusted_proxies: list[str]) -> str:
    """The caller's address; X-Forwarded-For is believed only when the direct peer is a trusted proxy
    (then the right-most address not itself a trusted proxy is the client)."""
    peer = request.client.host if request.client else "unknown"
    if not trusted_proxies:
        return peer
    networks = [ip_network(cidr, strict=False) for cidr in trusted_proxies]

    def trusted(address: str) -> bool:
        try:
            return any(ip_address(address) in network for network in networks)
        except ValueError:
            return False

    if not trusted(peer):
        return peer
    forwarded = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
    for address in reversed(forwarded):
        if not trusted(address):
            return address
    return peer


class RateLimiter:
    """The buckets of one service: per credential and per IP, from its settings."""

    def __init__(self, settings: object) -> None:
        self.enabled = bool(getattr(settings, "rate_limit_enabled", True))
        self.per_key = TokenBuckets(getattr(settings, "rate_limit_key_per_minute", 1200.0),
                                    getattr(settings, "rate_limit_key_burst", 200))
        self.per_ip = TokenBuckets(getattr(settings, "rate_limit_ip_per_minute", 600.0),
                                   getattr(settings, "rate_limit_ip_burst", 100))
        self.trusted_proxies: list[str] = list(getattr(settings, "rate_limit_trusted_proxies", []))

    def check(self, request: Request, scope: str, credential_id: str | None) -> None:
        if not self.enabled:
            return
        waits = [self.per_ip.take(f"{scope}|{client_ip(request, self.trusted_proxies)}")]
        if credential_id is not None:
            waits.append(self.per_key.take(f"{scope}|{credential_id}"))
        wait = max(waits)
        if wait > 0:
            which = "this client address" if waits[0] > 0 else "this API key or account"
            raise ProblemError(429, "Too Many Requests", f"Too many requests from {which}; retry in "
                               f"{math.ceil(wait)} s.", slug="rate-limited",
                               headers={"Retry-After": str(max(1, math.ceil(wait)))})


def rate_limit(scope: str, *, per_credential: bool = True) -> Callable[[Request], Awaitable[None]]:
    """A dependency that counts the request against the caller's IP and (when it has authenticated
    credentials and `per_credential`) against its API key or account, within `scope`."""

    async def dependency(request: Request) -> None:
        limiter: RateLimiter = request.app.state.rate_limiter
        credential_id = None
        if per_credential:
            from closedloop.auth import current_principal

            # Authenticates here (cached for the route's own check), so the key is known before the body
            # is read; an invalid credential is answered 401 as it would be anyway.
            if request.headers.get("x-api-key") or request.headers.get("authorization"):
                principal = await current_principal(request)
                credential_id = principal.actor
        limiter.check(request, scope, credential_id)

    return dependency

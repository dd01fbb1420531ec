"""Token buckets and the client address they are keyed on."""

from types import SimpleNamespace

from closedloop.ratelimit import TokenBuckets, client_ip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_rate():
    clock = Clock()
    buckets = TokenBuckets(per_minute=60, burst=3, clock=clock)  # one token a second
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    wait = buckets.take("a")
    assert 0.99 <= wait <= 1.0
    assert buckets.take("b") == 0, "another key has its own bucket"
    clock.now += 0.5
    assert 0.49 <= buckets.take("a") <= 0.5, "a refused request takes nothing"
    clock.now += 0.5
    assert buckets.take("a") == 0
    clock.now += 3600
    assert [buckets.take("a") for _ in range(4)][:3] == [0, 0, 0], "refills up to the burst, not beyond"


def request(peer: str, forwarded: str | None = None):
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    return SimpleNamespace(client=SimpleNamespace(host=peer), headers=headers)


def test_forwarded_for_is_believed_only_from_trusted_proxies():
    assert client_ip(request("203.0.113.9", "1.2.3.4"), []) == "203.0.113.9"
    assert client_ip(request("203.0.113.9", "1.2.3.4"), ["10.0.0.0/8"]) == "203.0.113.9"
    assert client_ip(request("10.0.0.7", "1.2.3.4"), ["10.0.0.0/8"]) == "1.2.3.4"
    # A client cannot pick its address by prepending one: the right-most untrusted hop counts.
    assert client_ip(request("10.0.0.7", "6.6.6.6, 1.2.3.4, 10.0.0.8"), ["10.0.0.0/8"]) == "1.2.3.4"

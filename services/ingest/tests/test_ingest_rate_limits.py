"""Rate limits on ingest (per API key, per client IP) and on the public ticket page (per IP): 429
problem+json with Retry-After, and a refused request stores nothing."""

from sqlalchemy import func, select

from closedloop.testing import running_app
from ingest.main import create_app
from ingest.models import Feedback
from ingest.settings import IngestSettings

PROBLEM = "application/problem+json"


def item(n: int) -> dict:
    return {"channel": "app", "text": f"The export fails with error {n}", "customer": {"id": f"c-{n}"}}


async def test_per_key_and_per_ip_limits_answer_429_with_retry_after(tmp_path, nats_server):
    settings = IngestSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'i.db'}", nats_url=nats_server.url,
                              log_json=False, rate_limit_key_per_minute=6, rate_limit_key_burst=3,
                              rate_limit_ip_per_minute=1, rate_limit_ip_burst=5,
                              api_keys=["dev-key-change-me", "second-settings-key"])
    app = create_app(settings)
    async with running_app(app) as client:
        answers = [await client.post("/v1/feedback", json=item(n)) for n in range(4)]
        assert [a.status_code for a in answers] == [202, 202, 202, 429]
        limited = answers[3]
        assert limited.headers["content-type"] == PROBLEM
        assert limited.json()["type"].endswith("/rate-limited") and "API key" in limited.json()["detail"]
        assert 1 <= int(limited.headers["Retry-After"]) <= 10
        async with app.state.runtime.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Feedback)) == 3, "the 429 stored nothing"

        # Another key has its own bucket, until the client address has used its own burst (5).
        other = {"X-API-Key": "second-settings-key"}
        assert (await client.post("/v1/feedback", json=item(10), headers=other)).status_code == 202
        by_ip = await client.post("/v1/feedback", json=item(11), headers=other)
        assert by_ip.status_code == 429 and "client address" in by_ip.json()["detail"]
        # Health is never limited.
        assert (await client.get("/livez")).status_code == 200

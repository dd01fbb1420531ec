"""Spike alert rules on a real (migrated) database: negative share thresholds, the 24-hour volume jump,
cooldown and escalation; the alert row and its outbox event are written together."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import numpy as np
from sqlalchemy import select

from classify.alerts import raise_alerts
from classify.main import SERVICE_DIR
from classify.models import ClassificationRecord, OutboxMessage
from classify.settings import ClassifySettings
from closedloop.db import create_engine, run_migrations, session_factory


def record(at: datetime, sentiment: str) -> ClassificationRecord:
    return ClassificationRecord(
        feedback_id=str(uuid4()), text="x", category="general/other", category_label="Other", top_level="general",
        confidence=0.9, alternatives=[], sentiment=sentiment, sentiment_score=0.9, polarity=0.0,
        taxonomy_version="t", model_version="m", created_at=at, needs_triage=False,
        embedding=np.zeros(4, dtype=np.float32).tobytes())


async def test_negative_share_and_volume_jump(database_url):
    await run_migrations(SERVICE_DIR, database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    settings = ClassifySettings(database_url=database_url, alert_window_minutes=60, alert_min_volume=10,
                                alert_volume_min_previous=10, alert_cooldown_minutes=30)
    now = datetime.now(UTC)
    try:
        async with sessions() as session, session.begin():
            # The day before: 20 negative of 100. The last hour: 2 negative of 10 (20%: a warning).
            session.add_all(record(now - timedelta(hours=30, minutes=i), "negative" if i < 20 else "neutral")
                            for i in range(100))
            session.add_all(record(now - timedelta(minutes=5 + i), "negative" if i < 2 else "positive")
                            for i in range(10))
        async with sessions() as session, session.begin():
            raised = await raise_alerts(session, settings, now)
        assert [(a.kind, a.severity) for a in raised] == [("negative_share", "warning")]
        assert raised[0].metrics["negative_share"] == 0.2

        async with sessions() as session, session.begin():
            assert await raise_alerts(session, settings, now + timedelta(minutes=1)) == []  # cooldown

        # 30 more negative messages in the last hour: 32/40 negative (critical, an escalation, so at once),
        # and 32 negative in 24 h against 20 the day before (+60%: the volume jump).
        async with sessions() as session, session.begin():
            session.add_all(record(now - timedelta(minutes=1), "negative") for _ in range(30))
        async with sessions() as session, session.begin():
            raised = await raise_alerts(session, settings, now + timedelta(minutes=2))
        assert sorted((a.kind, a.severity) for a in raised) == [("negative_share", "critical"),
                                                                ("negative_volume_jump", "warning")]
        jump = next(a for a in raised if a.kind == "negative_volume_jump")
        assert jump.metrics["negative_previous_24h"] == 20 and jump.metrics["negative_last_24h"] == 32

        async with sessions() as session:
            events = list(await session.scalars(select(OutboxMessage).where(
                OutboxMessage.subject == "alert.raised.v1")))
        assert len(events) == 3
        payloads = [json.loads(e.payload) for e in events]
        assert {p["severity"] for p in payloads} == {"warning", "critical"}
        assert all(p["message"] and p["metrics"] for p in payloads)
    finally:
        await engine.dispose()

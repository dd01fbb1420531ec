"""Emerging topics and the spike alerts raised on them."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Query

from classify import alerts
from classify.api.deps import SettingsDep
from classify.schemas.alerts import AlertPage, AlertPublic
from classify.schemas.topics import TopicPublic, TopicsPublic
from classify.topics import compute_topics
from closedloop.api import SessionDep, api_router
from closedloop.auth import needs
from closedloop.pagination import Cursor

router = api_router("topics and alerts", 400)


@router.get("/topics", dependencies=needs("reports:read"), response_model=TopicsPublic,
            summary="Emerging topics: clusters of recent feedback with volume and trend",
            description="Clusters the messages of the last `window_hours` and the window before it by meaning; "
                        "each topic has its volume in both windows and a trend (`new`, `rising` ≥ +25%, "
                        "`falling` ≤ −25%, `stable`).")
async def list_topics(session: SessionDep, settings: SettingsDep,
                      window_hours: Annotated[float, Query(gt=0, le=24 * 90)] = 24.0,
                      min_volume: Annotated[int, Query(ge=1)] = 2,
                      limit: Annotated[int, Query(ge=1, le=200)] = 20) -> TopicsPublic:
    now = datetime.now(UTC)
    window = timedelta(hours=window_hours)
    messages, topics = await compute_topics(session, now, window, settings.topic_similarity,
                                            settings.topic_max_items, min_volume, limit)
    return TopicsPublic(window_hours=window_hours, window_start=now - window, window_end=now, messages=messages,
                        topics=[TopicPublic(**t.__dict__) for t in topics])


@router.get("/alerts", dependencies=needs("reports:read"),
            response_model=AlertPage, summary="Spike alerts raised (newest first)")
async def list_alerts(session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                      cursor: Cursor = None) -> AlertPage:
    page = await alerts.alerts_page(session, limit, cursor)
    return AlertPage(items=[AlertPublic.model_validate(r, from_attributes=True) for r in page.rows],
                     total=page.total, next_cursor=page.next_cursor)

"""Dependencies the insights routes share (SessionDep and RuntimeDep come from closedloop.api)."""

from typing import Annotated, Any

from fastapi import Depends, Request

from closedloop.api import app_state
from closedloop.messaging.consumer import Subscription
from insights.replay import Rebuilder
from insights.settings import InsightsSettings

SettingsDep = Annotated[InsightsSettings, app_state("settings")]
RebuilderDep = Annotated[Rebuilder, app_state("rebuilder")]
SubscriptionsDep = Annotated[list[Subscription], app_state("subscriptions")]


async def forecast_cache(request: Request) -> dict[Any, Any]:
    """The forecasts this app keeps for a few minutes (insights.api.analyses.get_forecast)."""
    cache: dict[Any, Any] = request.app.state.__dict__.setdefault("forecast_cache", {})
    return cache


ForecastCacheDep = Annotated[dict[Any, Any], Depends(forecast_cache)]

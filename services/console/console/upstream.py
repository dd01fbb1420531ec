"""The other services' HTTP APIs, called on behalf of the signed-in user.

The only place that knows how a user's credentials travel: a JWT from the identity service as
`Authorization: Bearer`, or (development stand-in) the service API key."""

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from console.settings import ConsoleSettings

SERVICES = ("ingest", "classify", "ticketing", "notify", "insights")


class UpstreamError(Exception):
    def __init__(self, service: str, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{service} answered {status}: {problem.get('detail') or problem.get('title')}")
        self.service, self.status, self.problem = service, status, problem

    @property
    def detail(self) -> str:
        errors = self.problem.get("errors") or []
        fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict))
        return fields or str(self.problem.get("detail") or self.problem.get("title") or self.status)


class Upstream:
    """One connection pool per service for the whole console process."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.clients = {name: httpx.AsyncClient(base_url=getattr(settings, f"{name}_url"),
                                                timeout=settings.upstream_timeout_seconds)
                        for name in SERVICES}
        self.plain = httpx.AsyncClient(timeout=settings.upstream_timeout_seconds)

    def as_user(self, access_token: str | None) -> "UserApi":
        if access_token:
            headers = {"Authorization": f"Bearer {access_token}"}
        else:
            headers = {"X-API-Key": self.settings.service_api_key}
        return UserApi(self, headers)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        await self.plain.aclose()


@dataclass
class UserApi:
    upstream: Upstream
    headers: dict[str, str]
    # GET answers kept for one page (see `for_one_page`): two charts of the same report ask once.
    cache: dict[tuple[str, str, str], Any] | None = None

    def for_one_page(self) -> "UserApi":
        return UserApi(self.upstream, self.headers, {})

    async def request(self, method: str, service: str, path: str, *, params: dict[str, Any] | None = None,
                      json: Any = None, ok_missing: bool = False, timeout: float | None = None) -> Any:
        """The decoded JSON answer; `None` for 404 when `ok_missing`; UpstreamError for any other error.
        `timeout` (seconds) replaces the usual one for a call known to compute for long (a forecast)."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        limit = timeout or self.upstream.settings.upstream_timeout_seconds
        try:
            response = await self.upstream.clients[service].request(method, path, params=params, json=json,
                                                                    headers=self.headers, timeout=limit)
        except httpx.TimeoutException as exc:
            raise UpstreamError(service, 504, {"title": "Timeout", "detail": f"{service} did not answer within "
                                               f"{limit:g} s"}) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(service, 503, {"title": "Service unavailable",
                                               "detail": f"{service} is not reachable ({type(exc).__name__})"}) from exc
        if ok_missing and response.status_code == 404:
            return None
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase}
            raise UpstreamError(service, response.status_code, problem if isinstance(problem, dict) else {})
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def get(self, service: str, path: str, timeout: float | None = None, **params: Any) -> Any:
        if self.cache is None:
            return await self.request("GET", service, path, params=params, timeout=timeout)
        key = (service, path, repr(sorted(params.items())))
        if key not in self.cache:
            # The task, not its result: concurrent charts asking for the same report share one call.
            self.cache[key] = asyncio.ensure_future(self.request("GET", service, path, params=params,
                                                                 timeout=timeout))
        return await asyncio.shield(self.cache[key])

    async def get_or_none(self, service: str, path: str, **params: Any) -> Any:
        return await self.request("GET", service, path, params=params, ok_missing=True)

    async def post(self, service: str, path: str, json: Any = None, **params: Any) -> Any:
        return await self.request("POST", service, path, json=json if json is not None else {}, params=params)

    async def put(self, service: str, path: str, json: Any) -> Any:
        return await self.request("PUT", service, path, json=json)

    async def patch(self, service: str, path: str, json: Any) -> Any:
        return await self.request("PATCH", service, path, json=json)

    async def delete(self, service: str, path: str) -> Any:
        return await self.request("DELETE", service, path)

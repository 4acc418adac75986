"""Python client for the detection API: all a detection service needs is a base URL and a token."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import aiohttp

from foundation.egress import check_base_url
from foundation.errors import TgwatchError


class DetectionApiError(TgwatchError):
    kind = "detection_api"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class DetectionClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0) -> None:
        # tgwatch's own API at an address its operator gives (often internal): the egress guard's
        # scheme rule applies, its public-address rule does not (the operator named the host)
        self._base = check_base_url(base_url).rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> DetectionClient:
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout, trust_env=False)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use `async with DetectionClient(...)`")
        return self._session

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        async with self.session.post(self._base + path, json=body) as resp:
            return await self._json(resp)

    async def _json(self, resp: aiohttp.ClientResponse) -> Any:
        data = await resp.json(content_type=None)
        if resp.status >= 400:
            raise DetectionApiError(resp.status, str(data.get("error") if isinstance(data, dict) else data))
        return data

    async def claim(
        self, n: int = 1, lease_seconds: float | None = None, consumer: str | None = None, detector: str | None = None
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"n": n}
        if detector is not None:
            body["detector"] = detector
        if lease_seconds is not None:
            body["lease_seconds"] = lease_seconds
        if consumer is not None:
            body["consumer"] = consumer
        return list((await self._post("/api/v1/detection/claim", body))["jobs"])

    async def extend(self, job: dict[str, Any], lease_seconds: float | None = None) -> float:
        body = {"job_id": job["job_id"], "token": job["token"], "lease_seconds": lease_seconds}
        return float((await self._post("/api/v1/detection/extend", body))["lease_until"])

    async def ack(self, job: dict[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
        body = {"job_id": job["job_id"], "token": job["token"], "verdict": verdict}
        return dict(await self._post("/api/v1/detection/ack", body))

    async def nack(self, job: dict[str, Any], error: str) -> str:
        body = {"job_id": job["job_id"], "token": job["token"], "error": error}
        return str((await self._post("/api/v1/detection/nack", body))["state"])

    async def media(self, job: dict[str, Any]) -> bytes:
        async with self.session.get(self._base + job["media_url"]) as resp:
            if resp.status >= 400:
                await self._json(resp)
            return await resp.read()

    async def get_json(self, path: str) -> Any:
        """A GET on the tgwatch API (e.g. the watchlist gallery), as JSON; errors raise."""
        async with self.session.get(self._base + path) as resp:
            return await self._json(resp)

    async def stats(self) -> dict[str, Any]:
        async with self.session.get(self._base + "/api/v1/detection/stats") as resp:
            return dict(await self._json(resp))

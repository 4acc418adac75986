"""``/api/v1/detection/...``: the detection service drains the queue over HTTP with a token."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from pydantic import BaseModel, Field

from crawler.detection.quarantine import QuarantineError
from crawler.detection.service import AlertHook, DetectionService, VerdictHook, VerdictIn, WatchlistGate
from crawler.routes.context import SETTINGS, STORE, json_response, problem
from crawler.routes.table import RouteTable, json_body, principal
from crawler.tokens import Role

SERVICE: web.AppKey[DetectionService] = web.AppKey("detection_service", DetectionService)
CONSUMERS = {Role.DETECTOR}

#: how the app shell hands the detection routes the hook that records each stored verdict (in tgwatch
#: the evidence ledger's, ``crawler.evidence.hooks.verdict_hook``): detection declares what it needs
#: and never imports the evidence feature, so the dependency between the two runs one way
VerdictHookFor = Callable[[web.Application], VerdictHook]


class ClaimIn(BaseModel):
    n: int = Field(1, ge=1, le=100)
    lease_seconds: float | None = Field(None, gt=0, le=3600)
    consumer: str | None = Field(None, max_length=100, description="defaults to the token's name")
    detector: str | None = Field(None, max_length=100, description="only this detector's jobs")


class ExtendIn(BaseModel):
    job_id: str = Field(max_length=200)
    token: str = Field(max_length=64)
    lease_seconds: float | None = Field(None, gt=0, le=3600)


class AckIn(BaseModel):
    job_id: str = Field(max_length=200)
    token: str = Field(max_length=64)
    verdict: VerdictIn


class NackIn(BaseModel):
    job_id: str = Field(max_length=200)
    token: str = Field(max_length=64)
    error: str = Field(max_length=4000)


def service(request: web.Request) -> DetectionService:
    return request.app[SERVICE]


def register(
    routes: RouteTable,
    *,
    verdict_hook_for: VerdictHookFor,
    alert_hook_for: Callable[[web.Application], AlertHook | None] | None = None,
    watchlist_for: Callable[[web.Application], WatchlistGate | None] | None = None,
) -> None:
    async def start(app: web.Application) -> None:
        on_alert = alert_hook_for(app) if alert_hook_for is not None else None
        watchlist = watchlist_for(app) if watchlist_for is not None else None
        app[SERVICE] = DetectionService(
            app[STORE], app[SETTINGS], verdict_hook=verdict_hook_for(app), on_alert=on_alert, watchlist=watchlist
        )

    routes.startup.append(start)

    @routes.add(
        "POST",
        "/api/v1/detection/claim",
        roles=CONSUMERS,
        summary="lease a batch of jobs",
        tag="detection",
        body=ClaimIn,
    )
    async def claim(request: web.Request) -> web.StreamResponse:
        body: ClaimIn = await json_body(request, ClaimIn)
        who = principal(request)
        jobs = await service(request).claim(
            body.consumer or who.name, body.n, body.lease_seconds, detector=body.detector, holder=who.token_id
        )
        return json_response({"jobs": [j.to_json() for j in jobs]})

    @routes.add(
        "POST",
        "/api/v1/detection/extend",
        roles=CONSUMERS,
        summary="extend a lease (heartbeat)",
        tag="detection",
        body=ExtendIn,
    )
    async def extend(request: web.Request) -> web.StreamResponse:
        body: ExtendIn = await json_body(request, ExtendIn)
        until = await service(request).extend(body.job_id, body.token, body.lease_seconds)
        return json_response({"job_id": body.job_id, "lease_until": until})

    @routes.add(
        "POST",
        "/api/v1/detection/ack",
        roles=CONSUMERS,
        summary="settle a job with its verdict",
        tag="detection",
        body=AckIn,
    )
    async def ack(request: web.Request) -> web.StreamResponse:
        body: AckIn = await json_body(request, AckIn)
        verdict = await service(request).ack(body.job_id, body.token, body.verdict, holder=principal(request).token_id)
        return json_response({"job_id": body.job_id, "verdict": verdict.model_dump(mode="json")})

    @routes.add(
        "POST",
        "/api/v1/detection/nack",
        roles=CONSUMERS,
        summary="give a job back after a failure",
        tag="detection",
        body=NackIn,
    )
    async def nack(request: web.Request) -> web.StreamResponse:
        body: NackIn = await json_body(request, NackIn)
        state = await service(request).nack(body.job_id, body.token, body.error, holder=principal(request).token_id)
        return json_response({"job_id": body.job_id, "state": state})

    @routes.add(
        "GET", "/api/v1/detection/stats", roles={Role.DETECTOR, Role.MONITOR}, summary="jobs per state", tag="detection"
    )
    async def stats(request: web.Request) -> web.StreamResponse:
        return json_response(await service(request).stats())

    @routes.add("GET", "/api/v1/detection/dead", roles={Role.MONITOR}, summary="dead-letter jobs", tag="detection")
    async def dead(request: web.Request) -> web.StreamResponse:
        return json_response({"jobs": await service(request).queue.dead()})

    @routes.add(
        "GET",
        "/api/v1/detection/media/{sha256}",
        public=True,
        tag="detection",
        summary="media bytes of a job; authorised by the job's short-lived signed URL",
        query={"exp": "expiry (epoch seconds)", "sig": "HMAC signature"},
    )
    async def media(request: web.Request) -> web.StreamResponse:
        svc = service(request)
        sha = request.match_info["sha256"]
        if not svc.signer.verify(sha, request.query.get("exp", ""), request.query.get("sig", "")):
            return problem(403, "missing, invalid or expired media signature")
        try:
            data = await svc.media_bytes(sha)
        except QuarantineError as exc:
            return problem(404, exc.message)
        return web.Response(body=data, content_type="application/octet-stream", headers={"Cache-Control": "no-store"})

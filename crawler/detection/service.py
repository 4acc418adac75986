"""The detection queue as the detection service sees it: jobs per (media, detector), verdicts back.

Built on ``storage.workqueue.WorkQueue`` over ``detection_jobs``. Job ids are
``<sha256>/<detector>``, so enqueuing the same media for the same detector twice is a no-op (a
higher priority is still applied). A verdict is stored under ``<job id>/<lease token>``: acking the
same lease twice stores one verdict, and a later job's verdict supersedes rather than overwrites.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, Field, field_validator, model_validator

from config import Settings
from crawler.detection.quarantine import Quarantine
from crawler.detection.signing import UrlSigner
from foundation import keys
from foundation.errors import TgwatchError
from foundation.logs import get_logger
from foundation.models import WATCHLIST_DETECTOR, Alert, AlertKind, Decision, Verdict, utcnow
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.channels import ChannelRepo
from storage.repos.media import MediaRepo
from storage.repos.verdicts import VerdictRepo
from storage.workqueue import DONE, LEASED, Lease, LeaseLost, WorkQueue

log = get_logger(__name__)

PRIORITY_HASH_MATCH = 100
PRIORITY_FLAGGED_CHANNEL = 50
PRIORITY_NORMAL = 0

#: called with each newly stored verdict and its id (the evidence ledger records it; see
#: ``crawler.evidence.hooks.verdict_hook``, wired in by the app shell)
VerdictHook = Callable[[Verdict, str | None], Awaitable[None]]


class WatchlistHitIn(BaseModel):
    """One face of an enrolled person, as a watchlist detector reports it (never its embedding)."""

    person: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    distance: float = Field(ge=0.0, le=4.0)
    box: tuple[int, int, int, int]
    frame: int | None = Field(None, ge=0)

    @field_validator("box")
    @classmethod
    def _box(cls, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        left, top, right, bottom = box
        if min(box) < 0 or right <= left or bottom <= top:
            raise ValueError("box is (left, top, right, bottom) with right > left and bottom > top")
        return box


class VerdictIn(BaseModel):
    """The body a detector posts: ``{"decision": ..., "labels": {"name": score}}`` (and, for
    ``watchlist_match``, ``matches``)."""

    decision: Decision
    labels: dict[str, float] = Field(default_factory=dict)
    detector_version: str = Field("unknown", max_length=100)
    matches: list[WatchlistHitIn] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _matches_iff_watchlist(self) -> VerdictIn:
        if (self.decision is Decision.WATCHLIST_MATCH) != bool(self.matches):
            raise ValueError("matches are given exactly when the decision is watchlist_match")
        return self

    @field_validator("labels")
    @classmethod
    def _scores(cls, labels: dict[str, float]) -> dict[str, float]:
        for name, score in labels.items():
            if not name or len(name) > 100:
                raise ValueError(f"label name {name[:20]!r} must be 1-100 characters")
            if not 0.0 <= score <= 1.0:
                raise ValueError(f"label {name!r} score {score} is outside [0, 1]")
        return labels


@dataclass(frozen=True)
class ClaimedJob:
    job_id: str
    token: str
    sha256: str
    detector: str
    attempt: int
    lease_until: float
    media_url: str
    context: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def priority_for(*, matched: bool, flagged_channel: bool) -> int:
    if matched:
        return PRIORITY_HASH_MATCH
    return PRIORITY_FLAGGED_CHANNEL if flagged_channel else PRIORITY_NORMAL


#: called with each new detection alert (the shell passes the takedown policy hook: draft at most)
AlertHook = Callable[[Alert], Awaitable[object]]


class WatchlistGate(Protocol):
    """What detection needs from the consent-based watchlist (the shell hands one in when the
    feature is configured; detection never imports it). Without a gate a ``watchlist_match``
    verdict is refused."""

    async def confirm(self, verdict: Verdict) -> Verdict:
        """The verdict as it may be stored: matches of persons no longer enrolled dropped (a
        withdrawal wins over a detector's stale gallery), a match with none left → negative."""

    async def raise_alert(self, verdict: Verdict) -> Alert | None:
        """The review alert of a stored ``watchlist_match`` verdict (None if it existed)."""


class WatchlistOff(TgwatchError):
    kind = "watchlist_off"


class DetectionService:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        verdict_hook: VerdictHook | None = None,
        on_alert: AlertHook | None = None,
        watchlist: WatchlistGate | None = None,
    ) -> None:
        self._verdict_hook = verdict_hook
        self._on_alert = on_alert
        self._watchlist = watchlist
        self._settings = settings.detection
        self.queue = WorkQueue(store, "detection_jobs", max_attempts=self._settings.max_attempts)
        data_dir = settings.data_dir
        self.quarantine = Quarantine(
            data_dir / "quarantine", keys.load_or_create(self._settings.quarantine_key, data_dir, "quarantine")
        )
        self.signer = UrlSigner(keys.load_or_create(None, data_dir, "media-url"), self._settings.media_url_ttl_seconds)
        self.alerts = AlertRepo(store)
        self.verdicts = VerdictRepo(store)
        self._media = MediaRepo(store)
        self._channels = ChannelRepo(store)

    # -- producing ---------------------------------------------------------------------------
    def wanted(self, *, matched: bool, flagged_channel: bool) -> bool:
        policy = self._settings.enqueue_policy
        return (
            policy == "all"
            or (policy == "flagged" and (flagged_channel or matched))
            or (policy == "unmatched" and not matched)
        )

    async def enqueue(
        self,
        sha256: str,
        *,
        matched: bool = False,
        flagged_channel: bool = False,
        context: dict[str, Any] | None = None,
    ) -> list[str]:
        """Queue a quarantined media item for every configured detector, if the policy wants it."""
        if not self.wanted(matched=matched, flagged_channel=flagged_channel):
            return []
        priority = priority_for(matched=matched, flagged_channel=flagged_channel)
        created = []
        for detector in self._settings.detectors:
            job_id = f"{sha256}/{detector}"
            payload = {"sha256": sha256, "detector": detector, "context": context or {}}
            if await self.queue.enqueue(job_id, payload, priority=priority):
                created.append(job_id)
            else:
                await self.queue.raise_priority(job_id, priority)
        return created

    # -- consuming ---------------------------------------------------------------------------
    async def claim(
        self,
        consumer: str,
        n: int = 1,
        lease_seconds: float | None = None,
        *,
        detector: str | None = None,
        holder: str | None = None,
    ) -> list[ClaimedJob]:
        """Lease jobs; ``detector`` takes only that detector's jobs (a faces detector must not
        settle another detector's job); ``holder`` is the token id that claims them (only it may
        settle them: :meth:`ack`)."""
        where = {"payload.detector": detector} if detector else None
        leases = await self.queue.claim(
            consumer, n, lease_seconds or self._settings.lease_seconds, where=where, holder=holder
        )
        return [self._job(lease) for lease in leases]

    def _job(self, lease: Lease) -> ClaimedJob:
        sha = lease.payload["sha256"]
        return ClaimedJob(
            job_id=lease.job_id,
            token=lease.token,
            sha256=sha,
            detector=lease.payload["detector"],
            attempt=lease.attempt,
            lease_until=lease.until,
            media_url=self.signer.media_path(sha),
            context=lease.payload.get("context", {}),
        )

    async def extend(self, job_id: str, token: str, lease_seconds: float | None = None) -> float:
        return await self.queue.extend(job_id, token, lease_seconds or self._settings.lease_seconds)

    async def nack(self, job_id: str, token: str, error: str, *, holder: str | None = None) -> str:
        if holder is not None:
            job = await self.queue.get(job_id)
            if job is not None and job.get("lease_token") == token and job.get("lease_holder") != holder:
                raise LeaseLost(f"job {job_id!r} is leased to another token")
        return await self.queue.nack(job_id, token, error)

    async def ack(self, job_id: str, token: str, verdict_in: VerdictIn, *, holder: str | None = None) -> Verdict:
        """Record the verdict, then settle the job. A positive verdict raises an alert and the
        risk score of every channel the media was seen in.

        ``holder`` (the API caller's token id) must be the one the lease was given to: a verdict,
        above all a ``watchlist_match``, is accepted only from the token that leased that very job
        (a lease token seen elsewhere, or a job claimed by another detector's token, is not enough).
        The lease is checked before the verdict is looked at."""
        job = await self.queue.get(job_id)
        if job is None:
            from storage.workqueue import UnknownJob

            raise UnknownJob(f"no job {job_id!r}")
        if job.get("lease_token") != token or job.get("state") not in (LEASED, DONE):
            raise LeaseLost(f"job {job_id!r} is {job.get('state')} and not leased with this token")
        if holder is not None and job.get("lease_holder") != holder:
            raise LeaseLost(f"job {job_id!r} is leased to another token")
        verdict = Verdict(
            sha256=job["payload"]["sha256"],
            detector=job["payload"]["detector"],
            detector_version=verdict_in.detector_version,
            decision=verdict_in.decision,
            labels=verdict_in.labels,
            job_id=job_id,
            decided_at=utcnow(),
            matches=[m.model_dump(mode="json") for m in verdict_in.matches],
        )
        if job["state"] == DONE and job.get("lease_token") == token:
            return await self._stored_verdict(job_id, token) or verdict  # double ack: nothing changes
        if verdict.decision is Decision.WATCHLIST_MATCH:
            if self._watchlist is None:
                raise WatchlistOff("this server has no watchlist configured: a watchlist_match cannot be accepted")
            verdict = await self._watchlist.confirm(verdict)
        first = await self.queue.ack(job_id, token, {"decision": verdict.decision.value})
        if first:
            await self._store_verdict(job_id, token, verdict)
            if verdict.decision is Decision.POSITIVE:
                await self._on_positive(verdict)
            elif verdict.decision is Decision.WATCHLIST_MATCH and self._watchlist is not None:
                alert = await self._watchlist.raise_alert(verdict)
                if alert is not None and self._on_alert is not None:
                    await self._on_alert(alert)  # the takedown policy: review only, it drafts nothing
        return verdict

    async def _store_verdict(self, job_id: str, token: str, verdict: Verdict) -> None:
        doc = await self.verdicts.add(f"{job_id}/{token}", verdict)
        if doc is None:
            return
        if self._verdict_hook is not None:  # the evidence ledger records every verdict
            await self._verdict_hook(verdict, str(doc["_id"]))
        # the media document is read by every reader of the channel: a watchlist verdict (even its
        # bare decision: "an enrolled person is in this") stays in ``verdicts`` and the case-scoped alert
        if verdict.decision is Decision.WATCHLIST_MATCH or verdict.detector == WATCHLIST_DETECTOR:
            return
        await self._media.record_verdict(
            verdict.sha256, verdict.detector, verdict.model_dump(mode="python", exclude={"matches"})
        )

    async def _stored_verdict(self, job_id: str, token: str) -> Verdict | None:
        return await self.verdicts.get(f"{job_id}/{token}")

    async def _on_positive(self, verdict: Verdict) -> None:
        channels = await self._media.sighting_channels(verdict.sha256)
        top = max(verdict.labels.items(), key=lambda kv: kv[1], default=("", 0.0))
        alert = Alert(
            key=f"detection/{verdict.sha256}/{verdict.detector}",
            kind=AlertKind.DETECTION,
            sha256=verdict.sha256,
            summary=f"{verdict.detector} flagged media {verdict.sha256[:12]}"
            + (f" ({top[0]} {top[1]:.2f})" if top[0] else ""),
            details={
                "labels": verdict.labels,
                "detector": verdict.detector,
                "detector_version": verdict.detector_version,
            },
            channels=channels,
            raised_at=verdict.decided_at,
        )
        if await self.alerts.raise_alert(alert) and self._on_alert is not None:
            await self._on_alert(alert)  # the takedown policy for detection alerts (draft at most)
        if channels:
            await self._channels.add_risk(channels, self._settings.risk_per_positive)

    async def media_bytes(self, sha256: str) -> bytes:
        return self.quarantine.get(sha256)

    async def stats(self) -> dict[str, Any]:
        return await self.queue.stats()

    async def purge_quarantine(self) -> list[str]:
        """Delete quarantined bytes whose every job is done, past retention, not under legal hold."""
        jobs = await self.queue.payload_states("sha256")
        held = await self._media.held()
        open_shas = {sha for state, sha in jobs if state != DONE}
        done_shas = {sha for state, sha in jobs if state == DONE}
        removable = done_shas - open_shas - held
        removed = self.quarantine.purge(removable, self._settings.retention_days * 86400)
        if removed:
            log.info("quarantine purged", count=len(removed))
        return removed

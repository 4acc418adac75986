"""The server side of a ``watchlist_match`` verdict: confirm it against the current enrollments and
raise the review alert.

Why the server checks again: the detector matches against a gallery fetched a little while ago; a
person who withdrew since must not be reported. The alert is of its own kind (``watchlist_match``),
names the case it belongs to (only that case's members and admins see it: ``visible_to``), carries
no embedding and no name (a pseudonymous reference, the distance and the face box), is marked for
blurred review, and the takedown policy never acts on it (``crawler.takedowns.policy``).
"""

from __future__ import annotations

from typing import Any

from crawler.watchlist.detector import DETECTOR_NAME
from crawler.watchlist.service import WatchlistService
from foundation.errors import TgwatchError
from foundation.models import Alert, AlertKind, Decision, Verdict, utcnow
from storage.repos.alerts import AlertRepo
from storage.repos.media import MediaRepo


class NotAWatchlistJob(TgwatchError):
    """A ``watchlist_match`` posted on another detector's job (e.g. a classifier's token naming a
    person): refused, so only the faces detector's jobs can ever raise a watchlist alert."""

    kind = "not_a_watchlist_job"


class WatchlistReview:
    """``crawler.detection.service.WatchlistGate`` for the API server."""

    def __init__(self, service: WatchlistService) -> None:
        self.service = service
        self._alerts = AlertRepo(service.repo_store)
        self._media = MediaRepo(service.repo_store)

    async def confirm(self, verdict: Verdict) -> Verdict:
        if verdict.detector != DETECTOR_NAME:
            raise NotAWatchlistJob(
                f"a watchlist_match is accepted only on a {DETECTOR_NAME!r} job, not on a {verdict.detector!r} job"
            )
        kept: list[dict[str, Any]] = []
        for match in verdict.matches:
            doc = await self.service.active(str(match.get("person")))
            # enrolled and unexpired now (``active`` withdrew what had expired; the clock is checked
            # again here so an expiry that falls between the two reads is not matched either)
            if doc is None or float(doc.get("expires_ts") or 0) <= utcnow().timestamp():
                continue
            if float(match.get("distance", 9.0)) <= self.service.settings.threshold:
                kept.append({**match, "case": doc["case"]})
        if kept:
            return verdict.model_copy(update={"matches": kept})
        return verdict.model_copy(update={"matches": [], "decision": Decision.NEGATIVE})

    async def raise_alert(self, verdict: Verdict) -> Alert | None:
        if verdict.decision is not Decision.WATCHLIST_MATCH or not verdict.matches:
            return None
        best = min(verdict.matches, key=lambda m: float(m["distance"]))
        persons = sorted({str(m["person"]) for m in verdict.matches})
        alert = Alert(
            key=f"watchlist/{verdict.sha256}/{'+'.join(persons)}",
            kind=AlertKind.WATCHLIST_MATCH,
            sha256=verdict.sha256,
            summary=f"watchlist match awaiting human review (media {verdict.sha256[:12]})",
            details={
                "case": best["case"],
                "cases": sorted({str(m["case"]) for m in verdict.matches}),
                "persons": persons,
                "matches": verdict.matches,
                "threshold": self.service.settings.threshold,
                "detector": verdict.detector,
                "detector_version": verdict.detector_version,
                "review": "human",
                "blurred": True,
            },
            channels=await self._media.sighting_channels(verdict.sha256),
            raised_at=verdict.decided_at,
        )
        return alert if await self._alerts.raise_alert(alert) else None


def visible_to(alert: dict[str, Any], cases: list[str] | None) -> bool:
    """May a principal whose cases are ``cases`` (None: every case, an admin) see this alert?

    Every alert kind but ``watchlist_match`` is unchanged; a watchlist alert only for its case."""
    if alert.get("kind") != AlertKind.WATCHLIST_MATCH.value:
        return True
    if cases is None:
        return True
    details = alert.get("details") or {}
    return bool(set(details.get("cases") or [details.get("case")]) & set(cases))

"""The one entry point of discovery: record sightings, apply triage, review into targets.

Every source calls ``DiscoveryService.record`` (aggregator pipeline, snowball stage, tips), triage
calls ``apply_triage`` per preview page, and staff call ``approve``/``reject`` (CLI or API). Nothing
else writes the ``candidates`` collection.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from config.discovery import DiscoverySettings
from crawler.discovery.models import (
    CandidateStatus,
    InvalidLink,
    ReviewConflict,
    Sighting,
    SourceKind,
    TriageResult,
    room_link,
)
from crawler.discovery.repo import CandidateRepo, RecordResult
from crawler.discovery.scoring import Scorer
from crawler.discovery.targets import Method, create_target, get_target
from foundation.errors import NotAuthorized, NotFound, StoreError
from foundation.links import LinkKind, TgLink, normalize
from foundation.logs import get_logger
from foundation.models import ChannelRef, utcnow
from storage.client import Doc, Store
from storage.repos.audience import FIGURES, AudienceRepo
from storage.repos.channels import ChannelRepo

log = get_logger(__name__)

_RETRIES = 8


def context_texts(doc: Doc) -> list[str]:
    """Every piece of discovery context of a candidate (what pages and people said around the link)."""
    texts: list[str] = []
    for entry in doc.get("provenance") or []:
        for value in (entry.get("context") or {}).values():
            if isinstance(value, list):
                texts.extend(str(v) for v in value)
            elif value:
                texts.append(str(value))
        if entry.get("note"):
            texts.append(str(entry["note"]))
    return list(dict.fromkeys(texts))


class FoundRoom(Protocol):
    """A room Telegram itself named (``telegram_watch.discover.Found``): recommendation or search hit."""

    @property
    def link(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def via(self) -> str | None: ...
    @property
    def title(self) -> str | None: ...
    @property
    def participants(self) -> int | None: ...
    @property
    def text(self) -> str | None: ...


class DiscoveryService:
    def __init__(self, store: Store, settings: DiscoverySettings | None = None, scorer: Scorer | None = None) -> None:
        self.store = store
        self.settings = settings or DiscoverySettings()
        self.repo = CandidateRepo(store)
        self._scorer = scorer

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            self._scorer = Scorer.from_file(self.settings.terms_file)
        return self._scorer

    # -- sources ------------------------------------------------------------------------------------

    async def record(self, sightings: Sequence[Sighting]) -> RecordResult:
        return await self.repo.record(sightings, max_provenance=self.settings.max_provenance)

    async def record_aggregator_page(
        self,
        site: str,
        page_url: str,
        found: Sequence[tuple[TgLink, dict[str, Any]]],
        seen_at: datetime,
        *,
        max_new: int | None = None,
    ) -> RecordResult:
        """Links one aggregator page showed, each with its context; non-room links are dropped.

        ``max_new``: at most this many *new* candidates (a page of 10,000 links must not flood the
        review queue); sightings of known candidates always count. Left-out links are in ``capped``."""
        sightings = []
        for link, context in found:
            room = room_link(link)
            if room is None:
                continue
            sightings.append(
                Sighting.of(
                    room,
                    SourceKind.AGGREGATOR,
                    site,
                    seen_at,
                    page_url=page_url,
                    context=context,
                    priority=self.settings.aggregator_priority,
                )
            )
        if max_new is None:
            return await self.record(sightings)
        known = await self.repo.existing(s.link for s in sightings)
        kept: list[Sighting] = []
        new: set[str] = set()
        capped: dict[str, None] = {}
        for sighting in sightings:
            if sighting.link not in known and sighting.link not in new:
                if len(new) >= max_new:
                    capped[sighting.link] = None
                    continue
                new.add(sighting.link)
            kept.append(sighting)
        result = await self.record(kept)
        result.capped = tuple(capped)
        return result

    async def record_mtproto(self, found: Sequence[FoundRoom], seen_at: datetime) -> RecordResult:
        """Rooms from Telegram's recommendations or global search, each with its provenance
        (``source`` = ``mtproto_recommendation`` or ``mtproto_search:<term>``, the seed channel or
        found message as ``page_url``, the account as ``note``). Rooms without a public link are
        left out: nothing could triage or crawl them."""
        sightings = []
        for room in found:
            link = room_link(room.link) if room.link else None
            if link is None:
                continue
            context = {"title": room.title, "members": room.participants, "text": room.text}
            sightings.append(
                Sighting.of(
                    link,
                    SourceKind.MTPROTO,
                    room.source,
                    seen_at,
                    page_url=room.via,
                    note=f"account {room.account}",
                    context=context,
                    priority=self.settings.aggregator_priority,
                )
            )
        return await self.record(sightings)

    async def add_tip(self, link: str, *, source: str, note: str | None = None) -> Doc:
        """A victim's or hotline's report: a candidate with that provenance and the tip priority."""
        room = room_link(link.strip())
        if room is None:
            raise InvalidLink(f"not a Telegram channel, group or invite link: {link[:200]!r}")
        if not source.strip():
            raise InvalidLink("a tip needs a source (who reported it)")
        sighting = Sighting.of(
            room, SourceKind.TIP, source.strip(), utcnow(), note=note, priority=self.settings.tip_priority
        )
        await self.record([sighting])
        doc = await self.repo.get(room.canonical)
        if doc is None:  # pragma: no cover - just written
            raise StoreError(f"candidate {room.canonical} vanished after it was written")
        return doc

    # -- triage -------------------------------------------------------------------------------------

    async def pending(self, limit: int | None = None, *, statuses: Sequence[CandidateStatus] = ()) -> list[Doc]:
        """Candidates to triage, highest priority first (default: status ``new``)."""
        return await self.repo.list(
            statuses=list(statuses) or [CandidateStatus.NEW], limit=limit or self.settings.triage_batch
        )

    def score_doc(self, doc: Doc) -> tuple[float, list[dict[str, Any]]]:
        triage = doc.get("triage") or {}
        result = self.scorer.score(triage.get("title"), triage.get("description"), context_texts(doc))
        return result.value, [m.as_dict() for m in result.matches]

    async def apply_triage(self, result: TriageResult) -> Doc:
        """Record one preview page on its candidate; a failed fetch leaves the status ``new``."""
        for _ in range(_RETRIES):
            doc = await self.repo.get(result.link)
            if doc is None:
                raise NotFound(f"no candidate {result.link}", url=result.link)
            updated = dict(doc)
            attempts = int(doc.get("triage_attempts", 0)) + 1
            updated["triage_attempts"] = attempts
            if result.error is not None:
                updated["triage_error"] = {**result.error, "at": result.fetched_at.isoformat()}
                if await self.repo.replace(updated):
                    return updated
                continue
            updated["triage"] = result.to_doc()
            updated["triage_error"] = None
            updated["type"] = result.type
            updated["title"] = result.title
            updated["state"] = result.state
            updated["members"] = result.members if result.members is not None else result.subscribers
            updated["online"] = result.online
            updated["verified"] = result.verified
            updated["score"], updated["matched_terms"] = self.score_doc(updated)
            updated["triaged_ts"] = result.fetched_at.timestamp()
            if updated.get("status") == CandidateStatus.NEW.value:
                updated["status"] = CandidateStatus.TRIAGED.value
            if await self.repo.replace(updated):
                await self._record_audience(result)
                await self._description_links(updated, result)
                return updated
        raise StoreError(f"candidate {result.link}: lost {_RETRIES} concurrent updates in a row")

    async def _record_audience(self, result: TriageResult) -> None:
        """The figures of the preview page join the entity's growth series (issue 19): a bot found in a
        button has no channel document, so its monthly users are charted from these points alone.
        Invite links name no entity a series could follow (the room is unknown until joined): skipped."""
        link = normalize(result.link)
        username = result.username or (link.username if link is not None else None)
        if not username:
            return
        ref = ChannelRef(username=username)
        entity = await ChannelRepo(self.store).resolve(ref) or ref.natural_key()
        figures = {name: getattr(result, name) for name in FIGURES}
        await AudienceRepo(self.store).record(
            entity, source="triage", at=result.fetched_at, kind=result.type, figures=figures
        )

    async def _description_links(self, doc: Doc, result: TriageResult) -> None:
        """Rooms a preview page's description names are found one level deeper (snowball)."""
        depth = int(doc.get("depth", 0)) + 1
        if depth > self.settings.max_depth or not result.description_links:
            return
        sightings = []
        for text in result.description_links[: self.settings.max_links_per_message]:
            room = room_link(text)
            if room is None or room.canonical == doc["_id"]:
                continue
            sightings.append(
                Sighting.of(
                    room,
                    SourceKind.SNOWBALL,
                    str(doc["_id"]),
                    result.fetched_at,
                    page_url=result.page_url,
                    context={"text": (result.description or "")[:500]},
                    depth=depth,
                    priority=self.settings.snowball_priority,
                )
            )
        if sightings:
            await self.record(sightings)

    # -- review -------------------------------------------------------------------------------------

    async def _candidate(self, link: str) -> Doc:
        room = room_link(link.strip())
        key = room.canonical if room is not None else link.strip()
        doc = await self.repo.get(key)
        if doc is None:
            raise NotFound(f"no candidate {link!r}", url=key, code="candidates.unknown", params={"link": link[:200]})
        return doc

    async def approve(
        self,
        link: str,
        *,
        actor: str,
        method: Method | None = None,
        authorization_id: str | None = None,
        note: str | None = None,
    ) -> Doc:
        """Turn a candidate into a crawl target (public: web by default; invite: MTProto + authorization)."""
        doc = await self._candidate(link)
        if doc.get("status") == CandidateStatus.APPROVED.value:
            target = await get_target(self.store, doc["_id"])
            if target is not None:
                return target
        if doc.get("kind") == LinkKind.INVITE.value:
            await self._check_invite_authorization(doc, authorization_id)
            method = "mtproto"
        chosen: Method = method or "web"
        target = await create_target(self.store, doc["_id"], chosen, authorization_id=authorization_id)
        review = {"action": "approved", "by": actor, "at": utcnow().isoformat(), "method": chosen, "note": note}
        if authorization_id:
            review["authorization_id"] = authorization_id
        await self._set_status(doc, CandidateStatus.APPROVED, review)
        log.info("candidate approved", link=doc["_id"], method=chosen, actor=actor)
        return target

    async def _check_invite_authorization(self, doc: Doc, authorization_id: str | None) -> None:
        from storage.repos.authorizations import AuthorizationRepo, invite_scope

        invite_hash = str(doc["_id"]).rsplit("+", 1)[-1]
        if authorization_id is None:
            raise NotAuthorized(
                f"{doc['_id']} is an invite: approving it needs an active authorization that covers "
                f"{invite_scope(invite_hash)!r} (--authorization ID)",
                code="candidates.invite_needs_authorization",
                params={"link": doc["_id"]},
            )
        auth = await AuthorizationRepo(self.store).get(authorization_id)
        if auth is None:
            raise NotAuthorized(f"no authorization {authorization_id!r}", code="authorizations.unknown",
                                params={"id": authorization_id})  # fmt: skip
        if auth.get("revoked"):
            raise NotAuthorized(f"authorization {authorization_id!r} is revoked", code="authorizations.revoked",
                                params={"id": authorization_id})  # fmt: skip
        if float(auth.get("valid_until") or 0) <= time.time():
            raise NotAuthorized(f"authorization {authorization_id!r} has expired", code="authorizations.expired",
                                params={"id": authorization_id})  # fmt: skip
        if invite_scope(invite_hash) not in (auth.get("scope") or []):
            raise NotAuthorized(f"authorization {authorization_id!r} does not cover {invite_scope(invite_hash)!r}",
                                code="authorizations.not_covering", params={"id": authorization_id})  # fmt: skip

    async def reject(self, link: str, *, actor: str, note: str | None = None) -> Doc:
        doc = await self._candidate(link)
        if doc.get("status") == CandidateStatus.APPROVED.value:
            raise ReviewConflict(f"{doc['_id']} is approved (a target exists); pause the target instead",
                                 code="candidates.already_approved", params={"link": doc["_id"]})  # fmt: skip
        review = {"action": "rejected", "by": actor, "at": utcnow().isoformat(), "note": note}
        return await self._set_status(doc, CandidateStatus.REJECTED, review)

    async def _set_status(self, doc: Doc, status: CandidateStatus, review: dict[str, Any]) -> Doc:
        for _ in range(_RETRIES):
            updated = {**doc, "status": status.value, "review": review}
            if await self.repo.replace(updated):
                return updated
            doc = await self._candidate(str(doc["_id"]))
        raise StoreError(f"candidate {doc['_id']}: lost {_RETRIES} concurrent updates in a row")

    async def list(
        self, *, statuses: Iterable[CandidateStatus] = (), limit: int = 1000, order: str = "priority"
    ) -> list[Doc]:
        return await self.repo.list(statuses=list(statuses), limit=limit, order=order)


def summary_line(doc: Doc) -> dict[str, Any]:
    """The review view of a candidate: what ``candidates list --json`` prints, one object per line."""
    return {
        "link": doc["_id"],
        "kind": doc.get("kind"),
        "type": doc.get("type"),
        "title": doc.get("title"),
        "members": doc.get("members"),
        "state": doc.get("state"),
        "score": doc.get("score"),
        "status": doc.get("status"),
        "priority": doc.get("priority"),
        "depth": doc.get("depth"),
        "matched_terms": sorted({m["term"] for m in doc.get("matched_terms") or []}),
        "provenance": doc.get("provenance") or [],
    }

"""Takedown requests: create, send, re-check, re-open — each step a ledger entry.

Why every step goes through here: a request's worth in court and to a regulator is its history
(what was reported, when it was sent, when each item was seen gone), so every change is appended to
the evidence ledger *before* the request document is written. A crash between the two leaves an
entry for a change that is then retried, never a change without an entry.

Re-check cadence (``next_check_at`` per item, ``config.takedowns``): items of young requests are
checked often, old ones rarely (``interval_for_age``); a failed check is retried sooner, doubling;
a removed item is checked ``removed_rechecks`` more times, further apart each time, to see it stay
gone; then it is final. A manual ``recheck ID`` checks every item now.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from config.takedowns import TakedownSettings
from crawler.evidence.entries import takedown_entry
from crawler.evidence.ledger import Ledger
from crawler.evidence.redaction import EVERY_CASE, Readership, redact_payloads
from crawler.takedowns.items import ItemBuilder
from crawler.takedowns.models import (
    ItemStatus,
    ProbeItem,
    ProbeResult,
    Reason,
    RequestStatus,
    SendFailure,
    Sending,
    TakedownItem,
    TakedownRequest,
    derive_status,
)
from crawler.takedowns.probe import Probe
from foundation.case_ids import validate_case_id
from foundation.errors import NotFound, StoreError, TgwatchError
from foundation.logs import get_logger
from foundation.models import Alert, AlertKind, from_mongo_dt, utcnow
from storage.client import Store
from storage.repos.alerts import CASE_SCOPED_KINDS, AlertRepo
from storage.repos.media import MediaRepo
from storage.repos.takedowns import TakedownRepo

log = get_logger(__name__)

Clock = Callable[[], datetime]
#: how long one change may hold a request (a crashed holder's lock expires after this)
LOCK_SECONDS = 30.0


class Conflict(TgwatchError):
    kind = "takedown_conflict"


class InvalidChange(TgwatchError, ValueError):
    """A review step that makes no sense (no reason given, every item removed): a clear error."""

    kind = "takedown_invalid"


class TooManyItems(TgwatchError):
    kind = "takedown_too_large"


#: items in one request: a report a moderator can work through (an alert on widely shared media
#: can name thousands of messages; those belong in several requests or a channel report)
MAX_ITEMS = 500


@dataclass
class RecheckSummary:
    requests: int = 0
    checked: int = 0
    results: Counter[str] = field(default_factory=Counter)  # "removed/post_not_found" → n
    changed: int = 0
    reopened: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "checked": self.checked,
            "results": dict(sorted(self.results.items())),
            "changed": self.changed,
            "reopened": self.reopened,
        }


class TakedownService:
    def __init__(
        self, store: Store, ledger: Ledger, settings: TakedownSettings | None = None, *, clock: Clock = utcnow
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.settings = settings or TakedownSettings()
        self.clock = clock
        self.repo = TakedownRepo(store)
        self.items = ItemBuilder(store, ledger)
        self._alerts = AlertRepo(store)
        self._media = MediaRepo(store)

    # -- reading ---------------------------------------------------------------------------------
    async def get(self, request_id: str) -> TakedownRequest:
        doc = await self.repo.get(request_id.strip().upper())
        if doc is None:
            raise NotFound(f"no takedown request {request_id!r}", code="takedowns.unknown",
                           params={"id": request_id[:40]})  # fmt: skip
        return TakedownRequest.from_doc(doc)

    async def recent(
        self, *, statuses: Sequence[str] | None = None, before_ts: float | None = None, limit: int = 50
    ) -> list[TakedownRequest]:
        docs = await self.repo.recent(statuses=statuses, before_ts=before_ts, limit=limit)
        return [TakedownRequest.from_doc(d) for d in docs]

    async def all(self) -> list[TakedownRequest]:
        return [TakedownRequest.from_doc(d) for d in await self.repo.all()]

    async def history(self, request_id: str, readers: Readership = EVERY_CASE) -> list[dict[str, Any]]:
        """The request's ledger entries (payloads), oldest first: the whole story, verifiable. An
        entry naming a watchlist alert is withheld from ``readers`` outside its case (the API and the
        console pass the caller's; the default is the shell operator's, who reads everything)."""
        req = await self.get(request_id)
        return redact_payloads(await self.ledger.payloads(req.ledger), readers)

    # -- creating --------------------------------------------------------------------------------
    async def create(
        self,
        *,
        reason: Reason,
        actor: str,
        alert: str | None = None,
        messages: Sequence[str] = (),
        channel: str | None = None,
        case: str | None = None,
        note: str | None = None,
        policy: str | None = None,
        cases: Sequence[str] | None = None,
    ) -> TakedownRequest:
        """One request for the items named by an alert, by message references and/or a channel.

        ``policy`` says a list's takedown policy drafted it (``draft``/``auto``), not a person.
        ``cases`` are the caller's (``CaseAccess.cases_of``; None: every case): a case-scoped alert
        (a watchlist match) of another case does not exist for them, as in the alert list."""
        if case is not None:
            validate_case_id(case)
        now = self.clock()
        keys: list[str] = [await self.items.message_key(m) for m in messages]
        detected: list[datetime] = []
        alerts: list[str] = []
        alert_cases: list[str] = []
        if alert is not None:
            doc = await self._alerts.get(alert)
            if doc is None or not _alert_visible(doc, cases):
                raise NotFound(f"no alert {alert!r}", code="alerts.unknown", params={"key": alert[:300]})
            alerts.append(alert)
            if doc.get("kind") in CASE_SCOPED_KINDS:  # a watchlist match: the entry naming it is her case's
                alert_cases = sorted(str(c) for c in (doc.get("details") or {}).get("cases") or [])
            raised = from_mongo_dt(doc.get("raised_at"))  # only this: the stored alert may carry more fields
            if raised is not None:
                detected.append(raised)
            keys += await self._alert_messages(doc)
        items = await self.items.message_items(keys, now) if keys else []
        if channel is not None:
            items.append(await self.items.channel_item(await self.items.channel_key(channel), now))
        if len(items) > MAX_ITEMS:
            raise TooManyItems(
                f"{len(items)} items in one request (at most {MAX_ITEMS}): split it, e.g. report the channel whole",
                code="takedowns.too_many_items",
                params={"count": len(items), "max": MAX_ITEMS},
            )
        if not items:
            raise NotFound("nothing to report: name an alert with stored messages, messages or a channel",
                           code="takedowns.nothing_to_report")  # fmt: skip
        items = [i.model_copy(update={"next_check_at": now}) for i in items]
        detected += [i.first_seen_at for i in items if i.first_seen_at is not None]
        request_id = f"TD-{await self.repo.next_number():06d}"
        req = TakedownRequest(
            id=request_id, reason=reason, case=case, note=note, items=items, alerts=alerts,
            detected_at=min(detected) if detected else None, created_at=now, created_by=actor, policy=policy,
        )  # fmt: skip
        entry = self._entry(
            req, "create", actor, at=now,
            items=[_item_summary(i) for i in items], alerts=alerts, note=note,
            detected_at=req.detected_at, policy=policy,
        )  # fmt: skip
        entry["cases"] = sorted({*entry["cases"], *alert_cases})
        seq = await self.ledger.append(entry)
        req = req.model_copy(update={"ledger": [seq]})
        await self.repo.insert(req.to_doc())
        # reported media are evidence of the request: their quarantined bytes are never purged
        await self._media.hold(sorted({m.sha256 for i in items for m in i.media}))
        log.info("takedown request created", request=request_id, items=len(items), reason=reason.value)
        return req

    async def _alert_messages(self, doc: Mapping[str, Any]) -> list[str]:
        """The alert's message, and every stored message that holds the alerted media."""
        found: list[str] = []
        message = (doc.get("details") or {}).get("message")
        if isinstance(message, str) and "/" in message:
            found.append(message)
        sha = doc.get("sha256")
        if isinstance(sha, str):
            from storage.repos.messages import MessageRepo

            found += await MessageRepo(self.store).keys_with_media([sha])
        return list(dict.fromkeys(found))

    # -- sending ---------------------------------------------------------------------------------
    async def mark_sent(
        self, request_id: str, *, via: str, actor: str, reference: str | None = None
    ) -> TakedownRequest:
        via = via.strip()
        if not via:
            raise ValueError("say how the request was sent (--via), e.g. 'email:abuse@telegram.org'")
        return await self._add_sending(request_id, actor=actor, via=via, reference=reference)

    async def record_sending(
        self,
        request_id: str,
        *,
        actor: str,
        channel: str,
        via: str,
        sha256: str,
        answer: Mapping[str, Any],
        reference: str | None = None,
        attempt: int = 1,
    ) -> TakedownRequest:
        """A sender sent the request: a ``sent`` entry with the digest of exactly what left and the answer."""
        return await self._add_sending(
            request_id, actor=actor, via=via, reference=reference, channel=channel, sha256=sha256,
            answer=dict(answer), attempt=attempt,
        )  # fmt: skip

    async def _add_sending(
        self,
        request_id: str,
        *,
        actor: str,
        via: str,
        reference: str | None,
        channel: str | None = None,
        sha256: str | None = None,
        answer: dict[str, Any] | None = None,
        attempt: int | None = None,
    ) -> TakedownRequest:
        async def change(req: TakedownRequest) -> tuple[TakedownRequest, list[dict[str, Any]]]:
            now = self.clock()
            sending = Sending(
                via=via, by=actor, at=now, reference=reference, items=len(req.items), channel=channel,
                sha256=sha256, answer=answer,
            )  # fmt: skip
            soon = now + timedelta(seconds=self.settings.fresh_interval)
            items = [
                i.model_copy(update={"next_check_at": min(i.next_check_at, soon)})
                if i.next_check_at is not None and i.status is not ItemStatus.REMOVED
                else i
                for i in req.items
            ]
            new = req.model_copy(update={"sendings": [*req.sendings, sending], "items": items})
            entry = self._entry(
                req, "sent", actor, at=now, via=via, reference=reference, items=len(req.items), channel=channel,
                sha256=sha256, answer=answer, attempt=attempt,
            )  # fmt: skip
            return new, [entry]

        return await self._update(request_id, change)

    async def record_failure(
        self, request_id: str, *, actor: str, channel: str, attempt: int, error: str, sha256: str | None
    ) -> TakedownRequest:
        """A sending failed: kept on the request (shown) and a ``send_failed`` ledger entry."""

        async def change(req: TakedownRequest) -> tuple[TakedownRequest, list[dict[str, Any]]]:
            now = self.clock()
            failure = SendFailure(channel=channel, at=now, attempt=attempt, error=error[:1000], sha256=sha256, by=actor)
            entry = self._entry(
                req, "send_failed", actor, at=now, channel=channel, attempt=attempt, error=error[:1000], sha256=sha256,
                subjects=[],
            )  # fmt: skip
            return req.model_copy(update={"failures": [*req.failures, failure]}), [entry]

        return await self._update(request_id, change)

    # -- review (drafts) -------------------------------------------------------------------------
    async def approve(self, request_id: str, *, actor: str) -> TakedownRequest:
        """Record that ``actor`` approved a draft for sending (the sending follows, by ``Dispatcher``)."""

        async def change(req: TakedownRequest) -> tuple[TakedownRequest, list[dict[str, Any]]]:
            _must_be_unsent(req, "approve")
            if req.approved_at is not None:  # two clicks at once must not send twice
                raise Conflict(
                    f"{req.id} was already approved by {req.approved_by}; use `takedown send` to retry",
                    code="takedowns.already_approved",
                    params={"id": req.id, "by": req.approved_by},
                )
            now = self.clock()
            new = req.model_copy(update={"approved_at": now, "approved_by": actor})
            return new, [self._entry(req, "approved", actor, at=now, subjects=[])]

        return await self._update(request_id, change)

    async def reject(self, request_id: str, *, reason: str, actor: str) -> TakedownRequest:
        """A reviewer decided a draft must not be sent: why, by whom (a ledger entry); its checks stop."""
        reason = reason.strip()
        if not reason:
            raise InvalidChange("say why the draft is rejected (--reason)", code="takedowns.reject_reason_required")

        async def change(req: TakedownRequest) -> tuple[TakedownRequest, list[dict[str, Any]]]:
            _must_be_unsent(req, "reject")
            now = self.clock()
            items = [i.model_copy(update={"next_check_at": None}) for i in req.items]
            new = req.model_copy(
                update={"rejected_at": now, "rejected_by": actor, "reject_reason": reason[:1000], "items": items}
            )
            return new, [self._entry(req, "rejected", actor, at=now, why=reason[:1000], subjects=[])]

        return await self._update(request_id, change)

    async def edit(
        self,
        request_id: str,
        *,
        actor: str,
        note: str | None = None,
        reason: Reason | None = None,
        remove_items: Sequence[str] = (),
    ) -> TakedownRequest:
        """Change an unsent request's note, reason or items (removing items): one ``edited`` entry."""

        async def change(req: TakedownRequest) -> tuple[TakedownRequest, list[dict[str, Any]]]:
            _must_be_unsent(req, "edit")
            update: dict[str, Any] = {}
            changes: dict[str, Any] = {}
            if note is not None and note != req.note:
                update["note"] = note or None
                changes["note"] = {"from": req.note, "to": note or None}
            if reason is not None and reason is not req.reason:
                update["reason"] = reason
                changes["reason"] = {"from": req.reason.value, "to": reason.value}
            if remove_items:
                unknown = [i for i in remove_items if req.item(i) is None]
                if unknown:
                    raise NotFound(f"{req.id} has no item {unknown[0]!r}", code="takedowns.unknown_item",
                                   params={"id": req.id, "item": unknown[0][:100]})  # fmt: skip
                kept = [i for i in req.items if i.item_id not in set(remove_items)]
                if not kept:
                    raise InvalidChange(
                        "a request needs at least one item (reject it instead)", code="takedowns.last_item"
                    )
                update["items"] = kept
                changes["removed_items"] = list(remove_items)
            if not update:
                return req, []
            new = req.model_copy(update=update)
            return new, [self._entry(new, "edited", actor, at=self.clock(), changes=changes, subjects=[])]

        return await self._update(request_id, change)

    # -- re-checking -----------------------------------------------------------------------------
    async def recheck(
        self,
        probes: Mapping[str, Probe],
        *,
        request_id: str | None = None,
        limit: int | None = None,
    ) -> RecheckSummary:
        """Check the items due now (or every item of ``request_id``) with the probe of each item's source."""
        now = self.clock()
        if request_id is not None:
            reqs = [await self.get(request_id)]
            wanted = {r.id: [i.item_id for i in r.items] for r in reqs}
        else:
            reqs = [
                TakedownRequest.from_doc(d) for d in await self.repo.due(now.timestamp(), limit or self.settings.batch)
            ]
            wanted = {
                r.id: [i.item_id for i in r.items if i.next_check_at is not None and i.next_check_at <= now]
                for r in reqs
            }
        summary = RecheckSummary(requests=len(reqs))
        by_id: dict[str, ProbeItem] = {}
        for r in reqs:
            for i in r.items:
                if i.item_id in wanted[r.id]:
                    by_id.setdefault(i.item_id, ProbeItem.of(i))
        results = await self._probe(probes, list(by_id.values()))
        summary.checked = len(results)
        for res in results.values():
            summary.results[f"{res.status.value}/{res.reason}"] += 1
        for r in reqs:
            mine = [results[i] for i in wanted[r.id] if i in results]
            if mine:
                changed, reopened = await self.apply_results(r.id, mine)
                summary.changed += changed
                if reopened:
                    summary.reopened.append(r.id)
        return summary

    async def _probe(self, probes: Mapping[str, Probe], items: list[ProbeItem]) -> dict[str, ProbeResult]:
        groups: dict[str, list[ProbeItem]] = {}
        for item in items:
            groups.setdefault(item.source.value, []).append(item)
        out: dict[str, ProbeResult] = {}

        async def one(method: str, group: list[ProbeItem]) -> None:
            probe = probes.get(method)
            if probe is None:
                for item in group:
                    out[item.item_id] = _unknown(
                        item, method, "no_account", f"no {method} probe configured", self.clock()
                    )
                return
            try:
                answers = await probe.check(group)
            except StoreError:
                raise
            except TgwatchError as exc:  # a probe broke its contract: keep the run, say why
                answers = [_unknown(i, method, "fetch_failed", exc.message, self.clock()) for i in group]
            for res in answers:
                out[res.item_id] = res
            for item in group:
                if item.item_id not in out:
                    out[item.item_id] = _unknown(item, method, "fetch_failed", "the probe gave no answer", self.clock())

        await asyncio.gather(*(one(m, g) for m, g in groups.items()))
        return out

    async def apply_results(self, request_id: str, results: Sequence[ProbeResult]) -> tuple[int, bool]:
        """Record check results on a request; returns (item status changes, whether it re-opened)."""
        counts = {"changed": 0, "reopened": False, "removed_set": False}
        came_back_ids: list[str] = []

        async def change(req: TakedownRequest) -> tuple[TakedownRequest, list[dict[str, Any]]]:
            now = self.clock()
            entries: list[dict[str, Any]] = []
            checks: list[dict[str, Any]] = []
            items = list(req.items)
            came_back: list[str] = []
            counts["changed"] = 0
            counts["removed_set"] = False
            for res in results:
                idx = next((n for n, i in enumerate(items) if i.item_id == res.item_id), None)
                if idx is None:
                    continue
                old = items[idx]
                if old.checked_at is not None and res.checked_at <= old.checked_at:
                    continue  # an overlapping run already recorded a later look at this item
                new = self._next_item(req, old, res)
                items[idx] = new
                checks.append(_check_doc(req.id, new, res))
                if new.status is not old.status:
                    counts["changed"] += 1
                    entries.append(
                        self._entry(
                            req, "item_status", "tgwatch", at=res.checked_at, item=old.item_id,
                            subjects=[old.item_id], **{"from": old.status.value}, to=new.status.value,
                            status_reason=res.reason, method=res.method, url=res.url, detail=res.detail,
                        )
                    )  # fmt: skip
                    if (old.status is ItemStatus.REMOVED) != (new.status is ItemStatus.REMOVED):
                        counts["removed_set"] = True  # what re-upload matching watches changed
                    if old.status is ItemStatus.REMOVED and new.status is ItemStatus.ONLINE:
                        came_back.append(old.item_id)
            update: dict[str, Any] = {"items": items}
            if came_back:
                update |= {"reopened_at": now, "reopen_count": req.reopen_count + 1}
                entries.append(
                    self._entry(
                        req, "reopen", "tgwatch", at=now, cause="back_online", items=came_back, subjects=came_back
                    )
                )
            new_req = req.model_copy(update=update)
            new_req = new_req.model_copy(update={"removed_at": _all_removed_at(new_req)})
            await self.repo.add_checks(checks)
            counts["reopened"] = bool(came_back)
            came_back_ids[:] = came_back
            return new_req, entries

        req = await self._update(request_id, change)
        if counts["reopened"] or counts["removed_set"]:
            await self.repo.bump_state()
        for item_id in came_back_ids:
            await self._alerts.raise_alert(
                Alert(
                    key=f"back-online/{req.id}/{item_id}/{req.reopen_count}",
                    kind=AlertKind.REUPLOAD,
                    summary=f"{item_id} of {req.id} was found removed and is online again: send the request again",
                    details={"request": req.id, "item": item_id, "cause": "back_online"},
                    channels=[item_id.split(":", 1)[-1].split("/", 1)[0]],
                    raised_at=self.clock(),
                )
            )
        return int(counts["changed"]), bool(counts["reopened"])

    def _next_item(self, req: TakedownRequest, old: TakedownItem, res: ProbeResult) -> TakedownItem:
        s = self.settings
        seen = res.checked_at  # when the check looked: what the record says
        now = self.clock()  # when the next check is planned from
        base = req.last_sent_at or req.created_at
        age_interval = s.interval_for_age(max(0.0, (now - base).total_seconds()))
        upd: dict[str, Any] = {"checked_at": seen, "checks": old.checks + 1, "last_result": res.status}
        if res.status is ItemStatus.UNKNOWN:
            failures = old.failures + 1
            upd["failures"] = failures
            retry = min(s.unknown_retry * 2 ** (failures - 1), age_interval)
            upd["next_check_at"] = now + timedelta(seconds=retry)
            if old.status is ItemStatus.PENDING:
                upd |= {"status": ItemStatus.UNKNOWN, "status_reason": res.reason, "status_since": seen}
            return old.model_copy(update=upd)
        upd["failures"] = 0
        if res.status is not old.status:
            upd |= {"status": res.status, "status_since": seen}
        upd["status_reason"] = res.reason
        if res.status is ItemStatus.REMOVED:
            already = old.status is ItemStatus.REMOVED
            removed_checks = old.removed_checks + 1 if already else 0
            upd |= {
                "removed_at": old.removed_at if already and old.removed_at else seen,
                "removed_checks": removed_checks,
            }
            if removed_checks < s.removed_rechecks:
                upd["next_check_at"] = now + timedelta(seconds=s.removed_recheck_every * 2**removed_checks)
            else:
                upd["next_check_at"] = None  # final: stayed gone through every extra check
        else:
            upd |= {"removed_at": None, "removed_checks": 0, "next_check_at": now + timedelta(seconds=age_interval)}
        return old.model_copy(update=upd)

    # -- re-uploads ------------------------------------------------------------------------------
    async def reopen_for_reupload(
        self, request_id: str, *, original: str, message_key: str, match: Mapping[str, Any]
    ) -> bool:
        """A removed item's media appeared again in ``message_key``: add it to the request, re-open
        the request and raise an alert. False when that message is already on the request."""
        req = await self.get(request_id)
        item_id = f"message:{message_key}"
        if req.item(item_id) is not None:
            return False
        now = self.clock()
        built = (await self.items.message_items([message_key], now))[0]
        new_item = built.model_copy(update={"added_because": f"reupload of {original}", "next_check_at": now})

        async def change(current: TakedownRequest) -> tuple[TakedownRequest, list[dict[str, Any]]]:
            if current.item(item_id) is not None:
                return current, []
            entry = self._entry(
                current, "reopen", "tgwatch", at=now, cause="reupload", original=original,
                item=_item_summary(new_item), match=dict(match), subjects=[original, item_id],
            )  # fmt: skip
            new = current.model_copy(
                update={
                    "items": [*current.items, new_item],
                    "reopened_at": now,
                    "reopen_count": current.reopen_count + 1,
                    "removed_at": None,
                }
            )
            return new, [entry]

        await self._update(request_id, change)
        await self._alerts.raise_alert(
            Alert(
                key=f"reupload/{request_id}/{message_key}",
                kind=AlertKind.REUPLOAD,
                sha256=match.get("sha256") if isinstance(match.get("sha256"), str) else None,
                summary=f"removed item {original} of {request_id} is back in {message_key} "
                f"({match.get('signal', 'match')}, distance {match.get('distance', 0)})",
                details={"request": request_id, "original": original, "message": message_key, **dict(match)},
                channels=[message_key.split("/", 1)[0]],
                raised_at=now,
            )
        )
        log.warning("takedown re-opened: re-upload", request=request_id, original=original, message=message_key)
        return True

    # -- plumbing --------------------------------------------------------------------------------
    def _entry(self, req: TakedownRequest, action: str, actor: str, *, at: datetime, **fields: Any) -> dict[str, Any]:
        subjects = fields.pop("subjects", None) or [i.item_id for i in req.items]
        return takedown_entry(
            action=action,
            request=req.id,
            platform=req.platform.value,
            reason=req.reason.value,
            case=req.case,
            actor=actor,
            at=at,
            item_subjects=subjects,
            fields=fields,
        )

    async def _update(
        self,
        request_id: str,
        change: Callable[[TakedownRequest], Any],
    ) -> TakedownRequest:
        """Change one request under its lock: read, change, append the ledger entries, write.

        The per-request lock (a lease on the document, expiring after ``LOCK_SECONDS``) serialises
        changes, so concurrent changes (a re-check run, two people marking it sent) each get their
        own entries, once; without it a lost race would leave entries for a change made again.
        Only a crash between the append and the write leaves an entry the request does not list.
        """
        token = uuid.uuid4().hex
        await self._lock(request_id, token)
        try:
            req = await self.get(request_id)
            new, entries = await change(req)
            if new is req and not entries:
                return req
            new = new.model_copy(update={"status": derive_status(new)})
            if new.status is not req.status:
                entries.append(
                    self._entry(
                        req, "status", "tgwatch", at=self.clock(), **{"from": req.status.value}, to=new.status.value,
                        subjects=[],
                    )
                )  # fmt: skip
            appended = await self.ledger.append_many(entries) if entries else []
            new = new.model_copy(update={"ledger": [*req.ledger, *(a.seq for a in appended)], "rev": req.rev + 1})
            if not await self.repo.replace_locked(new.to_doc(), token):
                raise Conflict(f"takedown request {request_id}: the lock expired during the change; try again",
                               code="takedowns.busy", params={"id": request_id})  # fmt: skip
            token = ""  # released by the write
            return new
        finally:
            if token:
                await self.repo.unlock(request_id, token)

    async def _lock(self, request_id: str, token: str) -> None:
        deadline = time.monotonic() + LOCK_SECONDS + 5
        delay = 0.01
        while not await self.repo.lock(request_id.strip().upper(), token, time.time(), LOCK_SECONDS):
            if await self.repo.get(request_id.strip().upper()) is None:
                raise NotFound(f"no takedown request {request_id!r}", code="takedowns.unknown",
                               params={"id": request_id[:40]})  # fmt: skip
            if time.monotonic() > deadline:
                raise Conflict(f"takedown request {request_id} is locked by another change; try again",
                               code="takedowns.busy", params={"id": request_id})  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)


def _must_be_unsent(req: TakedownRequest, what: str) -> None:
    if req.sendings:
        raise Conflict(f"cannot {what} {req.id}: it was already sent ({req.status.value})",
                       code="takedowns.already_sent", params={"id": req.id})  # fmt: skip
    if req.rejected_at is not None:
        raise Conflict(f"cannot {what} {req.id}: it was rejected by {req.rejected_by} ({req.reject_reason})",
                       code="takedowns.already_rejected", params={"id": req.id, "by": req.rejected_by})  # fmt: skip


def _unknown(item: ProbeItem, method: str, reason: str, detail: str, at: datetime) -> ProbeResult:
    return ProbeResult(
        item_id=item.item_id, status=ItemStatus.UNKNOWN, reason=reason, checked_at=at, method=method, detail=detail
    )


def _item_summary(item: TakedownItem) -> dict[str, Any]:
    return {
        "item": item.item_id,
        "link": item.link,
        "source": item.source.value,
        "media": [m.sha256 for m in item.media],
        "evidence": item.evidence,
    }


def _check_doc(request_id: str, item: TakedownItem, res: ProbeResult) -> dict[str, Any]:
    return {
        "_id": f"{request_id}/{item.item_id}/{item.checks}",
        "request": request_id,
        "item": item.item_id,
        "n": item.checks,
        "status": res.status.value,
        "reason": res.reason,
        "method": res.method,
        "url": res.url,
        "detail": res.detail,
        "checked_at": res.checked_at,
        "item_status": item.status.value,
    }


def _all_removed_at(req: TakedownRequest) -> datetime | None:
    if req.items and all(i.status is ItemStatus.REMOVED and i.removed_at for i in req.items):
        return max(i.removed_at for i in req.items if i.removed_at is not None)
    return None


__all__ = ["Conflict", "RecheckSummary", "RequestStatus", "TakedownService"]


def _alert_visible(doc: Mapping[str, Any], cases: Sequence[str] | None) -> bool:
    if cases is None or doc.get("kind") not in CASE_SCOPED_KINDS:
        return True
    return bool(set((doc.get("details") or {}).get("cases") or []) & set(cases))

"""One exchange sync: fetch from the checkpoint, apply additions and withdrawals, match retroactively,
send reviewers' verdicts back — recorded as a run with its figures.

Every page is applied and its checkpoint saved before the next page is fetched, so a sync that
fails half-way resumes where it stopped (additions are keyed, removals idempotent). Withdrawn
hashes are deleted from the list at once (StopNCII asks clients to), and the list's version change
makes every matcher drop them at its next refresh. New entries go through retroactive matching with
the list's takedown policy, as an imported file does.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from config import Settings
from crawler.hashing.exchanges import VERDICTS, Exchange, Feedback, FeedbackOutcome, Page, check_endpoint
from crawler.media.retro import AlertHook, RetroResult, retro_match
from foundation.logs import get_logger
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.hashlists import HashListRepo
from storage.repos.runs import RunRepo

log = get_logger(__name__)


class FeedbackFailed(Exception):
    """The exchange refused some reviewers' verdicts (the run ends as ``error`` naming them)."""


@dataclass
class SyncResult:
    exchange: str
    list: str
    run_id: str | None = None
    status: str = "ok"  # ok | error
    pages: int = 0
    added: int = 0
    withdrawn: int = 0
    skipped: int = 0
    feedback_sent: int = 0
    error: str | None = None
    retro: RetroResult | None = None
    seconds: float = 0.0
    checkpoint: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange, "list": self.list, "run_id": self.run_id, "status": self.status,
            "pages": self.pages, "added": self.added, "withdrawn": self.withdrawn, "skipped": self.skipped,
            "feedback_sent": self.feedback_sent, "error": self.error, "seconds": round(self.seconds, 3),
            "retro": self.retro.to_json() if self.retro else None,
        }  # fmt: skip


def secrets_of(settings: Settings) -> list[str]:
    """Every configured exchange secret (an error message naming a URL may carry a token)."""
    cfg = settings.exchanges
    found = [cfg.stopncii.fetch_key, cfg.stopncii.feedback_key, cfg.stopncii.subscription_key,
             cfg.ncmec.password, cfg.threatexchange.access_token]  # fmt: skip
    return [s.get_secret_value() for s in found if s is not None and s.get_secret_value()]


_TOKEN_PARAM = re.compile(r"(?i)((?:access_token|token|key|password)=)[^&\s'\"]+")


def redact(text: str, settings: Settings) -> str:
    """``text`` without any configured secret, raw or URL-encoded, nor any token-like query value."""
    for secret in secrets_of(settings):
        for form in {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}:
            text = text.replace(form, "***")
    return _TOKEN_PARAM.sub(r"\1***", text)


async def sync_exchange(
    store: Store, settings: Settings, exchange: Exchange, *, trigger: str = "manual", on_alert: AlertHook | None = None
) -> SyncResult:
    """Sync one exchange into its list (see the module doc); errors end the run as ``error``, with
    the pages fetched before them kept."""
    lists, runs = HashListRepo(store), RunRepo(store)
    result = SyncResult(exchange.name, exchange.list_name)
    started = time.perf_counter()
    fmt = f"exchange:{exchange.name}"
    async with runs.record(f"exchange:{exchange.name}:{exchange.list_name}", "exchange_sync", trigger=trigger) as run:
        result.run_id = run.id
        try:
            await check_endpoint(settings, exchange.base_url)
            doc = await lists.get(exchange.list_name)
            checkpoint = ((doc or {}).get("sync") or {}).get("checkpoint")
            pages = exchange.pages(checkpoint)
            while (page := await asyncio.to_thread(_next, pages)) is not None:
                await _apply(lists, exchange, page, result, fmt)
            await lists.save_sync(exchange.list_name, fmt, {"last_sync_ts": time.time(), "last_status": "ok"})
            if result.added:
                result.retro = await retro_match(store, settings, exchange.list_name, trigger="sync", on_alert=on_alert)
            feedback = await send_feedback(store, exchange)
            result.feedback_sent = len(feedback.sent)
            if feedback.errors:  # the fetch is kept; the verdicts not delivered go again next sync
                raise FeedbackFailed(
                    f"{len(feedback.errors)} feedback item(s) refused: " + "; ".join(feedback.errors[:5])
                )
        except Exception as exc:  # the exchange's HTTP, its records, the egress guard: one clear error
            result.status = run.status = "error"
            result.error = redact(f"{type(exc).__name__}: {exc}", settings)[:2000]
            failed = {"last_sync_ts": time.time(), "last_status": "error", "last_error": result.error}
            await lists.save_sync(exchange.list_name, fmt, failed)
        result.seconds = time.perf_counter() - started
        await runs.add(run.id, pages=result.pages, added=result.added, withdrawn=result.withdrawn,
                       skipped=result.skipped, feedback_sent=result.feedback_sent)  # fmt: skip
        run.extra = {"sync": result.to_json()}
    log.info("exchange_sync", **{k: v for k, v in result.to_json().items() if k != "retro"})
    return result


def _next(pages: Iterator[Page]) -> Page | None:
    return next(pages, None)


async def _apply(lists: HashListRepo, exchange: Exchange, page: Page, result: SyncResult, fmt: str) -> None:
    rows = [(e.signal_type, e.value, e.label) for e in page.add]
    keys = {(e.signal_type, e.value): e.key for e in page.add if e.key is not None}
    if rows:
        added = await lists.add_entries(exchange.list_name, fmt, rows, exchange_keys=keys)
        result.added += sum(added.values())
    if page.remove_values or page.remove_keys:
        result.withdrawn += await lists.remove_entries(
            exchange.list_name, values=page.remove_values, exchange_keys=page.remove_keys
        )
    result.pages += 1
    result.skipped += page.skipped
    result.checkpoint = page.checkpoint
    await lists.save_sync(exchange.list_name, fmt, {"checkpoint": page.checkpoint})


async def send_feedback(store: Store, exchange: Exchange) -> FeedbackOutcome:
    """Each match on the exchange's list whose review, or whose entry's exchange key, changed since
    it was last reported: StopNCII hears pending review / blocked / not blocked, NCMEC an upvote or
    downvote on the entry, ThreatExchange reactions on the indicator's descriptors — those the
    latest sync saw, so a descriptor fetched after the verdict was sent hears it too. Each item
    delivered is marked with its verdict and key, so nothing is sent twice; one that failed is tried
    again next sync. A match reported before keys were recorded is sent once more to every
    descriptor (reactions are idempotent)."""
    alerts = AlertRepo(store)
    keys = await HashListRepo(store).exchange_keys(exchange.list_name)
    due: list[tuple[str, Feedback]] = []
    for doc in await alerts.matches_of_list(exchange.list_name):
        details = doc.get("details") or {}
        verdict = str(doc.get("review") or "unreviewed")
        kind, value = str(details.get("signal_type")), str(details.get("value"))
        key = keys.get((kind, value))
        previous = str(doc["feedback_sent"]) if doc.get("feedback_sent") else None
        previous_key = str(doc["feedback_key"]) if doc.get("feedback_key") else None
        recorded = "feedback_key" in doc  # False: reported before keys were recorded
        unchanged = previous_key == key if recorded else key is None
        if verdict not in VERDICTS or (previous == verdict and unchanged):
            continue
        item = Feedback(kind, value, verdict, key, previous, previous_key if recorded else None)
        due.append((doc["_id"], item))
    if not due:
        return FeedbackOutcome()
    outcome = await asyncio.to_thread(exchange.send_feedback, [f for _, f in due])
    delivered = {id(f) for f in outcome.sent}
    for doc_id, item in due:
        if id(item) in delivered:
            await alerts.mark_feedback(doc_id, item.verdict, item.key)
    return outcome

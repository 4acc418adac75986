"""Changing crawl targets: add, pause, resume, remove, run now, and the review of proposed targets
(approve, reject). One implementation for the CLI and the console.

Why one module: ``tgwatch targets ...`` and the console's targets page must apply the same rules
(a configured target is paused through a database overlay, a group must exist, an invite needs
MTProto) and leave the same trace. Every change is recorded in the audit trail (``crawler.audit``)
with its actor, role and channel (``via``: ``cli`` or ``console``), so an auditor sees who paused
or removed a target whichever door they used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from config.targets import TargetsConfig, check_cron, parse_duration
from crawler.audit import AuditLog
from crawler.scheduling.plan import Schedule, build_schedules
from crawler.scheduling.tasks import CrawlTasks, Created
from foundation.errors import ConfigError, NotFound
from foundation.models import utcnow
from storage.client import Doc, Store
from storage.repos.targets import PROPOSED, REJECTED, TargetRepo, bot_proposal, canonical_target

#: priority of a task created by "run now": ahead of every scheduled crawl
RUN_NOW_PRIORITY = 1_000


@dataclass(frozen=True)
class Actor:
    """Who changes targets, as the audit trail records it."""

    name: str  # "token:<name>" or "cli:<user>"
    role: str  # the token's role, or "cli"
    via: str  # "console" | "cli"


async def _audit(audit: AuditLog, actor: Actor, action: str, target: str, **details: object) -> None:
    await audit.record_access(
        actor=actor.name, role=actor.role, action=action, target=target, via=actor.via, filter=dict(details)
    )


async def schedules(store: Store, config: TargetsConfig) -> list[Schedule]:
    """Every target's effective schedule: the configuration's plus the database's."""
    return build_schedules(config, await TargetRepo(store).list())


def check_schedule(config: TargetsConfig, *, every: str | None, cron: str | None, group: str | None,
                   jitter: str | None) -> None:  # fmt: skip
    """The schedule options a target may take; raises ``ConfigError`` with the reason."""
    if every and cron:
        raise ConfigError("give an interval or a cron expression, not both", code="targets.every_and_cron")
    for field, value in (("every", every), ("jitter", jitter)):
        try:
            seconds = parse_duration(value) if value is not None else None
        except ValueError as exc:
            raise ConfigError(str(exc), code="targets.bad_duration", params={"field": field, "value": value}) from exc
        if field == "every" and seconds is not None and seconds <= 0:
            raise ConfigError(f"interval {every!r} must be positive", code="targets.every_positive",
                              params={"value": every})  # fmt: skip
    if cron is not None:
        try:
            check_cron(cron)
        except ValueError as exc:
            raise ConfigError(str(exc), code="targets.bad_cron", params={"value": cron}) from exc
    if group is not None and group not in config.groups and group != "default":
        known = ", ".join(config.groups) or "none"
        raise ConfigError(f"no [groups.{group}] in the configuration (known: {known})", code="targets.unknown_group",
                          params={"group": group, "known": known})  # fmt: skip


async def add_target(
    store: Store,
    config: TargetsConfig,
    audit: AuditLog,
    actor: Actor,
    name: str,
    *,
    method: str,
    every: str | None = None,
    cron: str | None = None,
    group: str | None = None,
    jitter: str | None = None,
    priority: int | None = None,
) -> tuple[Doc, Schedule]:
    """Add NAME or change its schedule; returns the stored document and the effective schedule."""
    if method not in ("web", "mtproto"):
        raise ConfigError(f"method must be web or mtproto, got {method!r}", code="targets.bad_method",
                          params={"value": method})  # fmt: skip
    check_schedule(config, every=every, cron=cron, group=group, jitter=jitter)
    doc = await TargetRepo(store).add(
        name, method=method, source=actor.via, every=every, cron=cron, group=group, jitter=jitter, priority=priority
    )
    schedule = next(s for s in await schedules(store, config) if s.target == doc["_id"])
    await _audit(audit, actor, "targets.add", doc["_id"], method=method, schedule=schedule.describe, group=group)
    return doc, schedule


def _configured(config: TargetsConfig, key: str) -> object | None:
    return next((t for t in config.targets if canonical_target(t.name)[0] == key), None)


async def remove_target(store: Store, config: TargetsConfig, audit: AuditLog, actor: Actor, name: str) -> bool:
    """Remove NAME from the database; True when it is still in the configuration file."""
    key, _ = canonical_target(name)
    removed = await TargetRepo(store).remove(name)
    configured = _configured(config, key) is not None
    if not removed and not configured:
        raise NotFound(f"no target {key}", code="targets.unknown", params={"name": key})
    await _audit(audit, actor, "targets.remove", key, still_configured=configured)
    return configured


async def set_paused(
    store: Store, config: TargetsConfig, audit: AuditLog, actor: Actor, name: str, *, paused: bool
) -> str:
    """Pause NAME (no new crawl tasks) or resume it; returns its key."""
    key, _ = canonical_target(name)
    repo = TargetRepo(store)
    if not await repo.set_paused(name, paused):
        configured = next((t for t in config.targets if canonical_target(t.name)[0] == key), None)
        if configured is None:
            raise NotFound(f"no target {key}", code="targets.unknown", params={"name": key})
        # a configured target is paused by a database overlay that only holds "paused"
        await repo.add(name, method=configured.method or "web", source="override", paused=paused)
        await repo.clear_method(name)
    await _audit(audit, actor, "targets.pause" if paused else "targets.resume", key)
    return key


async def enqueue_now(store: Store, config: TargetsConfig, audit: AuditLog, actor: Actor, name: str) -> Created:
    """Queue a crawl of NAME due now, ahead of the schedule, for the workers (``tgwatch worker``/``run``).

    The console cannot crawl inside a web request; the CLI's ``run-now`` crawls in its own process.
    A target already queued or running is not queued twice (``Created.BUSY``/``EXISTS``).
    """
    key, _ = canonical_target(name)
    schedule = next((s for s in await schedules(store, config) if s.target == key), None)
    if schedule is None:
        raise NotFound(f"no target {key}", code="targets.unknown", params={"name": key})
    if schedule.paused:
        raise ConfigError(f"{key} is paused: resume it first", code="targets.paused", params={"name": key})
    due = datetime.fromtimestamp(int(time.time()), UTC)
    now_schedule = Schedule(key, schedule.name, schedule.method, None, None, 0.0, RUN_NOW_PRIORITY, schedule.group,
                            schedule.source)  # fmt: skip
    created = await CrawlTasks(store).create(now_schedule, due, priority=RUN_NOW_PRIORITY)
    await _audit(audit, actor, "targets.run_now", key, queued=created.value)
    return created


# --- proposed targets (bots): one path, reviewed -----------------------------------------------------


async def proposed_targets(store: Store, *, rejected: bool = False) -> list[Doc]:
    """Targets waiting for review (with ``rejected``, the refused ones too), oldest first."""
    return await TargetRepo(store).proposals((PROPOSED, REJECTED) if rejected else (PROPOSED,))


async def propose_named_bots(store: Store, names: list[str], *, by: str, actor: Actor) -> list[str]:
    """Bots named to ``tgwatch bot`` (already resolved as bots) become proposed targets; returns
    the ones newly proposed (a target or an earlier proposal of the same bot is left as it is)."""
    repo = TargetRepo(store)
    made = []
    for name in names:
        doc = bot_proposal(name, by=by)
        doc["proposed"]["actor"] = actor.name
        if await repo.propose(doc):
            made.append(doc["_id"])
    return made


async def review_target(
    store: Store, audit: AuditLog, actor: Actor, name: str, *, approve: bool, reason: str | None = None
) -> Doc:
    """Approve (crawled from now on) or reject a proposed target; audited as ``targets.approve`` or
    ``targets.reject`` with where the target was found."""
    key, _ = canonical_target(name)
    decision: Doc = {"decision": "approved" if approve else "rejected", "by": actor.name, "role": actor.role,
                     "via": actor.via, "at": utcnow()}  # fmt: skip
    if reason:
        decision["reason"] = reason[:500]
    doc = await TargetRepo(store).review(key, approve=approve, decision=decision)
    found = doc.get("proposed") or {}
    await _audit(audit, actor, "targets.approve" if approve else "targets.reject", key, found_in=doc.get("found_in"),
                 message=found.get("message"), proposed_by=found.get("by"), reason=decision.get("reason"))  # fmt: skip
    return doc

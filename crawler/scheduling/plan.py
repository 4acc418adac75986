"""From configuration and database to one ``Schedule`` per target, and its due times.

Due times are *deterministic*: an interval schedule fires on a grid anchored at a fixed epoch
(``ANCHOR``), a cron schedule at its crontab times, both in UTC. Two schedulers started at different
moments therefore compute the same due times, so the task id ``<target>/<due epoch>`` is the same and
the second insert is a no-op. Jitter does not move the due time (that would break the agreement):
it is a fixed per-target offset (a hash of the target) added when the task becomes claimable, which
spreads targets of one group over the jitter window just as well.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config.targets import (
    DEFAULT_EVERY,
    DEFAULT_GROUP,
    DEFAULT_JITTER,
    GroupSpec,
    TargetsConfig,
    parse_duration,
)
from foundation.errors import ConfigError
from storage.repos.targets import canonical_target

ANCHOR = datetime(2024, 1, 1, tzinfo=UTC)
_CRON_WINDOWS = (timedelta(hours=1), timedelta(days=1), timedelta(days=8), timedelta(days=32), timedelta(days=400))


@dataclass(frozen=True)
class Schedule:
    target: str  # canonical link: the target's key everywhere (tasks, runs)
    name: str  # as the operator wrote it
    method: str
    every: float | None
    cron: str | None
    jitter: float
    priority: int
    group: str | None
    source: str  # "config", or the database document's source ("cli", "discovery" …)
    paused: bool = False

    @property
    def describe(self) -> str:
        when = f"cron {self.cron}" if self.cron else f"every {_fmt(self.every or 0)}"
        return when + (f" ±{_fmt(self.spread)}" if self.spread else "")

    def trigger(self) -> BaseTrigger:
        """The APScheduler trigger that fires at each due time."""
        if self.cron is not None:
            return cron_trigger(self.cron)
        assert self.every is not None
        return IntervalTrigger(seconds=self.every, start_date=ANCHOR, timezone=UTC)

    @property
    def spread(self) -> float:
        """The jitter window in force: never more than half an interval, so a target due every 20 s
        is not pushed 10 minutes out by a default meant for hourly schedules."""
        return min(self.jitter, self.every / 2) if self.every else self.jitter

    def offset(self) -> float:
        """Seconds after the due time at which this target's task becomes claimable (0 ≤ x < spread)."""
        if self.spread <= 0:
            return 0.0
        h = int.from_bytes(hashlib.sha256(self.target.encode()).digest()[:8], "big")
        return round(h / 2**64 * self.spread, 3)

    def due_at_or_before(self, now: datetime) -> datetime | None:
        """The latest due time not after ``now`` (None if the schedule never fired before ``now``)."""
        if self.every is not None and self.cron is None:
            k = math.floor((now - ANCHOR).total_seconds() / self.every)
            return ANCHOR + timedelta(seconds=k * self.every) if k >= 0 else None
        trigger = self.trigger()
        for window in _CRON_WINDOWS:
            t = trigger.get_next_fire_time(None, now - window)
            last = None
            while t is not None and t <= now:
                last = t
                t = trigger.get_next_fire_time(t, t)
            if last is not None:
                return last
        return None

    def next_due(self, now: datetime) -> datetime | None:
        """The first due time strictly after ``now``."""
        t: datetime | None = self.trigger().get_next_fire_time(None, now)
        if t is not None and t <= now:
            t = self.trigger().get_next_fire_time(t, t + timedelta(microseconds=1))
        return t


#: the built-in recurring job that re-checks reported takedown items (a task like any crawl)
TAKEDOWN_TARGET = "tgwatch:takedown-recheck"
TAKEDOWN_METHOD = "takedown_recheck"


def takedown_schedule(every: float) -> Schedule | None:
    """The re-check job's schedule (None when ``takedowns.recheck_every`` is 0: switched off)."""
    if every <= 0:
        return None
    return Schedule(
        target=TAKEDOWN_TARGET, name="takedown re-checks", method=TAKEDOWN_METHOD, every=every, cron=None,
        jitter=0.0, priority=50, group=None, source="system",
    )  # fmt: skip


#: the built-in recurring job that syncs the configured hash exchanges (``exchanges.sync_every``)
EXCHANGE_TARGET = "tgwatch:exchange-sync"
EXCHANGE_METHOD = "exchange_sync"


def exchange_schedule(every: float) -> Schedule | None:
    """The exchange sync job's schedule (None when ``exchanges.sync_every`` is 0: switched off)."""
    if every <= 0:
        return None
    return Schedule(
        target=EXCHANGE_TARGET, name="hash exchange sync", method=EXCHANGE_METHOD, every=every, cron=None,
        jitter=0.0, priority=40, group=None, source="system",
    )  # fmt: skip


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_trigger(expr: str) -> CronTrigger:
    """A crontab expression as cron means it. APScheduler 3's ``from_crontab`` counts weekdays from
    Monday = 0, so crontab's ``1`` (Monday) would fire on Tuesdays: weekday numbers become names."""
    minute, hour, day, month, weekday = expr.split()
    weekday = re.sub(r"\d+", lambda m: _WEEKDAYS[int(m.group())] if int(m.group()) < 8 else m.group(), weekday)
    try:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, timezone=UTC)
    except ValueError as exc:
        raise ConfigError(f"invalid cron expression {expr!r}: {exc}") from exc


def _fmt(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _pick(name: str, *layers: Mapping[str, Any]) -> Any:
    for layer in layers:
        value = layer.get(name)
        if value is not None:
            return value
    return None


def _spec(fields: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(fields).items() if v is not None}


def build_schedules(config: TargetsConfig, db_targets: Iterable[Mapping[str, Any]]) -> list[Schedule]:
    """Every target's effective schedule. A database document overrides the same target's
    configuration field by field (that is how ``targets pause`` pauses a configured target).

    Field order: target → its group → ``[groups.default]`` → built-in defaults (every 6h ± 10m, web).
    """
    merged: dict[str, dict[str, Any]] = {}
    for spec in config.targets:
        key, _ = canonical_target(spec.name)
        merged[key] = {**_spec(spec.model_dump()), "source": "config"}
    for doc in db_targets:
        key = str(doc["_id"])
        layer = {k: v for k, v in doc.items() if k != "_id" and v is not None}
        base = merged.get(key, {})
        source = base.get("source") if base and doc.get("source") == "override" else doc.get("source", "db")
        merged[key] = {**base, **layer, "source": source or "db"}
        merged[key].setdefault("name", key)
    default_group = _spec(config.groups.get(DEFAULT_GROUP, GroupSpec()).model_dump())
    builtin = {"every": DEFAULT_EVERY, "jitter": DEFAULT_JITTER, "method": "web", "priority": 0, "paused": False}
    out: list[Schedule] = []
    for key, t in sorted(merged.items()):
        group_name = t.get("group")
        group = _spec(config.groups[group_name].model_dump()) if group_name in config.groups else {}
        layers = (t, group, default_group)
        every, cron = _timing(layers, DEFAULT_EVERY)
        try:
            out.append(
                Schedule(
                    target=key,
                    name=str(t.get("name") or key),
                    method=str(_pick("method", *layers, builtin)),
                    every=parse_duration(every) if every is not None else None,
                    cron=cron,
                    jitter=parse_duration(_pick("jitter", *layers, builtin)),
                    priority=int(_pick("priority", *layers, builtin)),
                    group=group_name,
                    source=str(t.get("source", "db")),
                    paused=bool(_pick("paused", *layers, builtin)),
                )
            )
        except ValueError as exc:
            raise ConfigError(f"target {key}: {exc}") from exc
    return out


def _timing(layers: tuple[Mapping[str, Any], ...], default_every: str) -> tuple[Any, str | None]:
    """``every`` or ``cron`` from the nearest layer that sets either (a target's own ``every``
    beats its group's ``cron``, and the other way round)."""
    for layer in layers:
        if layer.get("cron") is not None:
            return None, str(layer["cron"])
        if layer.get("every") is not None:
            return layer["every"], None
    return default_every, None


def select(schedules: Iterable[Schedule], selector: str) -> list[Schedule]:
    """``run-now`` selection: a group name, or one target (any spelling of it)."""
    items = list(schedules)
    in_group = [s for s in items if s.group == selector]
    if in_group:
        return in_group
    try:
        key, _ = canonical_target(selector)
    except ConfigError:
        return []
    return [s for s in items if s.target == key]

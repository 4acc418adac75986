"""Takedown settings: who reports, how often reported items are re-checked, and when a request is late.

Why a model of its own: the re-check cadence is a trade-off users must be able to see and tune
(fresh requests are checked often because removal in the first day matters most; old ones rarely, so
thousands of open requests do not hammer t.me), and the reporter identity appears in every report.
Durations accept ``"90s"``, ``"15m"``, ``"6h"``, ``"7d"`` or seconds.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from config.targets import parse_duration

_DURATIONS = (
    "recheck_every",
    "overdue_after",
    "unknown_retry",
    "removed_recheck_every",
    "fresh_interval",
    "week_interval",
    "month_interval",
    "old_interval",
)


class TakedownSettings(BaseModel):
    #: who the reports say they come from (organisation and a reply address); shown in every report
    reporter_name: str = "tgwatch operator"
    reporter_contact: str = ""
    #: how often the scheduler looks for items due a re-check (each item has its own due time); 0 = off
    recheck_every: float = 900.0
    #: an item still online this long after the request was sent makes the request overdue
    overdue_after: float = 86_400.0
    #: back-off by request age (since last sent, or since created when never sent): < 1 day, < 7 days,
    #: < 30 days, older
    fresh_interval: float = 3_600.0
    week_interval: float = 6 * 3_600.0
    month_interval: float = 86_400.0
    old_interval: float = 7 * 86_400.0
    #: a failed check is retried after this (doubling per consecutive failure, capped by the age interval)
    unknown_retry: float = 600.0
    #: a removed item is checked this many more times, this far apart, to catch it coming back
    removed_rechecks: int = Field(3, ge=0)
    removed_recheck_every: float = 86_400.0
    #: requests taken per re-check run (most overdue first); the rest wait for the next run
    batch: int = Field(500, ge=1)

    @field_validator(*_DURATIONS, mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    def interval_for_age(self, age_seconds: float) -> float:
        """The re-check interval of an item whose request is ``age_seconds`` old."""
        if age_seconds < 86_400:
            return self.fresh_interval
        if age_seconds < 7 * 86_400:
            return self.week_interval
        if age_seconds < 30 * 86_400:
            return self.month_interval
        return self.old_interval

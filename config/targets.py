"""Scheduled targets and groups as written in the TOML settings file.

::

    [groups.news]
    every = "30m"          # or: cron = "*/30 * * * *"
    jitter = "5m"
    method = "web"         # web | mtproto
    priority = 5

    [[targets]]
    name = "daily_brief"   # username, @name or t.me link
    group = "news"

    [[targets]]
    name = "https://t.me/korea_now"
    method = "mtproto"
    every = "2h"

A target takes every field it leaves out from its group, then from the built-in defaults. This
module reads the file on its own (``tomllib``) so that it stays independent of ``Settings``; the
same path rule as ``config.load`` applies (explicit path, else ``$TGWATCH_CONFIG``, else
``./tgwatch.toml``).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.errors import ConfigError

Method = Literal["web", "mtproto"]

DEFAULT_EVERY = "6h"
DEFAULT_JITTER = "10m"
DEFAULT_GROUP = "default"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?", re.IGNORECASE)
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "": 1.0}


def parse_duration(text: str | float | int) -> float:
    """``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"`` or a bare number of seconds → seconds (float)."""
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"negative duration: {text!r}")
        return float(text)
    s = text.strip().replace(" ", "")
    if not s:
        raise ValueError("empty duration")
    total, pos = 0.0, 0
    while pos < len(s):
        m = _DURATION.match(s, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 1h30m, 2d)")
        total += float(m.group(1)) * _UNIT[(m.group(2) or "").lower()]
        pos = m.end()
    return total


def check_cron(expr: str) -> str:
    """A standard 5-field crontab expression (minute hour day month weekday)."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"cron expression needs 5 fields (minute hour day month weekday), got {expr!r}")
    return " ".join(fields)


class _ScheduleFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    every: str | None = None
    cron: str | None = None
    jitter: str | None = None
    method: Method | None = None
    priority: int | None = None
    paused: bool | None = None

    @field_validator("every")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) <= 0:
            raise ValueError(f"interval must be positive: {value!r}")
        return value

    @field_validator("jitter")
    @classmethod
    def _jitter(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return check_cron(value) if value is not None else None

    @model_validator(mode="after")
    def _one_of(self) -> _ScheduleFields:
        if self.every is not None and self.cron is not None:
            raise ValueError("give either 'every' or 'cron', not both")
        return self


class GroupSpec(_ScheduleFields):
    """``[groups.NAME]``: a schedule shared by its targets."""


class TargetSpec(_ScheduleFields):
    """``[[targets]]``: one channel (username, @name or t.me link) and how often to crawl it."""

    name: str = Field(min_length=1)
    group: str | None = None


class TargetsConfig(BaseModel):
    """Everything the scheduler reads from the settings file."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    targets: list[TargetSpec] = Field(default_factory=list)
    groups: dict[str, GroupSpec] = Field(default_factory=dict)
    #: where it was read from (None: nothing configured)
    source: Path | None = None

    @model_validator(mode="after")
    def _groups_exist(self) -> TargetsConfig:
        for t in self.targets:
            if t.group is not None and t.group not in self.groups and t.group != DEFAULT_GROUP:
                raise ValueError(f"target {t.name!r} names group {t.group!r}, which is not in [groups]")
        return self


def config_path(explicit: str | Path | None = None) -> Path | None:
    """The settings file ``config.load`` would read (None when there is none)."""
    if explicit is not None:
        return Path(explicit)
    env_path = os.environ.get("TGWATCH_CONFIG")
    path = Path(env_path) if env_path else Path("tgwatch.toml")
    return path if path.is_file() else None


def load_targets(path: str | Path | None = None) -> TargetsConfig:
    """Read ``[[targets]]`` and ``[groups.*]`` from the settings file; nothing configured → empty."""
    found = config_path(path)
    if found is None:
        return TargetsConfig()
    try:
        data: dict[str, Any] = tomllib.loads(found.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read targets from {found}: {exc}") from exc
    try:
        return TargetsConfig(targets=data.get("targets", []), groups=data.get("groups", {}), source=found)
    except ValidationError as exc:
        raise ConfigError(f"invalid targets in {found}: {exc}") from exc

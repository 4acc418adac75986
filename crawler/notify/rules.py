"""Notification rules: which alert kinds, channels and severities go to which sink.

Severity by kind (what "minimum severity" compares against):

===============  ========  ===========================================================
kind             severity  why
===============  ========  ===========================================================
hash_match       critical  a known item from a hash list is being shared
reupload         high      an item taken down is back (new message)
back_online      high      a removed item is reachable again
detection        medium    a classifier's positive: needs a person before any action
crawl_failure    low       a crawl keeps failing (coverage gap, not content)
target_failure   low       a target is unreachable or gone
(other)          medium    kinds added later until they are given one here
===============  ========  ===========================================================

``hash_list_quarantine`` (high): a list entry matched far too many media and was held for review.

A rule's ``kinds`` entry is a kind name, or ``hash_match:<list>`` for matches of one list only;
no kinds means every kind, no channels (or target groups) means every channel. A channel's target
groups are resolved by the app shell (groups belong to scheduling) and handed to ``matches``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from foundation.models import utcnow

SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
KIND_SEVERITY: dict[str, str] = {
    "hash_match": "critical",
    "reupload": "high",
    "back_online": "high",
    "detection": "medium",
    "crawl_failure": "low",
    "target_failure": "low",
    "hash_list_quarantine": "high",
}
KINDS: tuple[str, ...] = tuple(KIND_SEVERITY)
#: never sent to any sink: a watchlist match concerns one consenting person and is seen only in her
#: case's review queue (docs/watchlist.md); a sink reaches people outside the case
NEVER_NOTIFIED: frozenset[str] = frozenset({"watchlist_match"})
DEFAULT_SEVERITY = "medium"
SINKS: tuple[str, ...] = ("webhook", "email", "telegram")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_EMAIL = re.compile(r"[^@\s<>,;\"]{1,64}@[A-Za-z0-9.-]{1,253}\Z")
_CHAT = re.compile(r"(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})\Z")
_KIND = re.compile(r"[a-z_]{1,32}(:[^\s/]{1,512})?\Z")


def notify_kind(alert: dict[str, Any]) -> str:
    """The kind rules see: the alert's kind, except a takedown item found online again (raised as
    ``reupload`` with cause ``back_online``) is ``back_online``."""
    details = alert.get("details") or {}
    if str(alert.get("_id", "")).startswith("back-online/") or details.get("cause") == "back_online":
        return "back_online"
    return str(alert.get("kind") or "other")


def severity_of(kind: str) -> str:
    return KIND_SEVERITY.get(kind, DEFAULT_SEVERITY)


def alert_list(alert: dict[str, Any]) -> str | None:
    value = (alert.get("details") or {}).get("list")
    return value if isinstance(value, str) else None


class NotifyRule(BaseModel):
    """One sink and the alerts it wants. Secrets are never here: ``secret_env`` names the variable."""

    name: str
    sink: Literal["webhook", "email", "telegram"]
    #: webhook URL, e-mail address or Telegram chat id
    target: str
    secret_env: str | None = None
    kinds: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    min_severity: Literal["low", "medium", "high", "critical"] = "low"
    lang: Literal["ko", "en"] = "ko"
    created_at: datetime = Field(default_factory=utcnow)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"rule name must be 1-64 letters, digits, '.', '_' or '-': {value!r}")
        return value

    @field_validator("secret_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        if value is not None and not _ENV.match(value):
            raise ValueError(f"not an environment variable name: {value!r}")
        return value

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        for kind in value:
            if not _KIND.match(kind):
                raise ValueError(f"not an alert kind: {kind!r} (kinds: {', '.join(KINDS)}, or hash_match:<list>)")
            base, _, lst = kind.partition(":")
            if lst and base != "hash_match":
                raise ValueError(f"only hash_match takes a list: {kind!r}")
        return sorted(set(value))

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        return sorted({c.strip().lstrip("@").lower() for c in value if c.strip()})

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        return sorted({g.strip().lower() for g in value if g.strip()})

    @model_validator(mode="after")
    def _target(self) -> NotifyRule:
        t = self.target
        if self.sink == "webhook":
            if not re.match(r"https?://[^\s/]+", t):
                raise ValueError(f"webhook URL must be http:// or https://: {t!r}")
            if not self.secret_env:
                raise ValueError("a webhook needs --secret-env (the variable holding its signing secret)")
        elif self.sink == "email" and not _EMAIL.match(t):
            raise ValueError(f"not an e-mail address: {t!r}")
        elif self.sink == "telegram" and not _CHAT.match(t):
            raise ValueError(f"not a Telegram chat id (a number or @channel): {t!r}")
        return self

    def matches(self, alert: dict[str, Any], groups: set[str] | None = None) -> bool:
        """Whether the alert is for this rule; ``groups`` are the target groups of its channels."""
        kind = notify_kind(alert)
        if kind in NEVER_NOTIFIED:
            return False
        if SEVERITIES.index(severity_of(kind)) < SEVERITIES.index(self.min_severity):
            return False
        if self.kinds:
            listed = alert_list(alert)
            if kind not in self.kinds and not (listed and f"{kind}:{listed}" in self.kinds):
                return False
        seen = {str(c).lower() for c in alert.get("channels") or []}
        if self.channels and not set(self.channels) & seen:
            return False
        return not self.groups or bool(set(self.groups) & (groups or set()))

    def to_doc(self) -> dict[str, Any]:
        return {"_id": self.name, **self.model_dump(mode="python", exclude={"name"})}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> NotifyRule:
        return cls.model_validate({"name": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}})

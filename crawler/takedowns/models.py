"""Takedown records: a request to a platform, the items it reports, and what each re-check found.

A request groups items (messages or whole channels) reported to one platform for one reason. Each
item carries what the report needs (link, media digests, evidence ledger references) and its own
removal state, because platforms remove some items and leave others. Item ids are the ledger's
subject names (``message:<channel_key>/<msg_id>``, ``channel:<channel_key>``), so a request's ledger
entries join a case's evidence without translation.

The request's ``status`` is derived from its items and its sending history (``derive_status``),
never set by hand, so it cannot disagree with them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

# The probe records are shared with the sources, so they live in the foundation; re-exported here.
from foundation.contracts import ItemKind as ItemKind
from foundation.contracts import ItemStatus as ItemStatus
from foundation.contracts import ProbeItem as ProbeItem
from foundation.contracts import ProbeResult as ProbeResult
from foundation.models import Record, Source, UtcDatetime, from_mongo_dt


class Platform(StrEnum):
    TELEGRAM = "telegram"


class Reason(StrEnum):
    """Why content is reported. Values are stable (they go into JSON reports and the ledger)."""

    SEXUAL_DEEPFAKE = "sexual_deepfake"  # synthetic sexual imagery of a real person
    NCII = "ncii"  # non-consensual intimate imagery (real)
    CSAM = "csam"  # child sexual abuse material
    SEXTORTION = "sextortion"
    DOXXING = "doxxing"  # personal data of a victim published
    HARASSMENT = "harassment"
    OTHER = "other"

    @property
    def label(self) -> str:
        return REASON_LABELS[self]


REASON_LABELS: dict[Reason, str] = {
    Reason.SEXUAL_DEEPFAKE: "Sexual deepfake (synthetic intimate imagery of a real person, published without consent)",
    Reason.NCII: "Non-consensual intimate imagery",
    Reason.CSAM: "Child sexual abuse material",
    Reason.SEXTORTION: "Sextortion (threat to publish intimate imagery)",
    Reason.DOXXING: "Publication of a victim's personal data",
    Reason.HARASSMENT: "Targeted harassment",
    Reason.OTHER: "Other violation of the platform's terms",
}


class RequestStatus(StrEnum):
    DRAFT = "draft"  # created, not sent yet
    SENT = "sent"  # sent; nothing removed yet
    PARTIAL = "partial"  # some items removed
    REMOVED = "removed"  # every item removed
    REOPENED = "reopened"  # a removed item came back (re-upload); must be sent again
    REJECTED = "rejected"  # a draft a reviewer rejected (with a reason); never sent


#: statuses whose requests still need re-checks
OPEN_STATUSES = (RequestStatus.DRAFT, RequestStatus.SENT, RequestStatus.PARTIAL, RequestStatus.REOPENED)


class ItemMedia(Record):
    sha256: str
    md5: str | None = None
    pdq: str | None = None
    kind: str | None = None


class TakedownItem(Record):
    item_id: str  # "message:<channel_key>/<msg_id>" | "channel:<channel_key>"
    kind: ItemKind
    channel: str  # channel key
    username: str | None = None
    tg_id: int | None = None
    msg_id: int | None = None
    link: str | None = None  # public t.me link (https://t.me/NAME/ID), None for private chats
    source: Source = Source.WEB  # how tgwatch found it: re-checks use the same way
    posted_at: UtcDatetime | None = None
    first_seen_at: UtcDatetime | None = None
    media: list[ItemMedia] = Field(default_factory=list)
    evidence: list[int] = Field(default_factory=list)  # ledger seqs of the item's capture entries
    added_at: UtcDatetime
    added_because: str = "reported"  # "reported" | "reupload of <item_id>"
    status: ItemStatus = ItemStatus.PENDING
    status_reason: str | None = None
    status_since: UtcDatetime | None = None
    checked_at: UtcDatetime | None = None
    last_result: ItemStatus | None = None  # the last check's answer (unknown does not replace a known status)
    checks: int = 0
    failures: int = 0  # consecutive unknown results
    removed_at: UtcDatetime | None = None  # first check that found it removed (kept while removed)
    removed_checks: int = 0  # checks made since it was found removed
    next_check_at: UtcDatetime | None = None  # None: no more checks

    @property
    def subject(self) -> str:
        return self.item_id


class Sending(Record):
    """One time a request left tgwatch: by whom, when, through which channel."""

    via: str  # e.g. "email:abuse@telegram.org", "in-app report", "hotline:<system>"
    by: str
    at: UtcDatetime
    reference: str | None = None  # the platform's ticket number, if any
    items: int = 0  # how many items the report held when sent
    channel: str | None = None  # the sender: "email" | "mtproto" | "hotline" (None: recorded by hand)
    sha256: str | None = None  # SHA-256 of exactly the bytes sent
    answer: dict[str, Any] | None = None  # what the other side said (SMTP reply, HTTP status, TL result)
    ledger_seq: int | None = None


class SendFailure(Record):
    """One failed attempt to send through a sender (kept and shown; a later attempt may succeed)."""

    channel: str
    at: UtcDatetime
    attempt: int
    error: str
    sha256: str | None = None
    by: str


class TakedownRequest(Record):
    id: str
    platform: Platform = Platform.TELEGRAM
    reason: Reason
    case: str | None = None
    note: str | None = None
    status: RequestStatus = RequestStatus.DRAFT
    items: list[TakedownItem]
    alerts: list[str] = Field(default_factory=list)
    detected_at: UtcDatetime | None = None  # earliest detection of any reported item
    created_at: UtcDatetime
    created_by: str
    sendings: list[Sending] = Field(default_factory=list)
    failures: list[SendFailure] = Field(default_factory=list)
    policy: str | None = None  # "draft" | "auto" when drafted by a list's takedown policy
    approved_at: UtcDatetime | None = None  # a reviewer approved the draft (the sending follows)
    approved_by: str | None = None
    rejected_at: UtcDatetime | None = None
    rejected_by: str | None = None
    reject_reason: str | None = None
    removed_at: UtcDatetime | None = None  # when the last item was found removed
    reopened_at: UtcDatetime | None = None
    reopen_count: int = 0
    ledger: list[int] = Field(default_factory=list)  # seqs of this request's takedown entries
    rev: int = 0

    @property
    def sent_at(self) -> datetime | None:
        return self.sendings[0].at if self.sendings else None

    @property
    def last_sent_at(self) -> datetime | None:
        return self.sendings[-1].at if self.sendings else None

    def item(self, item_id: str) -> TakedownItem | None:
        return next((i for i in self.items if i.item_id == item_id), None)

    def next_check_at(self) -> datetime | None:
        due = [i.next_check_at for i in self.items if i.next_check_at is not None]
        return min(due) if due else None

    def to_doc(self) -> dict[str, Any]:
        doc = self.model_dump(mode="python", exclude={"id"})
        doc["_id"] = self.id
        nxt = self.next_check_at()
        # epoch copies for queries: the embedded server cannot range-scan datetimes by index
        doc["next_check_ts"] = nxt.timestamp() if nxt is not None else None
        doc["created_ts"] = self.created_at.timestamp()
        # a removed request stays open while its items still have extra checks (to see them stay gone)
        doc["open"] = self.status in OPEN_STATUSES or nxt is not None
        doc["item_ids"] = [i.item_id for i in self.items]
        doc["digests"] = sorted({m.sha256 for i in self.items for m in i.media})
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> TakedownRequest:
        data = {k: v for k, v in doc.items() if k not in _DERIVED}
        data["id"] = data.pop("_id")
        return cls.model_validate(_datetimes(data))


_DERIVED = frozenset({"next_check_ts", "created_ts", "open", "item_ids", "digests", "lock", "lock_until"})
_DT_FIELDS = frozenset(
    {
        "detected_at", "created_at", "removed_at", "reopened_at", "at", "posted_at", "first_seen_at",
        "added_at", "status_since", "checked_at", "next_check_at", "rejected_at", "approved_at",
    }
)  # fmt: skip


def _datetimes(value: Any) -> Any:
    """Stored datetimes back to UTC-aware (the embedded server may hand back strings)."""
    if isinstance(value, dict):
        return {k: (from_mongo_dt(v) if k in _DT_FIELDS and v is not None else _datetimes(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_datetimes(v) for v in value]
    return value


def derive_status(req: TakedownRequest) -> RequestStatus:
    """What a request's items and sendings say its status is."""
    unsent_reopen = req.reopened_at is not None and (req.last_sent_at is None or req.last_sent_at < req.reopened_at)
    if unsent_reopen and any(i.status is not ItemStatus.REMOVED for i in req.items):
        return RequestStatus.REOPENED
    if req.items and all(i.status is ItemStatus.REMOVED for i in req.items):
        return RequestStatus.REMOVED
    if not req.sendings:
        return RequestStatus.REJECTED if req.rejected_at is not None else RequestStatus.DRAFT
    if any(i.status is ItemStatus.REMOVED for i in req.items):
        return RequestStatus.PARTIAL
    return RequestStatus.SENT

"""Search filters for messages: parsed from a query string, validated, turned into a store query.

Every filter is built from standard MongoDB operators so the same query runs on a replica set and on
the embedded store. Two choices are shaped by the embedded store and stay correct on MongoDB:

* media hashes are matched with ``$elemMatch`` (MongoDB uses the ``media.sha256`` multikey index for
  it; the embedded store answers a dotted ``media.sha256`` equality wrongly once that index exists);
* case-insensitive text is a pattern of per-letter classes (``[hH][eE]``) over ``re.escape``-d user
  input rather than the ``i`` option, which the embedded store evaluates document by document;
* clauses are merged into one flat document (see ``merge``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from crawler.evidence.cases import Cases
from crawler.evidence.ledger import Ledger
from crawler.investigate.pagination import BadQuery
from foundation.case_ids import CASE_ID_RULE, is_case_id
from foundation.models import WATCHLIST_DETECTOR, ChannelRef
from storage.client import Doc, Store
from storage.repos import ChannelRepo, MessageRepo
from storage.repos.alerts import AlertRepo
from storage.repos.media import MediaRepo
from storage.repos.verdicts import VerdictRepo

HEX = re.compile(r"^[0-9a-f]+$")
DECISIONS = ("positive", "negative", "unknown")
TEXT_MAX = 200

#: the query-string parameters a message search understands (also shown in the OpenAPI document)
SEARCH_PARAMS: dict[str, str] = {
    "channel": "channel key or username (any username it ever had)",
    "since": "messages dated at or after (ISO 8601 date or datetime, UTC when no offset)",
    "until": "messages dated before (ISO 8601 date or datetime)",
    "q": "text, or text read in its images and videos, contains (case-insensitive, literal; up to 200 characters)",
    "has_media": "true|false",
    "sha256": "a media SHA-256 (64 hex)",
    "md5": "a media MD5 (32 hex)",
    "edited": "true|false",
    "deleted": "true|false",
    "matched": "true: only media that matched an imported hash list",
    "verdict": "positive|negative|unknown: media with a detector verdict of this decision",
    "case": "only what is attached to this case (investigators: cases they are a member of)",
    "limit": "page size, 1..500",
    "cursor": "next_cursor of the previous page",
}


@dataclass(frozen=True)
class MessageSearch:
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    has_media: bool | None = None
    sha256: str | None = None
    md5: str | None = None
    edited: bool | None = None
    deleted: bool | None = None
    matched: bool | None = None
    verdict: str | None = None
    case: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> MessageSearch:
        """Validate every parameter; anything wrong is a ``BadQuery`` naming the parameter."""
        unknown = set(query) - set(SEARCH_PARAMS) - {"format"}
        if unknown:
            raise BadQuery(f"unknown parameter(s): {', '.join(sorted(unknown))}", code="query.unknown_params",
                           params={"names": ", ".join(sorted(unknown))[:200]})  # fmt: skip
        text = (query.get("q") or "").strip() or None
        if text is not None and len(text) > TEXT_MAX:
            raise BadQuery(f"q is longer than {TEXT_MAX} characters", code="form.too_long",
                           params={"field": "q", "max": TEXT_MAX})  # fmt: skip
        verdict = _blank(query.get("verdict"))
        if verdict is not None and verdict not in DECISIONS:
            raise BadQuery(f"verdict must be one of {', '.join(DECISIONS)}, got {verdict!r}", code="query.bad_choice",
                           params={"field": "verdict", "choices": ", ".join(DECISIONS)})  # fmt: skip
        since = _when(query.get("since"), "since")
        until = _when(query.get("until"), "until")
        if since and until and since >= until:
            raise BadQuery("since must be before until", code="query.since_after_until")
        case = _blank(query.get("case"))
        if case is not None and not is_case_id(case):
            raise BadQuery(f"case must be a case id ({CASE_ID_RULE})", code="query.bad_case_id",
                           params={"rule": CASE_ID_RULE})  # fmt: skip
        channel = _blank(query.get("channel"))
        if channel is not None:
            channel = channel.rstrip("/").rsplit("/", 1)[-1].lstrip("@").lower()
            if not re.fullmatch(r"[a-z0-9_]{1,64}", channel):
                raise BadQuery(f"channel must be a channel key or username, got {channel!r}", code="query.bad_channel",
                               params={"value": channel[:80]})  # fmt: skip
        return cls(
            channel=channel,
            since=since,
            until=until,
            q=text,
            has_media=_flag(query.get("has_media"), "has_media"),
            sha256=_hex(query.get("sha256"), 64, "sha256"),
            md5=_hex(query.get("md5"), 32, "md5"),
            edited=_flag(query.get("edited"), "edited"),
            deleted=_flag(query.get("deleted"), "deleted"),
            matched=_flag(query.get("matched"), "matched"),
            verdict=verdict,
            case=case,
        )

    def params(self) -> dict[str, Any]:
        """The filters as plain values: the audit entry and the cursor fingerprint use these."""
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items() if v is not None}

    def is_empty(self) -> bool:
        return not self.params()


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _flag(value: str | None, name: str) -> bool | None:
    value = _blank(value)
    if value is None:
        return None
    lowered = value.lower()
    if lowered in {"true", "1", "yes", "on"}:
        return True
    if lowered in {"false", "0", "no", "off"}:
        return False
    raise BadQuery(f"{name} must be true or false, got {value!r}", code="query.bad_bool", params={"field": name})


def _hex(value: str | None, length: int, name: str) -> str | None:
    value = _blank(value)
    if value is None:
        return None
    value = value.lower()
    if len(value) != length or not HEX.match(value):
        raise BadQuery(f"{name} must be {length} hexadecimal characters", code="query.bad_hex",
                       params={"field": name, "length": length})  # fmt: skip
    return value


def _when(value: str | None, name: str) -> datetime | None:
    value = _blank(value)
    if value is None:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f"{name} must be an ISO 8601 date or datetime, got {value!r}", code="query.bad_date",
                       params={"field": name, "value": value[:40]}) from None  # fmt: skip
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def caseless_pattern(text: str) -> str:
    """A regex matching ``text`` literally, ignoring case, without the ``i`` option."""
    out = []
    for ch in text:
        low, up = ch.lower(), ch.upper()
        if low != up and len(low) == 1 and len(up) == 1:
            out.append(f"[{re.escape(low)}{re.escape(up)}]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


async def resolve_channel(store: Store, name: str) -> str:
    """A channel key from a key or any username the channel ever had (unknown names stay as given)."""
    if await ChannelRepo(store).exists(name):
        return name
    if name.startswith("id") and name[2:].isdigit():
        return await ChannelRepo(store).resolve(ChannelRef(tg_id=int(name[2:]))) or name
    return await ChannelRepo(store).resolve(ChannelRef(username=name)) or name


async def matched_digests(store: Store) -> list[str]:
    """Media that matched an imported hash list: hash-match alerts, and media marked ``matched``."""
    from_alerts = await AlertRepo(store).digests_of_kind("hash_match")
    from_media = await MediaRepo(store).matched()
    return sorted({*from_alerts, *from_media})


async def verdict_digests(store: Store, decision: str) -> list[str]:
    # the watchlist detector's verdicts are review-only: its negatives would single out its matches
    return await VerdictRepo(store).digests_with(decision, exclude_detectors=(WATCHLIST_DETECTOR,))


async def md5_digests(store: Store, md5: str) -> list[str]:
    return await MediaRepo(store).with_md5(md5)


def _intersect(current: list[str] | None, more: list[str]) -> list[str]:
    return more if current is None else [s for s in current if s in set(more)]


async def to_mongo(store: Store, search: MessageSearch) -> Doc:
    """The store query for a search. Hash-like filters become one ``$in`` over media digests."""
    clauses: list[Doc] = []
    if search.channel:
        clauses.append({"channel": await resolve_channel(store, search.channel)})
    if search.since or search.until:
        # epoch seconds (``date_ts``): the embedded store evaluates datetime ranges outside its index
        bounds: Doc = {}
        if search.since:
            bounds["$gte"] = search.since.timestamp()
        if search.until:
            bounds["$lt"] = search.until.timestamp()
        clauses.append({"date_ts": bounds})
    if search.q:
        # the message's own text, or the text read in its media (OCR, kept on the media item)
        pattern = caseless_pattern(search.q)
        read = await MediaRepo(store).with_text(pattern)
        keys = await MessageRepo(store).keys_with_media(read) if read else []
        text_clause: Doc = {"text": {"$regex": pattern}}
        clauses.append({"$or": [text_clause, {"_id": {"$in": keys}}]} if keys else text_clause)
    if search.edited is not None:
        clauses.append({"edited": search.edited})
    if search.deleted is not None:
        clauses.append({"deleted": search.deleted})
    digests: list[str] | None = None
    if search.sha256:
        digests = [search.sha256]
    if search.md5:
        digests = _intersect(digests, await md5_digests(store, search.md5))
    if search.matched:
        digests = _intersect(digests, await matched_digests(store))
    if search.verdict:
        digests = _intersect(digests, await verdict_digests(store, search.verdict))
    if digests is not None:
        # through the sightings index, not a scan of every message's media list
        clauses.append({"_id": {"$in": await MessageRepo(store).keys_with_media(digests)}})
    elif search.has_media is True:
        clauses.append({"media": {"$elemMatch": {"kind": {"$exists": True}}}})
    if search.has_media is False:
        clauses.append({"media": {"$size": 0}})
    if search.case:
        clauses.append(await case_clause(store, search.case))
    return merge(clauses)


async def case_clause(store: Store, case_id: str) -> Doc:
    """Messages attached to a case: its ``channel:<key>`` and ``message:<key>/<id>`` items.

    A case with nothing attached matches nothing (an empty id list, answered without a scan).
    """
    subjects = await Cases(Ledger(store)).subjects(case_id)
    channels = sorted(s.removeprefix("channel:") for s in subjects if s.startswith("channel:"))
    messages = sorted(s.removeprefix("message:") for s in subjects if s.startswith("message:"))
    if not channels:
        return {"_id": {"$in": messages}}
    if not messages:
        return {"channel": {"$in": channels}}
    return {"$or": [{"channel": {"$in": channels}}, {"_id": {"$in": messages}}]}


def merge(clauses: list[Doc]) -> Doc:
    """One flat query document when the clauses name distinct fields, ``$and`` only when they clash.

    Same meaning either way; the embedded store plans a flat document in SQL but evaluates ``$and``
    in its Python tier (50x slower for channel + text in ``bench/api.py``).
    """
    flat: Doc = {}
    for clause in clauses:
        if any(key in flat for key in clause):
            return {"$and": clauses}
        flat.update(clause)
    return flat

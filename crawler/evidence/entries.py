"""What each ledger entry kind says: one builder per kind, so the entry schema lives in one place.

Every payload is a JSON object with ``kind`` and, added by the ledger at append time, ``seq`` (its
own leaf index, so a moved entry is pinpointed) and ``logged_at`` (RFC 3339 UTC). Two members are
copied to the stored document for queries: ``cases`` (case ids the entry belongs to) and
``subjects`` (``channel:<key>``, ``message:<channel_key>/<id>``, ``media:<sha256>``, ...).

Kinds:

- ``capture``: ``item`` = ``message`` | ``media`` | ``channel_snapshot`` | ``deletion`` | ``page`` (built
  by :mod:`.capture`): content digests, raw-capture digest, source URL or TL request, capture time,
  collecting worker/account, authorization id; a ``page`` is one whole HTTP response (its body's
  digest ``page_sha256``, the request and the status line and headers as sent, minus secrets);
- ``join``: a private join made under an authorization;
- ``refusal``: a join or private read refused for want of an authorization (``NotAuthorized``);
- ``authorization``: grant / revoke (``action``);
- ``case``: an item attached to a case by an investigator;
- ``query``: an investigator's or auditor's read (one per audit entry);
- ``export``: a case bundle handed out (``seqs`` exported, ``manifest_sha256`` of its manifest);
- ``verdict``: a detector's verdict on a media item;
- ``notification``: a message that left for a sink (rule, sink, SHA-256 of its bytes), subjects the
  alerts it told of;
- ``takedown``: a takedown request's history (``action`` = ``create``, ``sent``, ``item_status``,
  ``status``, ``reopen``; built by :mod:`crawler.takedowns.service`), subjects
  ``takedown:<request id>`` and the items' ``message:``/``channel:`` names;
- ``watchlist``: a consent-based enrollment (``action`` = ``enroll``, ``withdraw``, ``expire``): the
  person reference, case, consent reference, who and when, expiry; never an embedding or a photo
  (built by :func:`watchlist_entry`), subject ``watchlist:<person>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from pathlib import PurePath
from typing import Any

from crawler.evidence.canonical import canonicalize, rfc3339_utc
from foundation.models import Verdict

KINDS = (
    "capture", "join", "refusal", "authorization", "case", "query", "export", "verdict", "notification", "takedown",
    "watchlist",
)  # fmt: skip


MAX_EXACT_INT = 2**53


def jsonable(value: Any) -> Any:
    """Plain JSON data for a payload: datetimes as RFC 3339 UTC, enums as values, paths as text.

    Floats stay floats (JCS spells them); integers beyond what an IEEE double holds exactly
    (Telegram access hashes, ids) become decimal strings, as RFC 8785 asks; anything else unknown
    becomes ``str`` so that a stray object never makes an append fail.
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_EXACT_INT:
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return rfc3339_utc(value)
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


def record_bytes(record: Mapping[str, Any]) -> tuple[bytes, str]:
    """The canonical bytes of a record and their SHA-256 (what a capture entry binds)."""
    data = canonicalize(jsonable(record))
    return data, hashlib.sha256(data).hexdigest()


def query_entry(audit_doc: Mapping[str, Any]) -> dict[str, Any]:
    """A ``query`` entry from an :class:`~crawler.audit.AuditLog` document (who, role, filter, count)."""
    return {
        "kind": "query",
        "audit_id": audit_doc.get("_id"),
        "at": audit_doc.get("at"),
        "actor": audit_doc.get("actor"),
        "role": audit_doc.get("role"),
        "action": audit_doc.get("action"),
        "filter": audit_doc.get("filter") or {},
        "result_count": audit_doc.get("result_count"),
        "via": audit_doc.get("via"),
        "target": audit_doc.get("target"),
        "cases": [audit_doc["filter"]["case"]] if isinstance((audit_doc.get("filter") or {}).get("case"), str) else [],
    }


def verdict_entry(verdict: Verdict, *, verdict_id: str | None = None) -> dict[str, Any]:
    return {
        "kind": "verdict",
        "verdict_id": verdict_id,
        "sha256": verdict.sha256,
        "detector": verdict.detector,
        "detector_version": verdict.detector_version,
        "decision": verdict.decision.value,
        "labels": dict(verdict.labels),
        "job_id": verdict.job_id,
        "decided_at": verdict.decided_at,
        "subjects": [f"media:{verdict.sha256}"],
        # a watchlist match (person reference, distance, face box, case; never an embedding) belongs
        # to its case, so the case's bundle carries the match record
        **({"matches": list(verdict.matches), "cases": _match_cases(verdict)} if verdict.matches else {}),
    }


def _match_cases(verdict: Verdict) -> list[str]:
    return sorted({str(m["case"]) for m in verdict.matches if m.get("case")})


def export_entry(
    case_id: str,
    actor: str,
    role: str,
    since: str | None,
    until: str | None,
    seqs: Sequence[int],
    manifest_sha256: str,
) -> dict[str, Any]:
    """The ``export`` ledger entry: the hand-over, committing to the manifest and every exported seq."""
    return {
        "kind": "export",
        "case": case_id,
        "actor": actor,
        "role": role,
        "from": since,
        "to": until,
        "entries": len(seqs),
        "seqs": list(seqs),
        "manifest_sha256": manifest_sha256,
        "cases": [case_id],
    }


# --- capture (built by .capture's stage) ---------------------------------------------------------
# ``raw`` is the raw-capture provenance (``raw_sha256`` and, when there is one, ``raw_kind``,
# ``source_url``, ``tl_request``, ``captured_at``); ``who`` the collecting worker, account, run,
# authorization and ``cases``. Both are spread into the payload as they are.


def capture_message_entry(
    *,
    message: str,
    capture_of: str,
    channel: str,
    version: Any,
    source: Any,
    permalink: Any,
    record_sha256: str,
    content_hash: Any,
    media: Sequence[Mapping[str, Any]],
    received_at: datetime,
    raw: Mapping[str, Any],
    who: Mapping[str, Any],
) -> dict[str, Any]:
    """A stored message version: the digest of its record, its media and where it came from."""
    return {
        "kind": "capture",
        "item": "message",
        "message": message,
        "capture_of": capture_of,
        "channel": channel,
        "version": version,
        "source": source,
        "permalink": permalink,
        "record_sha256": record_sha256,
        "content_hash": content_hash,
        "media": list(media),
        "received_at": received_at,
        **raw,
        **who,
        "subjects": [f"message:{message}", f"channel:{channel}"],
    }


def capture_media_entry(
    *,
    sha256: str,
    media_kind: Any,
    url: Any,
    message: str,
    channel: str,
    received_at: datetime,
    who: Mapping[str, Any],
) -> dict[str, Any]:
    """A media file seen in a stored message."""
    return {
        "kind": "capture",
        "item": "media",
        "sha256": sha256,
        "media_kind": media_kind,
        "url": url,
        "message": message,
        "channel": channel,
        "received_at": received_at,
        **who,
        "subjects": [f"media:{sha256}", f"message:{message}", f"channel:{channel}"],
    }


def capture_snapshot_entry(
    *,
    channel: str,
    state: str,
    source: str,
    record_sha256: str,
    seen_at: datetime,
    raw: Mapping[str, Any],
    who: Mapping[str, Any],
) -> dict[str, Any]:
    """A channel header as seen (state, counters: the record's digest)."""
    return {
        "kind": "capture",
        "item": "channel_snapshot",
        "channel": channel,
        "state": state,
        "source": source,
        "record_sha256": record_sha256,
        "seen_at": seen_at,
        **raw,
        **who,
        "subjects": [f"channel:{channel}"],
    }


def capture_page_entry(
    *,
    channel: str,
    url: str,
    page_sha256: str,
    page_bytes: int,
    captured_at: datetime,
    request: Mapping[str, Any],
    response: Mapping[str, Any],
    withheld_headers: Sequence[str],
    who: Mapping[str, Any],
) -> dict[str, Any]:
    """One fetched page, whole: what a web archive's request and response records are written from."""
    return {
        "kind": "capture",
        "item": "page",
        "channel": channel,
        "source_url": url,
        "captured_at": captured_at,
        "page_sha256": page_sha256,
        "page_bytes": page_bytes,
        "request": dict(request),
        "response": dict(response),
        "withheld_headers": list(withheld_headers),
        **who,
        "subjects": [f"channel:{channel}", f"page:{page_sha256}"],
    }


def capture_deletion_entry(
    *, channel: str, msg_ids: Sequence[int], source: str, captured_at: datetime, who: Mapping[str, Any]
) -> dict[str, Any]:
    """Messages seen deleted at the source."""
    return {
        "kind": "capture",
        "item": "deletion",
        "channel": channel,
        "messages": [f"{channel}/{i}" for i in msg_ids],
        "source": source,
        "captured_at": captured_at,
        **who,
        "subjects": [f"channel:{channel}", *(f"message:{channel}/{i}" for i in msg_ids)],
    }


# --- authorizations, joins and refusals (built by .authorizations) -------------------------------

#: why a ``refusal`` entry was written (one reason today)
REFUSAL_REASON = "no active authorization covers the target for these accounts"


def authorization_grant_entry(
    *,
    authorization: str,
    case: str,
    warrant: str,
    approved_by: str,
    scope: Sequence[str],
    accounts: Sequence[str],
    valid_until: str,
    actor: str,
    note: str | None,
) -> dict[str, Any]:
    return {
        "kind": "authorization",
        "action": "grant",
        "authorization": authorization,
        "case": case,
        "warrant": warrant,
        "approved_by": approved_by,
        "scope": list(scope),
        "accounts": list(accounts),
        "valid_until": valid_until,
        "actor": actor,
        "note": note,
        "cases": [case],
    }


def authorization_revoke_entry(
    *, authorization: str, case: str | None, actor: str, reason: str | None
) -> dict[str, Any]:
    return {
        "kind": "authorization",
        "action": "revoke",
        "authorization": authorization,
        "case": case,
        "actor": actor,
        "reason": reason,
        "cases": [case] if case else [],
    }


def refusal_entry(
    *, action: str, target: str, scope: Sequence[str], accounts: Sequence[str], run_id: str | None
) -> dict[str, Any]:
    """A join or private read refused for want of an authorization: subjects are the channels asked for."""
    return {
        "kind": "refusal",
        "action": action,
        "target": target,
        "scope": list(scope),
        "accounts": list(accounts),
        "run_id": run_id,
        "reason": REFUSAL_REASON,
        "subjects": [s for s in scope if s.startswith("channel:")],
    }


def join_entry(
    *,
    authorization: str,
    case: str | None,
    account: str,
    invite: str | None,
    channel: str | None,
    joined_at: datetime,
    run_id: str | None,
) -> dict[str, Any]:
    """A private join made under an authorization."""
    return {
        "kind": "join",
        "authorization": authorization,
        "case": case,
        "account": account,
        "invite": invite,
        "channel": channel,
        "joined_at": joined_at,
        "run_id": run_id,
        "cases": [case] if case else [],
        "subjects": [f"channel:{channel}"] if channel else [],
    }


# --- cases (built by .cases and .members) ------------------------------------------------------------


def case_attach_entry(*, case: str, subject: str, actor: str, note: str | None) -> dict[str, Any]:
    """A channel or message (``subject``) attached to a case."""
    return {
        "kind": "case",
        "action": "attach",
        "case": case,
        "subject": subject,
        "actor": actor,
        "note": note,
        "cases": [case],
        "subjects": [subject],
    }


def case_member_entry(*, action: str, case: str, member: str, actor: str) -> dict[str, Any]:
    """A token name added to (``member_add``) or removed from (``member_remove``) a case."""
    return {"kind": "case", "action": action, "case": case, "member": member, "actor": actor, "cases": [case]}


# --- notifications (built by .hooks.notification_hook for the notify dispatcher) -------------------


def notification_entry(sent: Mapping[str, Any]) -> dict[str, Any]:
    """One message that left: who got it and the SHA-256 of its bytes."""
    return {
        "kind": "notification", "rule": sent["rule"], "sink": sent["sink"], "message": sent["message"],
        "sha256": sent["sha256"], "alerts": list(sent["alerts"]), "deliveries": list(sent["deliveries"]),
        "subjects": [f"alert:{key}" for key in sent["alerts"]],
    }  # fmt: skip


# --- takedowns (built by crawler.takedowns.service, which still writes its own dict today) ----------


def takedown_entry(
    *,
    action: str,
    request: str,
    platform: str,
    reason: str,
    case: str | None,
    actor: str,
    at: datetime,
    item_subjects: Sequence[str],
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A takedown request's history: ``create``, ``sent``, ``item_status``, ``status``, ``reopen``;
    ``fields`` that are None are left out."""
    return {
        "kind": "takedown",
        "action": action,
        "request": request,
        "platform": platform,
        "reason": reason,
        "case": case,
        "actor": actor,
        "at": at,
        **{k: v for k, v in (fields or {}).items() if v is not None},
        "cases": [case] if case else [],
        "subjects": [f"takedown:{request}", *item_subjects],
    }


def watchlist_entry(
    *,
    action: str,
    person: str,
    case: str,
    actor: str,
    consent_ref: str | None = None,
    expires_at: datetime | None = None,
    photos: int | None = None,
    embeddings: int | None = None,
    erased: bool | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A watchlist consent record or its end. Counts only: what was enrolled is never in the ledger."""
    return {
        "kind": "watchlist",
        "action": action,
        "person": person,
        "case": case,
        "actor": actor,
        "consent_ref": consent_ref,
        "expires_at": expires_at,
        "photos": photos,
        "embeddings": embeddings,
        "erased": erased,
        "reason": reason,
        "cases": [case],
        "subjects": [f"watchlist:{person}"],
    }


def capture_screenshot_entry(
    *,
    message: str,
    channel: str,
    url: str,
    sha256: str | None,
    taken_at: datetime,
    unavailable: str | None,
    browser: str,
    actor: str,
    reason: str,
) -> dict[str, Any]:
    """A rendered screenshot of a post (its PNG's SHA-256), or why none could be taken."""
    return {
        "kind": "capture",
        "item": "screenshot",
        "message": message,
        "channel": channel,
        "url": url,
        "sha256": sha256,
        "media_kind": "screenshot",
        "mime": "image/png" if sha256 else None,
        "taken_at": taken_at,
        "unavailable": unavailable,
        "browser": browser,
        "actor": actor,
        "reason": reason,
        "subjects": [f"message:{message}", f"channel:{channel}"],
    }

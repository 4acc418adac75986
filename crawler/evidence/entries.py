"""What each ledger entry kind says: one builder per kind, so the entry schema lives in one place.

Every payload is a JSON object with ``kind`` and, added by the ledger at append time, ``seq`` (its
own leaf index, so a moved entry is pinpointed) and ``logged_at`` (RFC 3339 UTC). Two members are
copied to the stored document for queries: ``cases`` (case ids the entry belongs to) and
``subjects`` (``channel:<key>``, ``message:<channel_key>/<id>``, ``media:<sha256>``, ...).

Kinds:

- ``capture``: ``item`` = ``message`` | ``media`` | ``channel_snapshot`` | ``deletion`` (built by
  :mod:`.capture`): content digests, raw-capture digest, source URL or TL request, capture time,
  collecting worker/account, authorization id;
- ``join``: a private join made under an authorization;
- ``refusal``: a join or private read refused for want of an authorization (``NotAuthorized``);
- ``authorization``: grant / revoke (``action``);
- ``case``: an item attached to a case by an investigator;
- ``query``: an investigator's or auditor's read (one per audit entry);
- ``export``: a case bundle handed out (``seqs`` exported, ``manifest_sha256`` of its manifest);
- ``verdict``: a detector's verdict on a media item;
- ``takedown``: a takedown request's history (``action`` = ``create``, ``sent``, ``item_status``,
  ``status``, ``reopen``; built by :mod:`crawler.takedowns.service`), subjects
  ``takedown:<request id>`` and the items' ``message:``/``channel:`` names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from pathlib import PurePath
from typing import Any

from crawler.evidence.canonical import canonicalize, rfc3339_utc
from crawler.models import Verdict

KINDS = ("capture", "join", "refusal", "authorization", "case", "query", "export", "verdict", "takedown")


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
    }


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

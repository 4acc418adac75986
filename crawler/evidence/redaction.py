"""Ledger entries and audit records about the consent-based watchlist: who may read their content.

Why: a watchlist entry (consent, enrollment, withdrawal, expiry), a faces detector's verdict (a
match names an enrolled person; even its ``negative`` tells the match from the rest), a takedown
made from a watchlist alert (its ``alerts`` name the person) and an audit record or ``query`` entry
of a read of such things all reveal that a named person asked for help. They belong to her case.
Everyone who checks the ledger's integrity must still be able to: the content is withheld, never
the entry. A withheld entry keeps its ``seq`` and ``leaf_hash``, so inclusion and consistency
proofs, signed heads and a bundle's verifier work exactly as before; only the payload is left out.

The rule (one place; the ledger API, bundle export, a message's proofs and the audit trail all ask
it): an **admin** (and the shell operator) reads everything; anyone else reads a restricted entry
only when every case it belongs to is one of theirs (``tgwatch case members add``). An entry
restricted to no case (a read of the watchlist itself, a faces ``negative``) is the admin's alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from crawler.tokens import Principal, Role
from foundation.models import WATCHLIST_DETECTOR
from storage.client import Doc, Store
from storage.repos.case_members import CaseMemberRepo

#: what a withheld entry says instead of its payload
WITHHELD_KIND = "withheld"
REASON = (
    "concerns a watchlist enrollment or match of a case you are not a principal of;"
    " its leaf hash and proofs still verify"
)
#: alert keys of a watchlist match start with it (``watchlist/<sha256>/<person>``); subjects with ``watchlist:``
_WATCHLIST_NAMES = ("watchlist/", "watchlist:")


@dataclass(frozen=True)
class Readership:
    """The cases whose restricted entries a reader may read; ``cases`` None: every case."""

    cases: frozenset[str] | None

    def may_read(self, restricted: frozenset[str] | None) -> bool:
        if restricted is None or self.cases is None:
            return True
        return bool(restricted) and restricted <= self.cases


#: the admin's and the shell operator's readership
EVERY_CASE = Readership(None)
#: a reader of no case (an auditor who is no case's member)
NO_CASE = Readership(frozenset())


async def readership(store: Store, who: Principal) -> Readership:
    """What ``who`` may read: admins everything, others the cases that list their token name."""
    if who.role is Role.ADMIN:
        return EVERY_CASE
    return Readership(frozenset(await CaseMemberRepo(store).cases_of(who.name)))


def shell_readership(role: str, case_id: str) -> Readership:
    """The recipient of a shell export of ``case_id``: the operator and an admin read everything,
    an investigator the case exported (that is whom it is for), any other role no restricted entry."""
    if role in ("operator", Role.ADMIN.value):
        return EVERY_CASE
    if role == Role.INVESTIGATOR.value:
        return Readership(frozenset({case_id}))
    return NO_CASE


def _names_watchlist(value: object) -> bool:
    return isinstance(value, str) and value.startswith(_WATCHLIST_NAMES)


def names_watchlist(record: Mapping[str, Any]) -> bool:
    """Does an audit record (or the ``query`` entry made of it) concern the watchlist?"""
    flt = record.get("filter")
    return (
        _names_watchlist(record.get("target"))
        or str(record.get("action") or "").startswith("watchlist.")
        or (isinstance(flt, Mapping) and (flt.get("kind") == "watchlist_match" or _names_watchlist(flt.get("alert"))))
    )


def _cases(payload: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(c for c in payload.get("cases") or [] if isinstance(c, str))


def restricted_cases(payload: Mapping[str, Any]) -> frozenset[str] | None:
    """The cases a restricted entry belongs to (may be empty: admins only), or None: not restricted."""
    kind = payload.get("kind")
    if kind == "watchlist":
        return _cases(payload)
    if kind == "verdict" and (
        payload.get("detector") == WATCHLIST_DETECTOR
        or payload.get("decision") == "watchlist_match"
        or bool(payload.get("matches"))
    ):
        return _cases(payload)
    if kind == "takedown" and any(_names_watchlist(a) for a in payload.get("alerts") or []):
        return _cases(payload)
    if kind == "query" and names_watchlist(payload):
        return frozenset()
    if any(_names_watchlist(s) for s in payload.get("subjects") or []):
        return _cases(payload)
    return None


def entry_restriction(doc: Mapping[str, Any]) -> frozenset[str] | None:
    """:func:`restricted_cases` of a stored entry (``payload`` is its canonical JSON text)."""
    try:
        payload = json.loads(doc["payload"])
    except (KeyError, TypeError, ValueError):
        return frozenset()  # unreadable: nobody but an admin is shown what it is
    return restricted_cases(payload) if isinstance(payload, dict) else frozenset()


def withheld(doc: Mapping[str, Any]) -> Doc:
    """What a reader who may not read an entry receives: its place and its leaf hash."""
    return {"seq": int(doc["seq"]), "kind": WITHHELD_KIND, "payload": None, "leaf_hash": doc["leaf_hash"],
            "withheld": REASON}  # fmt: skip


def redact_entries(docs: Iterable[Mapping[str, Any]], reader: Readership) -> tuple[list[Doc], list[int]]:
    """The entries as ``reader`` may see them, and the seqs withheld (for the audit record)."""
    out: list[Doc] = []
    held: list[int] = []
    for doc in docs:
        if reader.cases is None or reader.may_read(entry_restriction(doc)):
            out.append(dict(doc))
        else:
            out.append(withheld(doc))
            held.append(int(doc["seq"]))
    return out, held


def redact_audit(records: Iterable[Mapping[str, Any]], reader: Readership) -> list[dict[str, Any]]:
    """Audit records as ``reader`` may see them: who did what and when stays; which watchlist item
    (target, filter, count) is withheld from everyone but an admin."""
    out: list[dict[str, Any]] = []
    for record in records:
        if reader.cases is not None and names_watchlist(record):
            out.append({**record, "target": None, "filter": {}, "result_count": None, "withheld": REASON})
        else:
            out.append(dict(record))
    return out


def without_watchlist_alerts(keys: Iterable[str]) -> list[str]:
    """Alert keys a takedown request may show to its readers (monitors among them): a watchlist
    match's key names the person, and that the request came from one is her case's (the request's
    ledger entries keep the key, withheld from everyone outside the case)."""
    return [k for k in keys if not _names_watchlist(k)]


def redact_payloads(payloads: Iterable[Mapping[str, Any]], reader: Readership) -> list[dict[str, Any]]:
    """Parsed ledger payloads (a takedown's history) as ``reader`` may see them."""
    out: list[dict[str, Any]] = []
    for payload in payloads:
        if reader.may_read(restricted_cases(payload)):
            out.append(dict(payload))
        else:
            out.append({"seq": payload.get("seq"), "kind": WITHHELD_KIND, "withheld": REASON})
    return out

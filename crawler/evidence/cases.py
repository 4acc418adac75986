"""Cases: which ledger entries belong to an investigation.

An entry belongs to case C when

1. its payload lists C in ``cases``: captures made while an authorization of C covered the channel,
   joins and authorization changes of C, exports of C, queries that filtered on C; or
2. its payload ``subjects`` name something an investigator attached to C with ``tgwatch case add``
   (``channel:<key>`` attaches every capture of that channel, past and future;
   ``message:<channel_key>/<id>`` one message's captures, versions and deletion).

Attaching is itself a ledger ``case`` entry (so is the ``case_items`` document that makes the query
cheap, keyed ``<case>/<subject>``: attaching twice is one item).
"""

from __future__ import annotations

import contextlib

from crawler.evidence.entries import case_attach_entry
from crawler.evidence.ledger import Ledger
from foundation.case_ids import validate_case_id
from foundation.models import utcnow
from storage.client import Doc, translate_errors
from storage.owners import DuplicateKeyError


class Cases:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._items = ledger.store["case_items"]

    async def add(
        self,
        case_id: str,
        *,
        channel: str | None = None,
        message: str | None = None,
        actor: str,
        note: str | None = None,
    ) -> int:
        """Attach a channel key or a ``<channel_key>/<msg_id>`` message to ``case_id``; returns the entry's seq."""
        validate_case_id(case_id)
        if (channel is None) == (message is None):
            raise ValueError("attach exactly one of a channel or a message")
        subject = f"channel:{channel}" if channel is not None else f"message:{message}"
        seq = await self.ledger.append(case_attach_entry(case=case_id, subject=subject, actor=actor, note=note))
        doc = {"_id": f"{case_id}/{subject}", "case": case_id, "subject": subject, "seq": seq, "at": utcnow()}
        # attached before: one item; the new ledger entry still records who asked again
        with translate_errors("attach case item"), contextlib.suppress(DuplicateKeyError):
            await self._items.insert_one(doc)
        return seq

    async def subjects(self, case_id: str) -> list[str]:
        with translate_errors("read case items"):
            return [d["subject"] async for d in self._items.find({"case": case_id}).sort("_id", 1)]

    async def entries(self, case_id: str, *, since: str | None = None, until: str | None = None) -> list[Doc]:
        """The case's ledger entries in seq order; ``since``/``until`` are RFC 3339 UTC bounds on ``at``."""
        return await self.ledger.about(case_id, await self.subjects(case_id), since=since, until=until)

"""Small adapters that make other services write ledger entries without knowing the ledger.

- :func:`audit_hook`: ``AuditLog(store, hooks=[audit_hook(ledger)])`` or ``audit.add_hook(...)``:
  every audit entry (an investigator's or auditor's read) also becomes a ``query`` entry;
- :func:`verdict_hook`: the detection service calls it with each stored verdict → ``verdict`` entry;
- :func:`notification_hook`: the notify dispatcher's ``on_sent`` → a ``notification`` entry per sending.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from crawler.evidence.entries import notification_entry, query_entry, verdict_entry
from crawler.evidence.ledger import Ledger
from foundation.models import Verdict
from storage.client import Doc

VerdictHook = Callable[[Verdict, str | None], Awaitable[None]]


def audit_hook(ledger: Ledger) -> Callable[[Doc], Awaitable[None]]:
    async def hook(doc: Doc) -> None:
        await ledger.append(query_entry(doc))

    return hook


def verdict_hook(ledger: Ledger) -> VerdictHook:
    async def hook(verdict: Verdict, verdict_id: str | None = None) -> None:
        await ledger.append(verdict_entry(verdict, verdict_id=verdict_id))

    return hook


def notification_hook(
    append: Callable[[Mapping[str, Any]], Awaitable[object]],
) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """``on_sent`` that appends each sending to a ledger (``Ledger.append``, handed in by the shell)."""

    async def on_sent(sent: dict[str, Any]) -> None:
        await append(notification_entry(sent))

    return on_sent

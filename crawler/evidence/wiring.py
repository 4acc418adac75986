"""How a process builds its ledger from settings (CLI, API server, workers all use this)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from config import Settings
from config.evidence import EvidenceSettings
from crawler.audit import AuditLog
from crawler.evidence.authorizations import Authorizations
from crawler.evidence.heads import HeadSigner
from crawler.evidence.hooks import audit_hook
from crawler.evidence.ledger import Ledger
from storage.client import Store
from storage.repos.authorizations import channel_scope


def evidence_settings(settings: Settings) -> EvidenceSettings:
    return settings.evidence


def build_ledger(store: Store, settings: Settings, *, sign: bool = True) -> Ledger:
    """Lease settings from config, and a head signer when this host holds the key file."""
    ev = evidence_settings(settings)
    signer = HeadSigner.from_settings(ev, settings.data_dir) if sign else None
    return Ledger(store, lease_seconds=ev.writer_lease_seconds, wait_seconds=ev.writer_wait_seconds, signer=signer)


def audit_log(store: Store, ledger: Ledger) -> AuditLog:
    """The audit log whose every entry is also a ``query`` entry in the ledger."""
    return AuditLog(store, hooks=[audit_hook(ledger)])


def private_read_gate(
    store: Store, settings: Settings, run_id: str | None
) -> Callable[[str, list[str]], Awaitable[None]]:
    """The gate every MTProto reading path passes before anything of a private chat is read
    (``backfill``, ``watch``, stories, scheduled runs): an authorization naming the chat, else
    ``NotAuthorized``, recorded in the ledger against ``run_id``."""
    gate = Authorizations(build_ledger(store, settings))

    async def private_gate(channel_key: str, accounts: list[str]) -> None:
        await gate.require([channel_scope(channel_key)], accounts, action="read", target=channel_key, run_id=run_id)

    return private_gate

"""How a process builds its ledger from settings (CLI, API server, workers all use this)."""

from __future__ import annotations

from config import Settings
from config.evidence import EvidenceSettings
from crawler.audit import AuditLog
from crawler.evidence.heads import HeadSigner
from crawler.evidence.hooks import audit_hook
from crawler.evidence.ledger import Ledger
from storage.client import Store


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

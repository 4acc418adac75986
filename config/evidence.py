"""Evidence ledger settings: where the signing key lives, how often tree heads are signed, the TSA.

Kept as its own model (``Settings.evidence``) so the ledger reads only what concerns it. The
private key is referenced by *path* only: its bytes never enter settings, MongoDB or a log line.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class EvidenceSettings(BaseModel):
    #: Ed25519 private key (PEM, mode 0600) made by ``tgwatch evidence keygen``; unset =
    #: ``<data_dir>/keys/evidence-ed25519.pem``. A process without the key appends but never signs.
    key_path: Path | None = None
    #: sign a tree head once this many entries were appended since the last head ...
    head_every_entries: int = Field(1000, ge=1)
    #: ... or once this many seconds passed since the last head (and something was appended)
    head_every_seconds: float = Field(300.0, gt=0)
    #: RFC 3161 time-stamping authority; unset = no timestamp tokens (heads still signed)
    tsa_url: str | None = None
    tsa_timeout_seconds: float = Field(10.0, gt=0)
    #: how long one process may hold the single-writer lease without renewing it
    writer_lease_seconds: float = Field(30.0, gt=0)
    #: how long an append waits for the writer lease before failing with StoreError
    writer_wait_seconds: float = Field(60.0, gt=0)
    #: roles whose exports carry media bytes (everyone else gets digests only)
    export_media_roles: list[str] = Field(default_factory=lambda: ["admin", "investigator"])
    #: name recorded as the collecting worker on capture entries; unset = ``<hostname>:<pid>``
    worker_name: str | None = None

    def private_key_path(self, data_dir: Path) -> Path:
        return self.key_path if self.key_path is not None else data_dir / "keys" / "evidence-ed25519.pem"

    def public_key_path(self, data_dir: Path) -> Path:
        private = self.private_key_path(data_dir)
        return private.with_name(private.name.removesuffix(".pem") + ".pub.pem")

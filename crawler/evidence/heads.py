"""Signed tree heads: every N entries or T seconds, Ed25519, plus an optional RFC 3161 timestamp.

A head is signed under the ledger's writer lease, right after an append makes it due (or by
:func:`sign_due_heads` run periodically by a long-lived process), so head sizes and head timestamps
grow together. It is stored in ``ledger_heads`` with ``_id = size``:
``{"size", "root_hash", "timestamp", "signature", "key_id", "tsa": …}``.

The time-stamping authority is asked *after* the head is stored, outside the lease (a slow TSA
must not stall appends). What it is asked to stamp: the SHA-256 of the RFC 8785 canonical JSON of
the whole signed head (the five members, signature included), so the token proves the signature
existed at the TSA's time, which outlives a later key compromise. ``tsa`` then holds either
``{"url", "token": <base64 DER TimeStampToken>, "gen_time", "requested_at"}`` or, when the TSA is
unreachable or answers with an error, ``{"url", "error", "requested_at"}``: the failure is recorded,
never papered over with a local clock. With no TSA configured ``tsa`` is ``null``.

The private key is read from its file by :func:`load_private_key` and held only in memory.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crawler.evidence.canonical import canonicalize, rfc3339_utc
from crawler.evidence.merkle import EMPTY_ROOT, AsyncMerkleLog
from crawler.evidence.signing import TreeHead, load_private_key, sign_tree_head
from foundation.egress import check_base_url
from foundation.logs import get_logger
from foundation.models import utcnow
from storage.client import Doc

if TYPE_CHECKING:
    from config.evidence import EvidenceSettings
    from crawler.evidence.ledger import Ledger

log = get_logger(__name__)


@dataclass
class TsaClient:
    """RFC 3161 over HTTP (``application/timestamp-query``) with ``rfc3161-client`` for the DER."""

    url: str
    timeout: float = 10.0

    async def stamp(self, data: bytes) -> dict[str, Any]:
        """The ``tsa`` member for ``data``: a token, or the recorded failure. Never raises."""
        from rfc3161_client import PKIStatus, TimestampRequestBuilder, decode_timestamp_response

        requested_at = rfc3339_utc(utcnow())
        try:
            # the operator's TSA (evidence.tsa_url): named in settings, so only the scheme is checked
            check_base_url(self.url)
            request = TimestampRequestBuilder().data(data).nonce(nonce=True).cert_request(cert_request=True).build()
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout), trust_env=False) as session,
                session.post(
                    self.url,
                    data=request.as_bytes(),
                    headers={"Content-Type": "application/timestamp-query"},
                    allow_redirects=False,  # the operator named this host, not where it points to
                ) as response,
            ):
                body = await response.read()
                if response.status != 200:
                    raise ValueError(f"HTTP {response.status}")
            answer = decode_timestamp_response(body)
            if answer.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
                raise ValueError(f"TSA refused: status {answer.status} {answer.status_string!r}")
            if answer.tst_info.nonce != request.nonce:
                raise ValueError("TSA answer carries another nonce")
            token = answer.time_stamp_token()
            gen_time = answer.tst_info.gen_time
        except Exception as exc:  # any failure is recorded as such, never faked
            reason = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("time-stamping authority unavailable", url=self.url, error=reason)
            return {"url": self.url, "error": reason, "requested_at": requested_at}
        return {
            "url": self.url,
            "token": base64.b64encode(token).decode("ascii"),
            "gen_time": rfc3339_utc(gen_time),
            "requested_at": requested_at,
        }


def head_document(head: TreeHead, *, tsa: dict[str, Any] | None = None) -> Doc:
    return {"_id": head.size, **head.to_dict(), "tsa": tsa}


def stamped_bytes(head: TreeHead) -> bytes:
    """What the TSA is asked to stamp (its SHA-256 goes in the request)."""
    return canonicalize(head.to_dict())


class HeadSigner:
    """Decides when a head is due and signs it; attached to a :class:`~crawler.evidence.ledger.Ledger`."""

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        *,
        every_entries: int = 1000,
        every_seconds: float = 300.0,
        tsa: TsaClient | None = None,
    ) -> None:
        self._key = private_key
        self.every_entries = every_entries
        self.every_seconds = every_seconds
        self.tsa = tsa
        self._last: tuple[int, float] | None = None  # (size, monotonic time) of the last head seen
        self.pending_tsa: list[TreeHead] = []

    @classmethod
    def from_settings(cls, settings: EvidenceSettings, data_dir: Path) -> HeadSigner | None:
        """A signer when the key file exists, else None (this process appends but does not sign)."""
        path = settings.private_key_path(data_dir)
        if not path.exists():
            return None
        tsa = TsaClient(settings.tsa_url, settings.tsa_timeout_seconds) if settings.tsa_url else None
        return cls(
            load_private_key(path),
            every_entries=settings.head_every_entries,
            every_seconds=settings.head_every_seconds,
            tsa=tsa,
        )

    async def _last_head(self, ledger: Ledger) -> tuple[int, float]:
        if self._last is None:
            head = await ledger.latest_head()
            # an unknown age counts as "just signed": a restart must not sign on its first append
            self._last = (int(head["size"]), time.monotonic()) if head else (0, time.monotonic())
        return self._last

    async def maybe_sign(self, ledger: Ledger, tree: AsyncMerkleLog) -> TreeHead | None:
        """Sign if due (called by the ledger under its writer lease)."""
        size, at = await self._last_head(ledger)
        grown = tree.size - size
        if grown <= 0 or (grown < self.every_entries and time.monotonic() - at < self.every_seconds):
            return None
        return await self.sign(ledger, tree)

    async def sign(self, ledger: Ledger, tree: AsyncMerkleLog) -> TreeHead:
        """Sign and store the head of ``tree`` now (caller holds the writer lease)."""
        root = await tree.root(tree.size) if tree.size else EMPTY_ROOT
        head = sign_tree_head(self._key, tree.size, root, utcnow())
        await ledger.store_head(head.size, head_document(head, tsa=None), upsert=True)
        self._last = (head.size, time.monotonic())
        log.info("tree head signed", size=head.size, root=head.root_hash[:16], key_id=head.key_id[:16])
        if self.tsa is not None:
            self.pending_tsa.append(head)
        return head

    async def stamp_pending(self, ledger: Ledger) -> int:
        """Ask the TSA for every head signed since the last call (outside the lease); returns how many."""
        heads, self.pending_tsa = self.pending_tsa, []
        if self.tsa is None:
            return 0
        for head in heads:
            tsa = await self.tsa.stamp(stamped_bytes(head))
            await ledger.store_head(head.size, head_document(head, tsa=tsa), action="store tree head timestamp")
        return len(heads)


async def sign_head_now(ledger: Ledger, signer: HeadSigner) -> TreeHead:
    """Sign the head of the whole ledger as it stands (the exporter needs one covering its entries)."""
    async with ledger.writing() as lease:
        tree = await ledger.locked_tree(lease)
        latest = await ledger.latest_head()
        if latest is not None and int(latest["size"]) == tree.size:
            head = TreeHead.from_dict({k: latest[k] for k in ("size", "root_hash", "timestamp", "signature", "key_id")})
        else:
            head = await signer.sign(ledger, tree)
    await signer.stamp_pending(ledger)
    return head


async def sign_due_heads(ledger: Ledger, signer: HeadSigner) -> TreeHead | None:
    """The periodic half of "every T seconds": a long-lived process calls this on a timer."""
    async with ledger.writing() as lease:
        tree = await ledger.locked_tree(lease)
        head = await signer.maybe_sign(ledger, tree)
    await signer.stamp_pending(ledger)
    return head

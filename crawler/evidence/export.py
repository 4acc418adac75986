"""Case export: a zip that anyone can verify offline with the ``verify_bundle.py`` inside it.

The layout is exactly the one :mod:`crawler.evidence.verify_bundle` documents (and checks):
``manifest.json``, ``ledger/entries.jsonl``, ``proofs/<seq>.json``, ``tree_head.json``,
``public_key.pem``, ``records/<sha256>.json``, ``captures/<sha256>.html|.json``,
``captures/media/<sha256>``, plus ``verify_bundle.py`` and ``HOW-TO-VERIFY.txt``.

Order of work, and why:

1. select the case's entries (:class:`~crawler.evidence.cases.Cases`), optionally within a time span;
2. bind files: a capture entry's ``record_sha256`` → ``records/``, ``raw_sha256`` → ``captures/``
   (*only* when the recipient's role receives content: an auditor's bundle holds ledger entries,
   proofs, the signed head and digests, never message text or raw HTML), a media capture's
   ``sha256`` → ``captures/media/`` *only* when the recipient may receive those bytes: for an API
   caller (``viewer``) exactly when ``/media/{sha}/bytes`` would answer it
   (:meth:`crawler.evidence.access.CaseAccess.media_grant`); for a shell export when the role is in
   ``export_media_roles`` and the capture's authorization is neither revoked nor expired. Otherwise the manifest
   lists the digest as ``withheld`` with the reason. A file missing from the store is listed as
   withheld as well (the bundle never pretends), and the verifier still checks its digest is bound
   to its entry;
3. write the manifest (case, span, exported seqs, files, digests of the verifier and the how-to)
   and append the ``export`` entry (who, role, span, the full seq list and the manifest's SHA-256):
   the hand-over is part of the chain of custody, and the signed log now commits to exactly what
   was handed over. The manifest does not name the export entry (the verifier finds it by the
   digest), so there is no cycle;
4. sign a tree head covering everything (or use the newest stored head when this process has no
   key and that head covers it): every bundled entry, the export entry included, gets its inclusion
   proof against that head.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crawler.captures.gaps import gap_report
from crawler.captures.warc import (
    HttpPage,
    Screenshot,
    WebCapture,
    is_web_url,
    pages_of,
    post_of,
    write_wacz,
    write_warc,
)
from crawler.evidence import verify_bundle
from crawler.evidence.access import BundleContent, CaseAccess, bundle_content
from crawler.evidence.capture import RecordStore
from crawler.evidence.cases import Cases
from crawler.evidence.entries import export_entry
from crawler.evidence.heads import HeadSigner, sign_head_now
from crawler.evidence.ledger import Ledger
from crawler.evidence.redaction import Readership, entry_restriction, readership, shell_readership
from crawler.evidence.signing import TreeHead, key_id, public_key_pem
from crawler.tokens import Principal
from foundation.case_ids import validate_case_id
from foundation.errors import ConfigError, NotFound
from foundation.models import utcnow
from storage.client import translate_errors
from storage.repos.authorizations import AuthorizationRepo
from storage.repos.messages import MessageRepo
from storage.repos.pages import PageRepo

FORMAT = verify_bundle.FORMAT
WITHHELD_ENTRY = verify_bundle.WITHHELD_ENTRY
WEB_ARCHIVE = verify_bundle.WEB_ARCHIVE
GAP_REPORT = verify_bundle.GAP_REPORT


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _when(value: object) -> datetime | None:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, datetime) else None


def _archive(
    payload: dict[str, Any], seq: int, sha: str, path: str, data: bytes, web: list[WebCapture], shots: list[Screenshot],
    pages: list[HttpPage],
) -> None:  # fmt: skip
    """A bundled raw HTML capture fetched from the web, a whole page, or a screenshot, also goes into
    the web archive."""
    if payload.get("item") == "page" and path.startswith("captures/pages/") and sha == payload.get("page_sha256"):
        page = HttpPage.from_entry(payload, data, seq)
        if page is not None:
            pages.append(page)
        return
    if payload.get("item") == "screenshot" and path.startswith("captures/media/") and is_web_url(payload.get("url")):
        taken = _when(payload.get("taken_at"))
        if taken is not None:
            shots.append(Screenshot(url=str(payload["url"]), taken_at=taken, sha256=sha, png=data, seq=seq))
        return
    if path.endswith(".html") and sha == payload.get("raw_sha256") and is_web_url(payload.get("source_url")):
        fetched = _when(payload.get("captured_at"))
        if fetched is not None:
            title = str(payload.get("message") or payload.get("channel") or "")
            web.append(WebCapture(url=str(payload["source_url"]), fetched_at=fetched, sha256=sha, content=data,
                                  seq=seq, title=title, post=post_of(payload)))  # fmt: skip


class MediaSource(Protocol):
    """Where the exporter gets media bytes: ``None`` when it does not hold them."""

    async def read(self, sha256: str) -> bytes | None: ...


class DirectoryMediaSource:
    """Media files named by their SHA-256 under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def read(self, sha256: str) -> bytes | None:
        path = self.root / sha256
        if len(sha256) != 64 or not path.is_file():
            return None
        data = await asyncio.to_thread(path.read_bytes)
        return data if hashlib.sha256(data).hexdigest() == sha256 else None


class QuarantineMediaSource:
    """The detection quarantine (AES-GCM files) as a media source."""

    def __init__(self, quarantine: Any) -> None:
        self.quarantine = quarantine

    async def read(self, sha256: str) -> bytes | None:
        if not self.quarantine.has(sha256):
            return None
        try:
            data: bytes = await asyncio.to_thread(self.quarantine.get, sha256)
        except Exception:  # an unreadable file is withheld, the reason says so
            return None
        return data


@dataclass(frozen=True)
class ExportResult:
    path: Path
    case_id: str
    entries: int
    files: int
    withheld: int
    tree_size: int
    key_id: str
    export_seq: int


HOW_TO_VERIFY = """\
HOW TO VERIFY THIS EVIDENCE BUNDLE
==================================

Case: {case}
Exported: {created} by {actor} (role {role})
Ledger entries: {entries} (the last is this export); files: {files}; withheld items (digest only): {withheld}
Signing key id: {key_id}

You need nothing but this zip file and Python 3.11 or newer. Nothing is downloaded.

1. Unpack verify_bundle.py from the zip (any unzip tool), or run it straight from the zip:

       unzip -p {name} verify_bundle.py > verify_bundle.py
       python3 verify_bundle.py --expect-key {key_id} {name}

   --expect-key makes it fail unless the bundle was signed by that key; use the key id the operator
   published (see 3), not merely the one written here.

2. It prints "OK: ..." and exits 0 when every check passes; otherwise it prints "FAIL:" with the
   first item that failed and exits 1. It checks: the Ed25519 signature of tree_head.json with the
   bundled public key; that every ledger entry's leaf hash is SHA-256(0x00 || payload); that each
   entry's inclusion proof (RFC 9162) leads to the signed root; that every file under records/ and
   captures/ has the SHA-256 the manifest gives and that this digest is recorded in the payload of
   the ledger entry it is bound to; that nothing unlisted was slipped in; that the export entry in
   the signed log commits to the SHA-256 of manifest.json and lists every exported entry, so no
   entry, proof or file can be removed and no manifest field edited; that verify_bundle.py and this
   file have the digests the manifest gives. A replaced verify_bundle.py could print anything: if in
   doubt, run a copy obtained from the operator or from tgwatch's source instead.

3. IMPORTANT: the public key travels with the bundle, so it proves nothing on its own. Compare the
   key id printed by the verifier (and written above) with the key id the operator published or
   swore to, obtained independently of this bundle. Only if they are equal does the signature show
   that the operator's log holds these entries.

4. Items listed in manifest.json with "withheld" were not handed over (media the recipient's role or
   the authorization does not allow, or bytes no longer in the store); their SHA-256 is still bound
   to a signed ledger entry, so bytes obtained later can be checked against it. Ledger entries with
   "withheld" instead of a payload (listed in the manifest's "withheld_entries") concern a
   consent-based watchlist enrollment or match of a case the recipient is not a principal of:
   their leaf hash and inclusion proof are checked like every other entry's, their content is not
   handed over.

5. web/archive.wacz, when present, is a standard web archive (WACZ: WARC records inside) of the
   pages and screenshots handed over: open it with a replay tool such as ReplayWeb.page or pywb.
   The verifier checks that every record's payload has the SHA-256 a signed ledger entry records.
   reports/gaps.json lists, per channel of the case, the message ids held, deleted, and missing
   with the reason where known.

Formats: payloads are RFC 8785 canonical JSON; the tree is RFC 9162 (Certificate Transparency 2.0)
hashing; the signature is Ed25519 (RFC 8032) over the canonical JSON
{{"root_hash":"<hex>","size":N,"timestamp":"<RFC 3339>"}}. The layout is described at the top of
verify_bundle.py.
"""


class Exporter:
    def __init__(
        self,
        ledger: Ledger,
        public_key: Ed25519PublicKey,
        *,
        signer: HeadSigner | None = None,
        media: MediaSource | None = None,
        media_roles: Sequence[str] = ("admin", "investigator"),
    ) -> None:
        self.ledger = ledger
        self.public_key = public_key
        self.signer = signer
        self.media = media
        self.media_roles = set(media_roles)
        self.cases = Cases(ledger)
        self.records = RecordStore(ledger.store)

    async def _head(self, must_cover: int) -> TreeHead:
        if self.signer is not None:
            head = await sign_head_now(self.ledger, self.signer)
        else:
            doc = await self.ledger.latest_head()
            if doc is None:
                raise ConfigError("no signing key in this process and no signed tree head stored yet")
            head = TreeHead.from_dict({k: doc[k] for k in ("size", "root_hash", "timestamp", "signature", "key_id")})
        if head.size <= must_cover:
            raise ConfigError(
                f"the newest signed tree head (size {head.size}) does not cover seq {must_cover}; "
                "export from a process that holds the signing key"
            )
        if head.key_id != key_id(self.public_key):
            raise ConfigError("the tree head was signed by another key than the configured public key")
        return head

    async def _media_reason(
        self, payload: dict[str, Any], role: str, viewer: Principal | None, policy: BundleContent
    ) -> str | None:
        """Why media bytes must be withheld, or None when they may be handed over."""
        if not policy.media:
            return policy.reason or f"role {role!r} may not receive media; digest only"
        if viewer is not None:
            # the very rule /media/{sha}/bytes applies to this caller
            if await CaseAccess(self.ledger.store).media_grant(viewer, str(payload["sha256"])) is None:
                return "no active case authorization covers this media for the recipient; digest only"
            return None if self.media is not None else "media bytes are not held by this exporter"
        if role not in self.media_roles:
            return f"role {role!r} may not receive media; digest only"
        auth_id = payload.get("authorization")
        if isinstance(auth_id, str):
            with translate_errors("read authorization"):
                grant = await AuthorizationRepo(self.ledger.store).get(auth_id)
            if grant is None or grant.get("revoked"):
                return "the authorization it was collected under is revoked or unknown; digest only"
            if float(grant.get("valid_until") or 0) <= time.time():  # as ``media_grant`` (``covering_all``)
                return "the authorization it was collected under has expired; digest only"
        if self.media is None:
            return "media bytes are not held by this exporter"
        return None

    async def export(
        self,
        case_id: str,
        out: Path,
        *,
        actor: str,
        role: str,
        since: str | None = None,
        until: str | None = None,
        viewer: Principal | None = None,
    ) -> ExportResult:
        """``viewer`` is the API caller the bundle is for (its media rule applies); None from the shell."""
        validate_case_id(case_id)
        policy = bundle_content(viewer.role.value if viewer is not None else role)
        selected = await self.cases.entries(case_id, since=since, until=until)
        if not selected:
            raise NotFound(f"case {case_id!r} has no ledger entries" + (" in that span" if since or until else ""))
        seqs = [int(d["seq"]) for d in selected]
        # watchlist entries of a case the recipient is no principal of: leaf hash and proof only
        readers: Readership = (
            await readership(self.ledger.store, viewer) if viewer is not None else shell_readership(role, case_id)
        )
        hidden = [int(d["seq"]) for d in selected if not readers.may_read(entry_restriction(d))]
        hidden_set = set(hidden)

        files: dict[str, bytes] = {}
        manifest_files: list[dict[str, Any]] = []
        bound: set[str] = set()
        messages = MessageRepo(self.ledger.store)
        web: list[WebCapture] = []
        shots: list[Screenshot] = []
        pages: list[HttpPage] = []
        page_bodies = PageRepo(self.ledger.store)
        case_channels: set[str] = set()
        for doc in selected:
            payload = json.loads(doc["payload"])
            seq = int(doc["seq"])
            if payload.get("kind") != "capture" or seq in hidden_set:
                continue
            if isinstance(payload.get("channel"), str):
                case_channels.add(payload["channel"])
            wanted: list[tuple[str, str]] = []  # (sha256, path or "media")
            if isinstance(payload.get("record_sha256"), str):
                wanted.append((payload["record_sha256"], f"records/{payload['record_sha256']}.json"))
            if isinstance(payload.get("raw_sha256"), str):
                ext = "html" if payload.get("raw_kind") == "html" else "json"
                wanted.append((payload["raw_sha256"], f"captures/{payload['raw_sha256']}.{ext}"))
            if payload.get("item") in ("media", "screenshot") and isinstance(payload.get("sha256"), str):
                wanted.append((payload["sha256"], "media"))
            if payload.get("item") == "page" and _is_sha256(payload.get("page_sha256")):
                wanted.append((payload["page_sha256"], f"captures/pages/{payload['page_sha256']}"))
            for sha, path in wanted:
                if sha in bound:
                    continue
                bound.add(sha)
                data: bytes | None
                if path == "media":
                    reason = await self._media_reason(payload, role, viewer, policy)
                    data = None if reason else await self.media.read(sha) if self.media else None
                    if data is None and reason is None:
                        reason = "media bytes are no longer held"
                    path = f"captures/media/{sha}"
                elif not policy.content:
                    data, reason = None, policy.reason
                else:
                    reason = None
                    data = (await self.records.get([sha])).get(sha)
                    if data is None and path.startswith("captures/pages/"):
                        data = await page_bodies.body(sha)
                    elif data is None and path.startswith("captures/"):
                        with translate_errors("read raw capture"):
                            raw = await messages.raw_capture(sha)
                        data = raw["content"].encode("utf-8") if raw else None
                    if data is not None and hashlib.sha256(data).hexdigest() != sha:
                        data, reason = None, "the stored copy no longer has this digest (altered in the store)"
                    elif data is None:
                        reason = "not found in the store"
                if data is None:
                    manifest_files.append({"path": None, "sha256": sha, "seq": seq, "withheld": reason})
                else:
                    files[path] = data
                    manifest_files.append({"path": path, "sha256": sha, "seq": seq})
                    _archive(payload, seq, sha, path, data, web, shots, pages)

        extras: dict[str, dict[str, Any]] = {}  # manifest members for the derived files below
        derived: dict[str, bytes] = {}
        if web or shots or pages:
            warc = await asyncio.to_thread(write_warc, web, shots, pages)
            listed = pages_of(web, shots, pages)
            wacz = await asyncio.to_thread(write_wacz, warc, listed, title=f"tgwatch case {case_id}")
            derived[WEB_ARCHIVE] = wacz
            extras["web_archive"] = {"path": WEB_ARCHIVE, "sha256": hashlib.sha256(wacz).hexdigest(),
                                     "records": len(web) + len(shots) + len(pages)}  # fmt: skip
        reports = [(await gap_report(self.ledger.store, key)).to_dict() for key in sorted(case_channels)]
        if reports:
            gaps = json.dumps({"channels": reports}, indent=2, ensure_ascii=False).encode("utf-8")
            derived[GAP_REPORT] = gaps
            extras["gap_report"] = {"path": GAP_REPORT, "sha256": hashlib.sha256(gaps).hexdigest()}

        created = utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        withheld = sum(1 for f in manifest_files if f["path"] is None)
        signing_key_id = key_id(self.public_key)
        how_to = HOW_TO_VERIFY.format(
            case=case_id,
            created=created,
            actor=actor,
            role=role,
            entries=len(selected) + 1,
            files=len(files),
            withheld=withheld,
            key_id=signing_key_id,
            name=out.name,
        ).encode("utf-8")
        verifier = await asyncio.to_thread(Path(verify_bundle.__file__).read_bytes)
        manifest_bytes = _manifest_bytes(
            case_id,
            created,
            actor,
            role,
            since,
            until,
            signing_key_id,
            seqs,
            manifest_files,
            verifier,
            how_to,
            {**extras, **({"withheld_entries": hidden} if hidden else {})},
        )
        export_seq = await self.ledger.append(
            export_entry(case_id, actor, role, since, until, seqs, hashlib.sha256(manifest_bytes).hexdigest())
        )
        export_doc = await self.ledger.entry(export_seq)
        assert export_doc is not None
        selected.append(export_doc)
        head = await self._head(export_seq)

        entries_lines = []
        proofs: dict[str, bytes] = {}
        for doc in selected:
            seq = int(doc["seq"])
            line = (
                {"seq": seq, "leaf_hash": doc["leaf_hash"], "withheld": WITHHELD_ENTRY}
                if seq in hidden_set
                else {"seq": seq, "payload": doc["payload"], "leaf_hash": doc["leaf_hash"]}
            )
            entries_lines.append(json.dumps(line, ensure_ascii=False))
            audit_path = await self.ledger.inclusion_proof(seq, head.size)
            proof = {"seq": seq, "leaf_index": seq, "tree_size": head.size, "audit_path": [p.hex() for p in audit_path]}
            proofs[f"proofs/{seq}.json"] = json.dumps(proof).encode()
        members: list[tuple[str, bytes]] = [
            ("manifest.json", manifest_bytes),
            ("ledger/entries.jsonl", ("\n".join(entries_lines) + "\n").encode("utf-8")),
            ("tree_head.json", json.dumps(head.to_dict(), indent=2).encode()),
            ("public_key.pem", public_key_pem(self.public_key)),
            ("verify_bundle.py", verifier),
            ("HOW-TO-VERIFY.txt", how_to),
            *sorted(proofs.items(), key=lambda kv: int(kv[0][7:-5])),
            *sorted(files.items()),
            *sorted(derived.items()),
        ]
        await asyncio.to_thread(_write_zip, out, members)
        return ExportResult(out, case_id, len(selected), len(files), withheld, head.size, head.key_id, export_seq)


def _manifest_bytes(
    case_id: str,
    created: str,
    actor: str,
    role: str,
    since: str | None,
    until: str | None,
    signing_key_id: str,
    seqs: list[int],
    files: list[dict[str, Any]],
    verifier: bytes,
    how_to: bytes,
    extras: dict[str, Any] | None = None,
) -> bytes:
    """The manifest as hashed into the export entry: it names no part of that entry, so no cycle."""
    manifest = {
        "format": FORMAT,
        "case": case_id,
        "created": created,
        "exported_by": actor,
        "role": role,
        "from": since,
        "to": until,
        "key_id": signing_key_id,
        "seqs": seqs,
        "files": files,
        "verifier": {
            "verify_bundle.py": hashlib.sha256(verifier).hexdigest(),
            "HOW-TO-VERIFY.txt": hashlib.sha256(how_to).hexdigest(),
        },
        **(extras or {}),
    }
    return json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")


def _write_zip(out: Path, members: list[tuple[str, bytes]]) -> None:
    """Write atomically: a half-written bundle never sits under the final name."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".bundle-", suffix=".zip", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(name, data)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

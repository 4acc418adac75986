"""``/api/v1/ledger/...``: auditors read the ledger, its signed heads and proofs over HTTP.

Every call is audited (who, role, what, how many results), and the audit hook makes each one a
``query`` entry in the very ledger being read.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from aiohttp import web

from crawler.detection.quarantine import Quarantine
from crawler.evidence.access import CaseAccess
from crawler.evidence.app_key import LEDGER
from crawler.evidence.export import Exporter, QuarantineMediaSource
from crawler.evidence.redaction import readership, redact_entries
from crawler.evidence.signing import load_public_key
from crawler.routes.context import AUDIT, SETTINGS, STORE, json_response, problem
from crawler.routes.table import RouteTable, principal
from crawler.tokens import Role
from foundation import keys
from foundation.case_ids import CASE_ID_RULE, is_case_id

READERS = {Role.AUDITOR, Role.INVESTIGATOR}
MAX_ENTRIES = 1000


def _int(request: web.Request, name: str, default: int | None = None, *, low: int = 0) -> int:
    raw = request.query.get(name) or request.match_info.get(name)
    if raw is None:
        if default is None:
            raise web.HTTPBadRequest(reason=f"{name} is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(reason=f"{name} must be an integer") from None
    if value < low:
        raise web.HTTPBadRequest(reason=f"{name} must be >= {low}")
    if value >= 2**63:  # beyond a MongoDB integer
        raise web.HTTPBadRequest(reason=f"{name} is too large")
    return value


async def _audit(request: web.Request, action: str, flt: dict[str, object], count: int) -> None:
    who = principal(request)
    await request.app[AUDIT].record_access(
        actor=who.actor, role=who.role.value, action=action, filter=flt, result_count=count, via="api"
    )


def register(routes: RouteTable) -> None:
    @routes.add(
        "GET",
        "/api/v1/ledger/entries",
        roles={Role.AUDITOR},
        summary="ledger entries in seq order (payload, leaf hash); a watchlist entry of a case the caller is"
        " not a principal of is withheld: seq and leaf hash only",
        tag="ledger",
        query={"from": "first seq (default 0)", "limit": f"at most {MAX_ENTRIES}"},
    )
    async def entries(request: web.Request) -> web.StreamResponse:
        start = _int(request, "from", 0)
        limit = min(_int(request, "limit", 100, low=1), MAX_ENTRIES)
        docs = await request.app[LEDGER].entries(start, limit=limit)
        shown = [{k: d[k] for k in ("seq", "payload", "leaf_hash")} for d in docs]
        out, held = redact_entries(shown, await readership(request.app[STORE], principal(request)))
        await _audit(request, "ledger.entries", {"from": start, "limit": limit, "withheld": held or None}, len(out))
        return json_response({"entries": out})

    @routes.add("GET", "/api/v1/ledger/heads", roles=READERS, summary="signed tree heads, oldest first", tag="ledger")
    async def heads(request: web.Request) -> web.StreamResponse:
        docs = await request.app[LEDGER].heads()
        out = [{k: v for k, v in d.items() if k != "_id"} for d in docs]
        await _audit(request, "ledger.heads", {}, len(out))
        return json_response({"heads": out})

    @routes.add(
        "GET",
        "/api/v1/ledger/proofs/inclusion/{seq}",
        roles=READERS,
        summary="RFC 9162 inclusion proof of one entry",
        tag="ledger",
        query={"tree_size": "tree size to prove against (default: the newest signed head)"},
    )
    async def inclusion(request: web.Request) -> web.StreamResponse:
        ledger = request.app[LEDGER]
        seq = _int(request, "seq")
        head = await ledger.latest_head()
        size = _int(request, "tree_size", int(head["size"]) if head else await ledger.size(), low=1)
        entry = await ledger.entry(seq)
        if entry is None or seq >= size or size > await ledger.size():
            raise web.HTTPNotFound(reason=f"no entry {seq} in a tree of size {size}")
        path = await ledger.inclusion_proof(seq, size)
        await _audit(request, "ledger.inclusion_proof", {"seq": seq, "tree_size": size}, 1)
        return json_response(
            {
                "seq": seq,
                "leaf_index": seq,
                "tree_size": size,
                "leaf_hash": entry["leaf_hash"],
                "audit_path": [p.hex() for p in path],
            }
        )

    @routes.add(
        "GET",
        "/api/v1/ledger/proofs/consistency",
        roles=READERS,
        summary="RFC 9162 consistency proof between two tree sizes",
        tag="ledger",
        query={"first": "the older tree size", "second": "the newer tree size (default: the stored size)"},
    )
    async def consistency(request: web.Request) -> web.StreamResponse:
        ledger = request.app[LEDGER]
        stored = await ledger.size()
        first = _int(request, "first", low=1)
        second = _int(request, "second", stored, low=1)
        if not first <= second <= stored:
            raise web.HTTPBadRequest(reason=f"need 1 <= first <= second <= {stored}")
        proof = await ledger.consistency_proof(first, second)
        await _audit(request, "ledger.consistency_proof", {"first": first, "second": second}, 1)
        return json_response({"first": first, "second": second, "proof": [p.hex() for p in proof]})


def register_export(routes: RouteTable) -> None:
    @routes.add(
        "GET",
        "/api/v1/cases/{case}/bundle",
        roles={Role.INVESTIGATOR, Role.AUDITOR},
        summary="the case evidence bundle (zip, verifiable offline with the verify_bundle.py inside);"
        " investigators: their cases only; auditors: entries, proofs and digests only",
        tag="ledger",
    )
    async def case_bundle(request: web.Request) -> web.StreamResponse:
        ledger = request.app[LEDGER]
        settings = request.app[SETTINGS]
        who = principal(request)
        case = request.match_info["case"]
        if not is_case_id(case):
            return problem(400, f"invalid case id: {CASE_ID_RULE}")
        if not await CaseAccess(request.app[STORE]).may_open_case(who, case):
            await _audit(request, "case.export.refused", {"case": case}, 0)
            return problem(403, f"you are not a member of case {case}", kind="not_authorized")
        if ledger.signer is None:
            return problem(
                409, "this server holds no signing key: export on the signing host (tgwatch evidence export)"
            )
        public = load_public_key(settings.evidence.public_key_path(settings.data_dir).read_bytes())
        quarantine = Quarantine(
            settings.data_dir / "quarantine",
            keys.load_or_create(settings.detection.quarantine_key, settings.data_dir, "quarantine"),
        )
        exporter = Exporter(
            ledger,
            public,
            signer=ledger.signer,
            media=QuarantineMediaSource(quarantine),
            media_roles=settings.evidence.export_media_roles,
        )
        # the file name is ours, never the caller's; the directory goes away whatever happens
        with tempfile.TemporaryDirectory(prefix="tgwatch-export-") as tmp:
            out = Path(tmp) / "bundle.zip"
            result = await exporter.export(case, out, actor=who.actor, role=who.role.value, viewer=who)
            body = await asyncio.to_thread(out.read_bytes)
        await _audit(request, "case.export", {"case": case}, result.entries)
        return web.Response(
            body=body,
            content_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{case}.zip"', "Cache-Control": "no-store"},
        )

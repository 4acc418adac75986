"""HMA-compatible lookup: the matching and bank-listing routes of Meta's Hasher-Matcher-Actioner 2.x
(``OpenMediaMatch``), answered from tgwatch's hash lists, so tools written for HMA can query tgwatch.

HMA mounts its blueprints at ``/m`` (matching), ``/c`` (curation) and ``/h`` (hashing); tgwatch
mounts the same paths under ``/hma`` (a client's base URL becomes ``https://tgwatch.example/hma``)
and behind its own bearer tokens (role ``investigator`` or ``monitor``) instead of HMA's optional
API key. A tgwatch list is an HMA *bank*; a list entry is a bank *content* item whose id is the entry
id (``<list>/<type>/<value>``, a string where HMA has an integer). Lookups go through the same
:class:`~crawler.media.matcher.Matcher` as the crawl: enabled lists only, each list's own threshold,
allow-lists suppressing, quarantined entries left out. Every lookup is audited. The route list and
the fields that differ are in ``docs/hash_exchanges.md``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from crawler.hashing import video
from crawler.hashing.fetch import FetchLimits, fetch_media
from crawler.hashing.images import ImageLimits, PdqHash
from crawler.hashing.pool import HashOptions, MediaHashes, hash_media_sync
from crawler.hashing.video import VideoLimits
from crawler.media.matcher import Matcher, MatchHit
from crawler.routes.context import AUDIT, SETTINGS, STORE, json_response, problem
from crawler.routes.table import RouteTable, principal
from crawler.tokens import Role
from foundation.egress import EgressPolicy
from foundation.egress_http import guarded_session
from foundation.errors import TgwatchError
from storage.repos.hashlists import HashListRepo

MATCHER: web.AppKey[Matcher] = web.AppKey("hma_matcher", Matcher)
ROLES = {Role.INVESTIGATOR, Role.MONITOR}
#: HMA's signal type names → tgwatch's (HMA's ``video_md5`` is any file's MD5 here; ``vpdq`` is
#: python-threatexchange's ``VPDQSignal``: a JSON list of ``"<pdq hex>,<quality>,<timestamp>"`` frames)
HMA_TYPES = {"pdq": "pdq", "video_md5": "md5", "md5": "md5", "sha256": "sha256", "vpdq": "vpdq"}
#: tgwatch's type → the name HMA clients know
TO_HMA = {"pdq": "pdq", "md5": "video_md5", "sha256": "sha256", "vpdq": "vpdq"}
TAG = "hma"


async def _start(app: web.Application) -> None:
    app[MATCHER] = Matcher(app[STORE], app[SETTINGS].matching)


def _single(signal_type: str, value: str) -> MediaHashes:
    """A medium that is known only by one signal (what a hash lookup queries): a vPDQ signal is a
    video of those frames, matched by the vPDQ index with Meta's two-way rule as in the crawl."""
    pdq = PdqHash(value, 100) if signal_type == "pdq" else None
    frames = tuple(video.frames_from_json(value)) if signal_type == "vpdq" else ()
    return MediaHashes(
        sha256=value if signal_type == "sha256" else "",
        md5=value if signal_type == "md5" else "",
        size=0, mime=None, kind="image" if pdq else "video" if frames else "other", pdq=pdq, video_frames=frames,
    )  # fmt: skip


def _signal(request: web.Request) -> tuple[str, str]:
    """(tgwatch type, normalised value) from ``signal_type`` and ``signal``; 400 when unusable."""
    from crawler.hashing import signals

    name, value = request.query.get("signal_type"), request.query.get("signal")
    if not name or value is None:
        raise _bad("missing required parameters: signal_type and signal")
    ours = HMA_TYPES.get(name.strip().lower())
    if ours is None:
        raise _bad(f"No such SignalType '{name}' (supported: {', '.join(sorted(HMA_TYPES))})")
    try:
        return ours, signals.get(ours).validate(value)
    except ValueError as exc:
        raise _bad(f"invalid signal type: {exc}") from None


def _bad(message: str) -> web.HTTPException:
    return web.HTTPBadRequest(text=f'{{"message": {_json_str(message)}}}', content_type="application/json")


def _json_str(text: str) -> str:
    import json

    return json.dumps(text)


def _banks(hits: list[MatchHit]) -> list[str]:
    return sorted({h.list for h in hits})


async def _audit(request: web.Request, action: str, filt: dict[str, Any], count: int) -> None:
    who = principal(request)
    await request.app[AUDIT].record_access(actor=who.actor, role=who.role.value, action=action, filter=filt,
                                           result_count=count)  # fmt: skip


def _options(request: web.Request) -> HashOptions:
    limits = request.app[SETTINGS].limits
    return HashOptions(
        image=ImageLimits(max_bytes=limits.max_media_bytes, max_pixels=limits.max_image_pixels),
        video=VideoLimits(max_bytes=limits.max_media_bytes, max_duration=limits.max_video_seconds),
        dihedral=request.app[SETTINGS].matching.dihedral,
        max_bytes=limits.max_media_bytes,
    )


async def _hashes_by_type(request: web.Request, data: bytes) -> dict[str, MediaHashes]:
    """HMA hashes a file into one signal per type; tgwatch's types (by HMA name) → a query each."""
    hashes = await asyncio.to_thread(hash_media_sync, data, "auto", _options(request))
    out: dict[str, MediaHashes] = {"video_md5": _single("md5", hashes.md5), "sha256": _single("sha256", hashes.sha256)}
    if hashes.pdq is not None:
        out["pdq"] = MediaHashes(sha256="", md5="", size=0, mime=None, kind="image", pdq=hashes.pdq)
    if hashes.video_frames:
        out["vpdq"] = MediaHashes(sha256="", md5="", size=0, mime=None, kind="video", video_frames=hashes.video_frames)
    return out


async def _fetch(request: web.Request, url: str) -> bytes:
    """The media at ``url``, through the egress guard and the media size limit (400 on failure)."""
    settings = request.app[SETTINGS]
    limits = FetchLimits(max_bytes=settings.limits.max_media_bytes, total_timeout=settings.limits.media_fetch_timeout,
                         max_redirects=settings.limits.max_redirects)  # fmt: skip
    policy = EgressPolicy.from_settings(settings)
    try:  # like the crawl's media fetcher: the configured proxy (never the environment's), guarded
        async with guarded_session(policy, proxy=settings.http.proxy) as session:
            fetched = await fetch_media(session, url, limits, policy=policy)
    except TgwatchError as exc:
        raise _bad(f"could not fetch url: {exc}") from None
    return fetched.data


def register(routes: RouteTable) -> None:
    routes.startup.append(_start)

    @routes.add(
        "GET", "/hma/m/raw_lookup", roles=ROLES, tag=TAG,
        summary="HMA: look up one hash; matching content ids (with distances when include_distance)",
        query={"signal_type": "pdq | video_md5 | sha256 | vpdq", "signal": "the hash (vpdq: JSON list of frames)",
               "include_distance": "true|false"},
    )  # fmt: skip
    async def raw_lookup(request: web.Request) -> web.StreamResponse:
        kind, value = _signal(request)
        hits = await request.app[MATCHER].match(_single(kind, value))
        with_distance = request.query.get("include_distance", "false").strip().lower() in ("1", "true", "yes", "t")
        ids = [f"{h.list}/{h.signal_type}/{h.value}" for h in hits]
        matches: list[Any] = (
            [{"content_id": i, "distance": f"{h.distance:g}"} for i, h in zip(ids, hits, strict=True)]
            if with_distance
            else ids
        )
        await _audit(request, "hma.raw_lookup", {"signal_type": kind}, len(hits))
        return json_response({"matches": matches})

    @routes.add(
        "GET", "/hma/m/lookup", roles=ROLES, tag=TAG,
        summary="HMA: banks a hash matches, or (url=) banks per signal type of the media at a URL",
        query={"signal_type": "pdq | video_md5 | sha256 | vpdq", "signal": "the hash", "url": "media URL (instead)"},
    )  # fmt: skip
    async def lookup_get(request: web.Request) -> web.StreamResponse:
        url = request.query.get("url")
        if url:
            by_type = await _hashes_by_type(request, await _fetch(request, url))
            result: Any = {name: _banks(await request.app[MATCHER].match(h)) for name, h in by_type.items()}
            await _audit(request, "hma.lookup_url", {"url": url}, sum(len(v) for v in result.values()))
            return json_response(result)
        kind, value = _signal(request)
        banks = _banks(await request.app[MATCHER].match(_single(kind, value)))
        await _audit(request, "hma.lookup", {"signal_type": kind}, len(banks))
        return json_response(banks)

    @routes.add(
        "POST", "/hma/m/lookup", roles=ROLES, tag=TAG,
        summary="HMA: banks per signal type of uploaded media (multipart/form-data, one file)",
    )  # fmt: skip
    async def lookup_post(request: web.Request) -> web.StreamResponse:
        data = await _upload(request)
        by_type = await _hashes_by_type(request, data)
        result = {name: _banks(await request.app[MATCHER].match(h)) for name, h in by_type.items()}
        await _audit(request, "hma.lookup_file", {"bytes": len(data)}, sum(len(v) for v in result.values()))
        return json_response(result)

    @routes.add("GET", "/hma/m/index/status", roles=ROLES, tag=TAG, summary="HMA: index status per signal type")
    async def index_status(request: web.Request) -> web.StreamResponse:
        docs = await HashListRepo(request.app[STORE]).lists()
        sizes: dict[str, int] = {}
        for doc in docs:
            if doc.get("enabled", True):
                for kind, n in (doc.get("counts") or {}).items():
                    sizes[TO_HMA.get(kind, kind)] = sizes.get(TO_HMA.get(kind, kind), 0) + int(n)
        built = max([int((d.get("sync") or {}).get("last_sync_ts") or 0) for d in docs], default=0) or -1
        return json_response(
            {name: {"present": bool(sizes.get(name)), "built_to": built, "size": sizes.get(name, 0)}
             for name in sorted(set(TO_HMA.values()))}
        )  # fmt: skip

    @routes.add("GET", "/hma/c/banks", roles=ROLES, tag=TAG, summary="HMA: every bank (tgwatch hash list)")
    async def banks_index(request: web.Request) -> web.StreamResponse:
        docs = await HashListRepo(request.app[STORE]).lists()
        return json_response([_bank(d) for d in docs])

    @routes.add("GET", "/hma/c/bank/{bank_name}", roles=ROLES, tag=TAG, summary="HMA: one bank")
    async def bank_show(request: web.Request) -> web.StreamResponse:
        doc = await HashListRepo(request.app[STORE]).get(request.match_info["bank_name"])
        if doc is None:
            return problem(404, f"bank '{request.match_info['bank_name']}' not found")
        return json_response(_bank(doc))


def _bank(doc: dict[str, Any]) -> dict[str, Any]:
    """HMA's ``BankConfig`` fields, plus tgwatch's own under ``tgwatch``."""
    return {
        "name": doc["_id"],
        "matching_enabled_ratio": 1.0 if doc.get("enabled", True) else 0.0,
        "tgwatch": {
            "role": doc.get("role") or "block",
            "counts": {TO_HMA.get(k, k): v for k, v in (doc.get("counts") or {}).items()},
            "withdrawn": int(doc.get("withdrawn", 0)),
            "quarantined": int(doc.get("quarantined", 0)),
            "source": doc.get("source") or f"file:{doc.get('format', '?')}",
        },
    }


async def _upload(request: web.Request) -> bytes:
    """The first file of a multipart body, within the media size limit (400 otherwise)."""
    limit = request.app[SETTINGS].limits.max_media_bytes
    if not request.content_type.startswith("multipart/"):
        raise _bad("expected multipart/form-data with one file")
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader) or part.filename is None:
                continue
            chunks: list[bytes] = []
            size = 0
            while chunk := await part.read_chunk(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
                chunks.append(chunk)
            return b"".join(chunks)
    except (ValueError, aiohttp.ClientError) as exc:
        raise _bad(f"unreadable multipart body: {exc}") from None
    raise _bad("no file in the multipart body")

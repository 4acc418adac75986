"""Safe media review in the console: a blurred greyscale thumbnail, a deliberate audited reveal, and a
match shown side by side with the list entry it matched.

Why the thumbnail is made on the server (after HMA's review UI): the browser never receives the
real picture until a person asks for it, so a CSS filter that fails, a screenshot or a cached page
cannot show it. The thumbnail is decoded from the encrypted quarantine in memory (Pillow, bomb
guarded as the hasher is), shrunk, turned grey and blurred, and answered ``no-store``; nothing is
written to disk. Principals the case rules allow the bytes (``CaseAccess.media_grant``) get it, and
a monitor gets it for media that raised a hash-list match or detection alert
(``CaseAccess.triage_grant``: triage, never the reveal). Revealing is a POST carrying the session's
CSRF token: it is audited (``media.reveal``) before
the page that shows the full item for that one view is rendered.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from aiohttp import web
from PIL import Image, ImageFilter, ImageOps

from crawler.console.pages import page, safe_next
from crawler.console.render import as_datetime, render
from crawler.detection.api import service as detection_service
from crawler.detection.quarantine import QuarantineError
from crawler.evidence.access import CaseAccess
from crawler.hashing.images import ImageLimits, open_checked
from crawler.investigate.access import audit, investigate, media_authorization
from crawler.investigate.pagination import BadQuery
from crawler.investigate.serialize import jsonable
from crawler.routes.context import STORE
from crawler.routes.table import RouteTable
from crawler.tokens import Principal, Role
from foundation.errors import NotFound
from storage.repos.alerts import AlertRepo
from storage.repos.hashlists import HashListRepo
from storage.repos.media import MediaRepo

EVIDENCE = frozenset({Role.INVESTIGATOR, Role.ADMIN})
OPERATIONS = frozenset({Role.MONITOR, Role.INVESTIGATOR, Role.ADMIN})
VIDEO_KINDS = {"video", "round_video", "gif"}
#: the thumbnail's longest side, and how strongly it is blurred: enough to judge layout, not content
PREVIEW_SIDE = 160
PREVIEW_BLUR = 8
NO_STORE = {"Cache-Control": "no-store, private, max-age=0", "Pragma": "no-cache", "Content-Disposition": "inline"}


def sha_of(request: web.Request) -> str:
    sha = request.match_info["sha256"].lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise BadQuery("sha256 must be 64 hexadecimal characters", code="query.bad_hex",
                       params={"field": "sha256", "length": 64})  # fmt: skip
    return sha


def blurred_thumbnail(raw: bytes) -> bytes:
    """A small, greyscale, blurred JPEG of an image's first frame; a plain grey tile for anything else."""
    try:
        img = open_checked(raw, ImageLimits())
        img.draft("L", (PREVIEW_SIDE * 2, PREVIEW_SIDE * 2))
        small = ImageOps.exif_transpose(img) or img
        small = small.convert("L")
        small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
        small = small.filter(ImageFilter.GaussianBlur(PREVIEW_BLUR))
    except Exception:  # not a picture we can decode (video, document, corrupt): a neutral tile
        small = Image.new("L", (PREVIEW_SIDE, PREVIEW_SIDE * 9 // 16), 150)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=70)
    return out.getvalue()


def register(routes: RouteTable) -> None:
    @page(routes, "GET", "/console/media/{sha256}/preview", OPERATIONS, "a blurred greyscale thumbnail of a media item")
    async def preview(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        sha = sha_of(request)
        channels = await (await investigate(request, who, via="console")).media_channels(sha)
        grant = await media_authorization(request.app[STORE], who, sha, channels)
        triage = None if grant is not None else await CaseAccess(request.app[STORE]).triage_grant(who, sha, channels)
        if grant is None and triage is None:
            await audit(request, who, "media.preview.refused", target=sha, via="console", result_count=0)
            raise web.HTTPForbidden(headers=NO_STORE)
        try:
            raw = await detection_service(request).media_bytes(sha)
        except QuarantineError:
            raise web.HTTPNotFound(headers=NO_STORE) from None
        body = await asyncio.to_thread(blurred_thumbnail, raw)
        why = {"case_id": grant.get("case_id")} if grant else {"triage_alert": (triage or {}).get("_id")}
        await audit(request, who, "media.preview", target=sha, via="console", result_count=1, filter=why)
        return web.Response(body=body, content_type="image/jpeg", headers=NO_STORE)

    @page(routes, "POST", "/console/media/{sha256}/reveal", EVIDENCE, "reveal one media item (audited)")
    async def reveal(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        sha = sha_of(request)
        form = await request.post()
        message = str(form.get("message", "")).strip()[:300] or None
        channels = await (await investigate(request, who, via="console")).media_channels(sha)
        grant = await media_authorization(request.app[STORE], who, sha, channels)
        if grant is None:
            await audit(request, who, "media.reveal.refused", target=sha, via="console", result_count=0)
            raise NotFound("no active case authorization covers this media for you", code="access.no_media_grant")
        entry = await audit(request, who, "media.reveal", target=sha, via="console", filter={"message": message})
        doc = await MediaRepo(request.app[STORE]).get(sha) or {}
        back = safe_next(str(form.get("back", "")))  # the page the click came from (pages send no Referer)
        return render(
            request, "reveal.html", **base, sha=sha, at=entry.get("at"),
            video=str(doc.get("media_kind") or doc.get("kind") or "") in VIDEO_KINDS, back=back,
        )  # fmt: skip

    @page(routes, "GET", "/console/match", OPERATIONS, "a hash-list match beside the list entry it matched")
    async def match(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        key = request.query.get("alert", "")
        if not key or len(key) > 300:
            raise BadQuery("an alert key is required", code="form.required", params={"field": "alert"})
        alert = await AlertRepo(request.app[STORE]).get(key)
        if alert is None or alert.get("kind") != "hash_match" or not alert.get("sha256"):
            raise NotFound(f"no hash-list match alert {key}", code="alerts.no_match_alert", params={"key": key})
        sha = str(alert["sha256"])
        details = alert.get("details") or {}
        entry = await _list_entry(request, details)
        sighting = await _sighting(request, sha, details)
        channels = await (await investigate(request, who, via="console")).media_channels(sha)
        revealable = await media_authorization(request.app[STORE], who, sha, channels) is not None
        triage = await CaseAccess(request.app[STORE]).triage_grant(who, sha, channels) is not None
        await audit(request, who, "alerts.match", target=key, result_count=1, via="console")
        return render(
            request, "match.html", **base, alert=jsonable({**alert, "key": key}), entry=entry, sighting=sighting,
            allowed=revealable or triage, reveal_ok=revealable, can_open_media=who.role in EVIDENCE,
        )  # fmt: skip


async def _list_entry(request: web.Request, details: dict[str, Any]) -> dict[str, Any]:
    """The matched entry as the list holds it (label, when added) and the list's own metadata."""
    name, signal, value = details.get("list"), details.get("signal_type"), details.get("value")
    hashlists = HashListRepo(request.app[STORE])
    stored = (await hashlists.exact(str(signal), [str(value)], {str(name)}))[:1] if name and signal and value else []
    listed = await hashlists.get(str(name)) if name else None
    found = stored[0] if stored else {}
    distance = details.get("distance")
    return jsonable(
        {
            "list": name,
            "signal_type": signal,
            "value": value,
            "label": found.get("label") or details.get("label"),
            "added_at": found.get("added_at"),
            "format": (listed or {}).get("format"),
            "imported_at": (listed or {}).get("imported_at"),
            "distance": distance,
            "exact": distance == 0,
        }
    )


async def _sighting(request: web.Request, sha: str, details: dict[str, Any]) -> dict[str, Any]:
    """Where the media was seen: the alert's message, and the first and last time it was seen anywhere."""
    span = await MediaRepo(request.app[STORE]).sighting_span(sha) or {}
    first = details.get("first_seen_at") or span.get("first_seen_at")
    last = details.get("last_seen_at") or span.get("last_seen_at")
    return {
        "message": details.get("message") or span.get("first_message") or "",
        "posted_at": jsonable(details.get("posted_at") or span.get("first_posted_at")),
        "first_seen_at": jsonable(as_datetime(first) if first else None),
        "last_seen_at": jsonable(as_datetime(last) if last else None),
        "count": details.get("sightings") or span.get("sightings"),
    }

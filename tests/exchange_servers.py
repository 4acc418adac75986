"""Loopback servers answering the hash exchanges' documented requests, for python-threatexchange's
real clients to talk to.

- StopNCII (``https://api.stopncii.org/v1``): ``GET /FetchHashes?startTimestamp&pageSize&nextPageToken``
  and ``POST /SubmitFeedback``, both with ``x-functions-key`` and ``Ocp-Apim-Subscription-Key``;
- NCMEC hash sharing v2: ``GET /v2/entries?from&to``, ``GET /v2/feedback/<FP>/reasons`` and
  ``PUT /v2/entries/<member>/<entry>/<FP>/feedback`` (a ``feedbackSubmission`` XML body), with HTTP
  basic auth, XML;
- Meta ThreatExchange Graph API: ``GET /<privacy group>/threat_updates/?access_token&start_time&limit``
  and ``POST /<descriptor id>/?access_token&reactions=…`` (or ``reactions_to_remove``), answering
  ``{"success": true}``.

The StopNCII server can also redirect its fetches (``redirect_to``), for the egress guard's hop test.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from aiohttp import web
from aiohttp.test_utils import TestServer

FETCH_KEY, FEEDBACK_KEY, SUBSCRIPTION_KEY = "fetch-key-123", "feedback-key-456", "sub-key-789"
NCMEC_USER, NCMEC_PASSWORD = "esp-user", "esp-pass-secret"
TE_TOKEN = "1234|te-secret-token"


@dataclass
class StopNCII:
    """Hash records (the current snapshot of each), served from ``startTimestamp`` on, two per page."""

    records: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 2
    fetches: list[dict[str, str]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    fail: int = 0  # answer this status to every FetchHashes when set
    redirect_to: str | None = None  # answer every FetchHashes with a redirect there when set

    def put(self, signal_type: str, value: str, status: str = "Active", ts: int = 100, case: str = "C1") -> None:
        self.records = [r for r in self.records if (r["signalType"], r["hashValue"]) != (signal_type, value)]
        self.records.append({"lastModtimestamp": ts, "signalType": signal_type, "hashValue": value,
                             "hashStatus": status, "caseNumbers": {case: status}, "CSPFeedbacks": []})  # fmt: skip

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/FetchHashes", self._fetch)
        app.router.add_post("/v1/SubmitFeedback", self._feedback)
        return app

    def _authorised(self, request: web.Request, function_key: str) -> bool:
        return (request.headers.get("x-functions-key") == function_key
                and request.headers.get("Ocp-Apim-Subscription-Key") == SUBSCRIPTION_KEY)  # fmt: skip

    async def _fetch(self, request: web.Request) -> web.Response:
        if not self._authorised(request, FETCH_KEY):
            return web.json_response({"error": "unauthorised"}, status=401)
        if self.fail:
            return web.json_response({"error": "down"}, status=self.fail)
        if self.redirect_to:
            raise web.HTTPFound(self.redirect_to)
        self.fetches.append(dict(request.query))
        start = int(request.query["startTimestamp"])
        size = min(int(request.query.get("pageSize", "800")), self.page_size)
        offset = int(request.query.get("nextPageToken") or 0)
        matching = sorted(
            (r for r in self.records if r["lastModtimestamp"] >= start), key=lambda r: r["lastModtimestamp"]
        )
        page = matching[offset : offset + size]
        more = offset + size < len(matching)
        newest = max([r["lastModtimestamp"] for r in matching], default=start - 1) + 1
        return web.json_response({"count": len(page), "nextPageToken": str(offset + size) if more else None,
                                  "nextSetTimestamp": newest, "hasMoreRecords": more, "hashRecords": page})  # fmt: skip

    async def _feedback(self, request: web.Request) -> web.Response:
        if not self._authorised(request, FEEDBACK_KEY):
            return web.json_response({"error": "unauthorised"}, status=401)
        self.feedback.append(await request.json())
        return web.json_response({})


@dataclass
class NCMEC:
    """Entries (``<image>``/``<video>`` or their ``<deleted…>`` tombstones) with their update time;
    feedback PUTs recorded as (path, XML body)."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    #: downvote reasons per fingerprint type: GUID → name (served as ``<reason guid name type/>``, the
    #: attributes the library's ``feedback_reasons`` reads)
    reasons: dict[str, dict[str, str]] = field(default_factory=dict)
    feedback: list[tuple[str, str]] = field(default_factory=list)

    def put(self, entry_id: str, kind: str, fingerprints: dict[str, str], ts: int, *, deleted: bool = False,
            member: int = 42, classification: str = "A1") -> None:  # fmt: skip
        self.entries = [e for e in self.entries if e["id"] != entry_id]
        self.entries.append({"id": entry_id, "kind": kind, "fp": fingerprints, "ts": ts, "deleted": deleted,
                             "member": member, "classification": classification})  # fmt: skip

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v2/entries", self._entries)
        app.router.add_get("/v2/feedback/{fp}/reasons", self._reasons)
        app.router.add_put("/v2/entries/{member}/{entry}/{fp}/feedback", self._feedback)
        return app

    @staticmethod
    def _authorised(request: web.Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{NCMEC_USER}:{NCMEC_PASSWORD}".encode()).decode()
        return request.headers.get("Authorization") == expected

    async def _reasons(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401)
        items = "".join(
            f'<reason guid="{g}" name="{escape(n)}" type="{request.match_info["fp"]}"/>'
            for g, n in self.reasons.get(request.match_info["fp"], {}).items()
        )
        listed = f"<availableFeedbackReasons>{items}</availableFeedbackReasons>"
        body = f'<feedbackReasons xmlns="{NCMEC_NS}">{listed}</feedbackReasons>'
        return web.Response(text=body, content_type="application/xml")

    async def _feedback(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401)
        info = request.match_info
        known = {f"{e['member']}-{e['id']}" for e in self.entries if not e["deleted"]}
        if f"{info['member']}-{info['entry']}" not in known:
            return web.Response(status=404)
        self.feedback.append((f"{info['member']}/{info['entry']}/{info['fp']}", await request.text()))
        return web.Response(status=200)

    async def _entries(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401)
        self.requests.append(dict(request.query))
        lo, hi = (_ts(request.query[k]) for k in ("from", "to"))
        chosen = [e for e in self.entries if lo <= e["ts"] <= hi]
        parts = []
        for kind in ("image", "video"):
            mine = [e for e in chosen if e["kind"] == kind]
            if not mine:
                continue
            newest = datetime.fromtimestamp(max(e["ts"] for e in mine), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            items = "".join(_ncmec_entry(e) for e in mine)
            parts.append(f'<{kind}s maxTimestamp="{newest}">{items}</{kind}s>')
        body = f'<queryResult xmlns="">{"".join(parts)}<paging></paging></queryResult>'
        return web.Response(text=body, content_type="application/xml")


NCMEC_NS = "https://hashsharing.ncmec.org/hashsharing/v2"


def _ts(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def _ncmec_entry(e: dict[str, Any]) -> str:
    tag = ("deleted" + e["kind"].capitalize()) if e["deleted"] else e["kind"]
    fps = "" if e["deleted"] else "".join(f"<{k}>{escape(v)}</{k}>" for k, v in e["fp"].items())
    member = f'<member id="{e["member"]}">ESP</member>'
    body = f"<classification>{e['classification']}</classification><fingerprints>{fps}</fingerprints>"
    return f"<{tag}><id>{e['id']}</id>{member}{body}</{tag}>"


@dataclass
class ThreatExchange:
    """``/threat_updates`` of privacy groups: indicator updates (``should_delete`` tombstones too)."""

    updates: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    #: reaction POSTs: (descriptor id, query without the token, urlencoded body)
    reactions: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)

    def put(self, group: int, ident: int, kind: str, indicator: str, ts: int, *, delete: bool = False,
            tags: tuple[str, ...] = ("ncii",)) -> None:  # fmt: skip
        rows = [u for u in self.updates.get(group, []) if u["id"] != str(ident)]
        descriptor = {"id": str(ident * 10), "owner": {"id": "777"}, "status": "MALICIOUS",
                      "tags": list(tags), "reactions": []}  # fmt: skip
        rows.append({"id": str(ident), "indicator": indicator, "type": kind, "last_updated": ts,
                     "should_delete": delete, "descriptors": {"data": [descriptor]}})  # fmt: skip
        self.updates[group] = rows

    def add_descriptor(self, group: int, ident: int, descriptor: int, ts: int, *, owner: str = "888") -> None:
        """Another member's descriptor on an indicator already served, in a new update at ``ts``
        (the update carries all the indicator's descriptors, as the Graph API's does)."""
        [row] = [u for u in self.updates[group] if u["id"] == str(ident)]
        row["descriptors"]["data"].append({"id": str(descriptor), "owner": {"id": owner}, "status": "MALICIOUS",
                                           "tags": ["ncii"], "reactions": []})  # fmt: skip
        row["last_updated"] = ts

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{group}/threat_updates/", self._updates)
        app.router.add_post("/{descriptor}/", self._react)
        return app

    async def _react(self, request: web.Request) -> web.Response:
        if request.query.get("access_token") != TE_TOKEN:
            return web.json_response({"error": {"message": "bad token"}}, status=400)
        descriptor = request.match_info["descriptor"]
        known = {d["id"] for rows in self.updates.values() for u in rows for d in u["descriptors"]["data"]}
        if descriptor not in known:
            return web.json_response({"error": {"message": f"unknown object {descriptor}"}}, status=400)
        query = {k: v for k, v in request.query.items() if k != "access_token"}
        # the library POSTs the urlencoded parameters without a content type: parse the raw body
        self.reactions.append((descriptor, query, dict(parse_qsl(await request.text()))))
        return web.json_response({"success": True})

    async def _updates(self, request: web.Request) -> web.Response:
        if request.query.get("access_token") != TE_TOKEN:
            return web.json_response({"error": {"message": "bad token"}}, status=400)
        self.requests.append(dict(request.query))
        start = int(request.query.get("start_time") or 0)
        rows = [u for u in self.updates.get(int(request.match_info["group"]), []) if u["last_updated"] >= start]
        return web.json_response({"data": sorted(rows, key=lambda u: u["last_updated"]), "paging": {}})


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """The app on 127.0.0.1; its base URL (no trailing slash)."""
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")

"""Hostile values in signatures, CSRF tokens, cursors and JSON bodies are clear 4xx answers, never 500s."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from crawler.investigate.pagination import fingerprint
from crawler.tokens import Role
from storage.client import Store
from tests.security.support import bearer, serve, settings, sign_in, token

NON_ASCII = "ü" * 64


async def test_non_ascii_signature_and_csrf_values_are_refused_not_errors(store: Store, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    async with serve(store, cfg) as client:
        resp = await client.get(f"/api/v1/detection/media/{'0' * 64}", params={"exp": "9999999999", "sig": NON_ASCII})
        assert resp.status == 403
        # the sign-in form's own CSRF field
        resp = await client.post("/console/login", data={"token": "tgw_x", "csrf_token": NON_ASCII})
        assert resp.status == 400
        # a console form of a signed-in session
        assert (await sign_in(client, await token(store, cfg, Role.MONITOR))).status == 303
        resp = await client.post("/console/alerts/status", data={"key": "k", "status": "open", "csrf_token": NON_ASCII})
        assert resp.status == 403
        # the CSRF header of a cookie-authenticated API call
        resp = await client.post(
            "/api/v1/tips", json={"link": "https://t.me/abc_def"}, headers={"X-CSRF-Token": NON_ASCII}
        )
        assert resp.status == 403


async def test_a_cursor_past_any_real_offset_is_a_400(store: Store, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    scope = fingerprint({"actor": None, "action": None})
    async with serve(store, cfg) as client:
        hdr = bearer(await token(store, cfg, Role.AUDITOR))
        for offset in (2**63, 2**64 + 5, 10**30):
            raw = json.dumps({"o": offset, "f": scope}).encode()
            cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
            resp = await client.get("/api/v1/audit", params={"cursor": cursor}, headers=hdr)
            assert resp.status == 400, (offset, resp.status)
        nested = base64.urlsafe_b64encode(b"[" * 100_000).decode()
        assert (await client.get("/api/v1/audit", params={"cursor": nested}, headers=hdr)).status == 400


async def test_a_deeply_nested_json_body_is_a_400(store: Store, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    async with serve(store, cfg) as client:
        hdr = {**bearer(await token(store, cfg, Role.MONITOR)), "Content-Type": "application/json"}
        for body in (b"[" * 100_000 + b"]" * 100_000, b'{"link": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
            resp = await client.post("/api/v1/tips", data=body, headers=hdr)
            assert resp.status == 400
            assert "nested deeper" in (await resp.json())["error"]
        ok = await client.post(
            "/api/v1/tips", json={"link": "https://t.me/abc_def", "note": "[{]} in a string"}, headers=hdr
        )
        assert ok.status == 201, await ok.text()

"""The case evidence bundle over the API: a zip that verifies offline with nothing but itself."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

import config
from crawler.api.app import build_app
from crawler.evidence.cases import Cases
from crawler.evidence.members import CaseMembers
from crawler.evidence.signing import generate_key
from crawler.evidence.verify_bundle import verify_bundle
from crawler.evidence.wiring import build_ledger
from crawler.pipeline import open_pipeline
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from foundation.models import ChannelRef, Message, RawCapture, Source
from storage.client import Store

T0 = datetime(2026, 4, 1, tzinfo=UTC)


async def test_investigator_downloads_a_bundle_that_verifies_offline(store: Store, tmp_path: Path) -> None:
    settings = config.load(data_dir=tmp_path / "data", media={"fetch": False})
    key = settings.evidence.private_key_path(settings.data_dir)
    generate_key(key.parent, name=key.name)
    ref = ChannelRef(username="case_channel")
    async with open_pipeline(store, settings) as ingest:
        for i in (1, 2, 3):
            html = f"<div>post {i}</div>"
            await ingest.submit(
                [Message(ref=ref, msg_id=i, source=Source.WEB, date=T0, text=f"post {i}",
                         raw=RawCapture.of("html", html, url="http://x/s/case_channel", fetched_at=T0))]
            )  # fmt: skip
    ledger = build_ledger(store, settings)
    await Cases(ledger).add("CASE-7", channel="case_channel", actor="lead")
    app = build_app(store, settings, ALL_MODULES)
    tokens = TokenRepo(store, server_secret(config.load()))
    investigator, _ = await tokens.create("inv", Role.INVESTIGATOR)
    admin, _ = await tokens.create("boss", Role.ADMIN)
    await CaseMembers(ledger).add("CASE-7", "inv", actor="boss")  # investigators export only their cases
    async with TestClient(TestServer(app)) as client:
        hdr = {"Authorization": f"Bearer {investigator}"}
        resp = await client.get("/api/v1/cases/CASE-7/bundle", headers=hdr)
        assert resp.status == 200 and resp.content_type == "application/zip"
        assert 'filename="CASE-7.zip"' in resp.headers["Content-Disposition"]
        bundle = tmp_path / "case.zip"
        bundle.write_bytes(await resp.read())
        missing = await client.get("/api/v1/cases/NO-SUCH-CASE/bundle", headers={"Authorization": f"Bearer {admin}"})
        assert missing.status == 404
    result = verify_bundle(bundle)
    assert result.ok, result.summary()
    exports = await store["ledger"].find({"kind": "export"}).to_list(None)
    assert len(exports) == 1, "the export itself is a ledger entry"
    audit = await store["audit"].find({"action": "case.export"}).to_list(None)
    assert audit and audit[0]["actor"] == "token:inv"


async def test_a_server_without_the_signing_key_refuses_clearly(store: Store, tmp_path: Path) -> None:
    app = build_app(store, config.load(data_dir=tmp_path), ALL_MODULES)
    token, _ = await TokenRepo(store, server_secret(config.load())).create("aud", Role.AUDITOR)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/api/v1/cases/ANY/bundle", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 409 and "signing key" in (await resp.json())["error"]

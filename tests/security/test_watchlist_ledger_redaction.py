"""Watchlist entries in the evidence ledger: integrity for every reader, content for the case only.

A consent record (enrollment), a faces detector's match and a read of a watchlist alert each tell
that a named person asked for help. An auditor checks the ledger (leaf hashes, inclusion proofs,
signed heads, bundles) but reads those entries' content only as a principal of the case, and an
investigator outside the case never does. Each read is audited with what was withheld. The faces
detector's verdicts are accepted only from the token that leased that very job.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestServer

import config
from config import Settings
from crawler.api.app import build_app
from crawler.detection.client import DetectionClient
from crawler.evidence.entries import watchlist_entry
from crawler.evidence.members import CaseMembers
from crawler.evidence.signing import generate_key
from crawler.evidence.verify_bundle import verify_bundle, verify_inclusion
from crawler.evidence.wiring import build_ledger
from crawler.pipeline import open_pipeline
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from crawler.watchlist.sealing import Sealer, watchlist_key
from foundation.models import ChannelRef, Message, Source, utcnow
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.verdicts import VerdictRepo
from storage.repos.watchlist import WatchlistRepo
from storage.workqueue import WorkQueue
from tests.security.support import serve, sign_in

KEY = base64.urlsafe_b64encode(b"r" * 32).decode()
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)
PERSON, CASE, CONSENT = "p-secret-17", "CASE-WL", "CONSENT-DOC-4711"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    cfg = config.load(data_dir=tmp_path / "data", watchlist={"key": KEY}, detection={"detectors": ["faces"]})
    key = cfg.evidence.private_key_path(cfg.data_dir)
    generate_key(key.parent, name=key.name)
    return cfg


@pytest.fixture
async def api(store: Store, settings: Settings) -> AsyncIterator[TestServer]:
    async with TestServer(build_app(store, settings, ALL_MODULES), host="127.0.0.1") as srv:
        yield srv


async def enroll(store: Store, settings: Settings, *, expires_in: timedelta = timedelta(days=30)) -> None:
    """An enrollment as ``watchlist enroll`` makes it: the consent ledger entry and the sealed record."""
    ledger = build_ledger(store, settings)
    expires = utcnow() + expires_in
    seq = await ledger.append(
        watchlist_entry(action="enroll", person=PERSON, case=CASE, actor="cli:staff", consent_ref=CONSENT,
                        expires_at=expires, photos=1, embeddings=1)
    )  # fmt: skip
    vectors = np.random.default_rng(3).normal(size=(1, 128)).astype(np.float32)
    sealed = Sealer(watchlist_key(settings)).seal(PERSON, vectors)
    await WatchlistRepo(store).insert(
        {
            "_id": PERSON, "state": "active", "case": CASE, "consent_ref": CONSENT, "enrolled_by": "cli:staff",
            "enrolled_at": utcnow(), "expires_at": expires, "expires_ts": expires.timestamp(), "embeddings": 1,
            "model": "dlib-resnet-v1+hog", "consent_seq": seq, "sealed": base64.b64encode(sealed).decode("ascii"),
        }
    )  # fmt: skip


def match_body(job: dict[str, Any], person: str = PERSON) -> dict[str, Any]:
    hit = {"person": person, "distance": 0.3, "box": [1, 1, 50, 50]}
    verdict = {"decision": "watchlist_match", "matches": [hit]}
    return {"job_id": job["job_id"], "token": job["token"], "verdict": verdict}


async def queue_media(store: Store, settings: Settings) -> str:
    """A quarantined media item on the faces detector's queue (what the media stage does)."""
    from crawler.detection.service import DetectionService

    svc = DetectionService(store, settings)
    sha = svc.quarantine.put(PNG)
    assert await svc.enqueue(sha) == [f"{sha}/faces"]
    return sha


async def world(store: Store, settings: Settings, api: TestServer) -> dict[str, str]:
    """Her enrollment, a match posted by the faces detector over the API, tokens for every reader."""
    await enroll(store, settings)
    sha = await queue_media(store, settings)
    tokens = TokenRepo(store, server_secret(settings))
    out = {"sha": sha}
    roles = {"faces-det": Role.DETECTOR, "aud": Role.AUDITOR, "aud-case": Role.AUDITOR,
             "inv-case": Role.INVESTIGATOR, "inv-other": Role.INVESTIGATOR, "adm": Role.ADMIN}  # fmt: skip
    for name, role in roles.items():
        out[name], _ = await tokens.create(name, role)
    ledger = build_ledger(store, settings)
    await CaseMembers(ledger).add(CASE, "inv-case", actor="cli:staff")
    await CaseMembers(ledger).add(CASE, "aud-case", actor="cli:staff")
    await CaseMembers(ledger).add("CASE-OTHER", "inv-other", actor="cli:staff")
    async with DetectionClient(str(api.make_url("/")), out["faces-det"]) as client:
        (job,) = await client.claim(1, detector="faces")
        answer = await client.ack(job, match_body(job)["verdict"])
    assert answer["verdict"]["decision"] == "watchlist_match"
    return out


async def call(api: TestServer, token: str, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        url = str(api.make_url(path))
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            body = await resp.read()
            if resp.content_type == "application/json":
                return resp.status, json.loads(body)
            return resp.status, body


def revealing(text: str) -> list[str]:
    return [s for s in (PERSON, CONSENT, '"watchlist_match"', '"faces"') if s in text]


async def test_an_auditor_verifies_watchlist_entries_without_reading_them(
    store: Store, settings: Settings, api: TestServer
) -> None:
    tokens = await world(store, settings, api)
    ledger = build_ledger(store, settings)
    stored = {int(d["seq"]): d for d in await ledger.entries(0)}
    restricted = sorted(s for s, d in stored.items() if d["kind"] in ("watchlist", "verdict"))
    assert len(restricted) == 2, "the consent record and the match verdict"

    status, body = await call(api, tokens["aud"], "/api/v1/ledger/entries?limit=1000")
    assert status == 200
    assert revealing(json.dumps(body)) == [], "an auditor outside the case reads no watchlist content"
    shown = {e["seq"]: e for e in body["entries"]}
    assert sorted(shown) == sorted(stored), "every entry keeps its place"
    for seq in restricted:
        assert shown[seq]["kind"] == "withheld" and shown[seq]["payload"] is None
        assert shown[seq]["leaf_hash"] == stored[seq]["leaf_hash"]
    assert all(shown[s]["payload"] == stored[s]["payload"] for s in stored if s not in restricted)

    # integrity: each withheld leaf is proved into the signed tree with nothing but its leaf hash
    size = await ledger.size()
    root = await ledger.root(size)
    for seq in restricted:
        status, proof = await call(api, tokens["aud"], f"/api/v1/ledger/proofs/inclusion/{seq}?tree_size={size}")
        assert status == 200
        path = [bytes.fromhex(p) for p in proof["audit_path"]]
        assert verify_inclusion(bytes.fromhex(shown[seq]["leaf_hash"]), seq, size, path, root)

    # an auditor who is a principal of the case reads them
    status, body = await call(api, tokens["aud-case"], "/api/v1/ledger/entries?limit=1000")
    assert status == 200 and PERSON in json.dumps(body) and CONSENT in json.dumps(body)

    # who read what: the audit record says which entries were withheld from whom
    reads = await store["audit"].find({"action": "ledger.entries"}).to_list(None)
    by_actor = {r["actor"]: r for r in reads}
    assert by_actor["token:aud"]["filter"]["withheld"] == restricted
    assert "withheld" not in by_actor["token:aud-case"]["filter"]


async def test_bundles_withhold_watchlist_entries_from_recipients_outside_the_case(
    store: Store, settings: Settings, api: TestServer, tmp_path: Path
) -> None:
    tokens = await world(store, settings, api)

    async def bundle(token: str) -> tuple[Path, dict[str, str]]:
        status, data = await call(api, token, f"/api/v1/cases/{CASE}/bundle")
        assert status == 200, data
        path = tmp_path / f"{token[:8]}.zip"
        path.write_bytes(data)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return path, {n: zf.read(n).decode("utf-8", "replace") for n in zf.namelist()}

    path, members = await bundle(tokens["aud"])
    assert revealing(members["ledger/entries.jsonl"]) == [] and revealing(members["manifest.json"]) == []
    check = verify_bundle(path)
    assert check.ok, check.summary()
    assert check.withheld_entries == 2 and "2 entries withheld" in check.summary()
    assert len(json.loads(members["manifest.json"])["withheld_entries"]) == 2

    path, members = await bundle(tokens["inv-case"])
    check = verify_bundle(path)
    assert check.ok and check.withheld_entries == 0
    assert PERSON in members["ledger/entries.jsonl"] and CONSENT in members["ledger/entries.jsonl"]

    status, _ = await call(api, tokens["inv-other"], f"/api/v1/cases/{CASE}/bundle")
    assert status == 403


async def test_a_withheld_line_the_manifest_does_not_declare_fails_verification(
    store: Store, settings: Settings, api: TestServer, tmp_path: Path
) -> None:
    """Leaving a payload out is a statement the signed manifest must make; nobody can add one later."""
    tokens = await world(store, settings, api)
    status, data = await call(api, tokens["inv-case"], f"/api/v1/cases/{CASE}/bundle")
    assert status == 200
    src = zipfile.ZipFile(io.BytesIO(data))
    lines = src.read("ledger/entries.jsonl").decode().splitlines()
    first = json.loads(lines[0])
    lines[0] = json.dumps({"seq": first["seq"], "leaf_hash": first["leaf_hash"], "withheld": "trust me"})
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w") as out:
        for name in src.namelist():
            out.writestr(name, "\n".join(lines) + "\n" if name == "ledger/entries.jsonl" else src.read(name))
    check = verify_bundle(forged)
    assert not check.ok and "does not list it as withheld" in (check.reason or "")


async def test_the_audit_trail_does_not_name_watchlist_alerts_to_auditors(
    store: Store, settings: Settings, api: TestServer
) -> None:
    tokens = await world(store, settings, api)
    (alert,) = [a for a in await AlertRepo(store).list(limit=10) if a["kind"] == "watchlist_match"]
    async with aiohttp.ClientSession() as http:
        url = str(api.make_url(f"/api/v1/alerts/{alert['_id']}/status"))
        headers = {"Authorization": f"Bearer {tokens['inv-case']}"}
        async with http.post(url, json={"status": "acknowledged"}, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
        listing = str(api.make_url("/api/v1/alerts?kind=watchlist_match"))
        async with http.get(listing, headers=headers) as resp:
            assert resp.status == 200

    status, body = await call(api, tokens["aud"], "/api/v1/audit?limit=200")
    assert status == 200
    assert revealing(json.dumps(body)) == []
    records = {r["action"]: r for r in body["items"] if r["actor"] == "token:inv-case"}
    assert records["alerts.status"]["target"] is None and records["alerts.status"]["withheld"]
    assert records["alerts.list"]["result_count"] is None, "not even how many matches her case has"

    status, body = await call(api, tokens["adm"], "/api/v1/audit?limit=200")
    assert status == 200 and alert["_id"] in json.dumps(body), "an admin reads the whole trail"

    # the ledger's query entries made of those reads are withheld the same way
    status, body = await call(api, tokens["aud"], "/api/v1/ledger/entries?limit=1000")
    assert status == 200 and revealing(json.dumps(body)) == [] and alert["_id"] not in json.dumps(body)


async def test_only_the_token_that_leased_a_faces_job_can_settle_it(
    store: Store, settings: Settings, api: TestServer
) -> None:
    await enroll(store, settings)
    sha = await queue_media(store, settings)
    tokens = TokenRepo(store, server_secret(settings))
    faces, _ = await tokens.create("faces-det", Role.DETECTOR)
    other, _ = await tokens.create("classifier", Role.DETECTOR)
    base = str(api.make_url("/"))
    async with DetectionClient(base, faces) as client:
        (job,) = await client.claim(1, detector="faces")
    # another detector token that learnt the job id and lease token (a log, a shared machine)
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {other}"}
        async with http.post(f"{base}api/v1/detection/ack", json=match_body(job), headers=headers) as resp:
            assert resp.status == 409 and (await resp.json())["kind"] == "lease_lost"
        nack = {"job_id": job["job_id"], "token": job["token"], "error": "x"}
        async with http.post(f"{base}api/v1/detection/nack", json=nack, headers=headers) as resp:
            assert resp.status == 409
    assert await VerdictRepo(store).of_media(sha) == []
    assert [a for a in await AlertRepo(store).list(limit=10) if a["kind"] == "watchlist_match"] == []
    queued = await WorkQueue(store, "detection_jobs").get(job["job_id"])
    assert queued is not None and queued["state"] == "leased"

    # the token that leased it settles it
    async with DetectionClient(base, faces) as client:
        answer = await client.ack(job, match_body(job)["verdict"])
    assert answer["verdict"]["decision"] == "watchlist_match"


async def test_a_match_naming_a_person_whose_consent_expired_is_not_accepted(
    store: Store, settings: Settings, api: TestServer
) -> None:
    await enroll(store, settings)
    doc = await WatchlistRepo(store).raw(PERSON)
    assert doc is not None
    past = utcnow() - timedelta(seconds=1)
    await WatchlistRepo(store).replace({**doc, "expires_at": past, "expires_ts": past.timestamp()})
    sha = await queue_media(store, settings)
    token, _ = await TokenRepo(store, server_secret(settings)).create("faces-det", Role.DETECTOR)
    async with DetectionClient(str(api.make_url("/")), token) as client:
        (job,) = await client.claim(1, detector="faces")
        answer = await client.ack(job, match_body(job)["verdict"])
    assert answer["verdict"]["decision"] == "negative" and answer["verdict"]["matches"] == []
    assert [a for a in await AlertRepo(store).list(limit=10) if a["kind"] == "watchlist_match"] == []
    (verdict,) = await VerdictRepo(store).of_media(sha)
    assert verdict["decision"] == "negative"


async def test_a_takedown_made_from_a_watchlist_match_does_not_name_her_to_its_readers(
    store: Store, settings: Settings, api: TestServer
) -> None:
    """An admin reports the channel from her case's match by hand; monitors and auditors read takedowns."""
    tokens = await world(store, settings, api)
    async with open_pipeline(store, settings) as ingest:
        ref = ChannelRef(username="wl_channel")
        await ingest.submit([Message(ref=ref, msg_id=1, source=Source.WEB, date=utcnow(), text="post")])
    (alert,) = [a for a in await AlertRepo(store).list(limit=10) if a["kind"] == "watchlist_match"]
    monitor, _ = await TokenRepo(store, server_secret(settings)).create("mon", Role.MONITOR)
    async with aiohttp.ClientSession() as http:
        body = {"alert": alert["_id"], "messages": ["wl_channel/1"], "reason": "sexual_deepfake"}
        url = str(api.make_url("/api/v1/takedowns"))
        async with http.post(url, json=body, headers={"Authorization": f"Bearer {tokens['adm']}"}) as resp:
            assert resp.status == 201, await resp.text()
            request_id = (await resp.json())["id"]
    for token in (monitor, tokens["aud"], tokens["inv-other"]):
        for path in ("/api/v1/takedowns?status=draft", f"/api/v1/takedowns/{request_id}"):
            status, answer = await call(api, token, path)
            assert status in (200, 403) and PERSON not in json.dumps(answer), path
    status, history = await call(api, tokens["aud"], f"/api/v1/takedowns/{request_id}/history")
    assert status == 200 and PERSON not in json.dumps(history)
    assert [e["kind"] for e in history["entries"]] == ["withheld"]
    status, history = await call(api, tokens["inv-case"], f"/api/v1/takedowns/{request_id}/history")
    assert status == 200 and PERSON in json.dumps(history), "her case reads its own takedown's story"

    # the message's ledger proofs (its context view) list the takedown entry: withheld, still proved
    status, context = await call(api, tokens["inv-other"], "/api/v1/messages/wl_channel/1/context")
    assert status == 200 and PERSON not in json.dumps(context)
    (shown,) = [e for e in context["ledger"]["entries"] if e["seq"] == history["entries"][0]["seq"]]
    assert shown["kind"] == "withheld" and shown["payload"] is None and shown["leaf_hash"]
    status, context = await call(api, tokens["inv-case"], "/api/v1/messages/wl_channel/1/context")
    assert status == 200 and PERSON in json.dumps(context)


async def test_the_console_audit_trail_withholds_watchlist_targets_in_korean_and_english(
    store: Store, settings: Settings, api: TestServer
) -> None:
    tokens = await world(store, settings, api)
    (alert,) = [a for a in await AlertRepo(store).list(limit=10) if a["kind"] == "watchlist_match"]
    async with aiohttp.ClientSession() as http:
        url = str(api.make_url(f"/api/v1/alerts/{alert['_id']}/status"))
        headers = {"Authorization": f"Bearer {tokens['inv-case']}"}
        async with http.post(url, json={"status": "acknowledged"}, headers=headers) as resp:
            assert resp.status == 200
    pages = {}
    for lang in ("en", "ko"):
        headers = {"Accept-Language": lang}
        async with serve(store, settings) as client:
            assert (await sign_in(client, tokens["aud"], headers)).status == 303
            pages[lang] = await (await client.get("/console/audit", headers=headers)).text()
    english, korean = pages["en"], pages["ko"]
    assert PERSON not in english and PERSON not in korean and alert["_id"] not in english
    assert "Withheld (consent-based watchlist" in english and "비공개(동의 기반 감시 목록" in korean

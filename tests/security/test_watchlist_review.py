"""The watchlist end to end, and its rails.

A consenting person is enrolled from one photo; a local channel posts her face pasted into a
synthetic scene, another person's face and a scene without a face; tgwatch crawls it; the faces
detector (``tgwatch detector faces``, a separate process on the detection queue) finds her; the
match waits for human review as its own alert kind, visible only to her case's members, and the
takedown policy drafts nothing. Faces that match nobody leave nothing behind. Withdrawing her
consent erases her: the gallery is empty, a new post of her is not matched, and a stale detector's
match is refused by the server.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

pytest.importorskip("dlib", reason="the faces extra is not installed: pip install 'tgwatch[faces]'")

import config
from config import Settings
from crawler.api.app import build_app
from crawler.crawl_web import crawl_channel
from crawler.detection.client import DetectionClient
from crawler.detection.service import DetectionService
from crawler.evidence.ledger import Ledger
from crawler.pipeline import open_pipeline
from crawler.server_modules import ALL_MODULES
from crawler.takedowns.policy import PolicyRefused, TakedownPolicy, check_policy, effective_policy
from crawler.tokens import Role, TokenRepo, server_secret
from crawler.watchlist.faces import FaceModel
from crawler.watchlist.service import WatchlistService
from foundation.models import utcnow
from spiders.sample_site import SampleSite
from spiders.sample_site.content import World, build_world
from spiders.sample_site.publish import empty_channel, with_channel, with_photo_post
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.case_members import CaseMemberRepo
from storage.repos.takedowns import TakedownRepo
from storage.repos.verdicts import VerdictRepo
from storage.repos.watchlist import WatchlistRepo
from storage.schema import COLLECTIONS
from tests.faces_support import ENROLLED, OTHER_PERSON, SAME_PERSON, face_crop, jpeg, paste, registry_face_photos, scene

KEY = base64.urlsafe_b64encode(b"w" * 32).decode()
CHANNEL = "faces_lab"
SIZE = (1280, 720)


class FaceSite(SampleSite):
    """The sample site, serving chosen bytes for chosen photo slots (the synthetic scenes)."""

    served: dict[str, bytes] = {}

    async def _media_file(self, request: web.Request) -> web.StreamResponse:
        media_id = request.match_info["file"].rpartition(".")[0]
        if media_id in self.served:
            return web.Response(body=self.served[media_id], content_type="image/jpeg")
        return await super()._media_file(request)


def publish(world: World, site: FaceSite, data: bytes, text: str) -> World:
    world, message = with_photo_post(world, CHANNEL, text, f"seed-{text}", size=SIZE)
    site.served[message.media[0].media_id] = data
    return world


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return config.load(
        data_dir=tmp_path / "data",
        watchlist={"key": KEY},
        detection={"detectors": ["faces"]},
        http={"autothrottle": False, "retry_times": 1, "allow_private_hosts": ["127.0.0.1"]},
        media={"hash_workers": 1},
    )


@pytest.fixture
async def api(store: Store, settings: Settings) -> AsyncIterator[TestServer]:
    async with TestServer(build_app(store, settings, ALL_MODULES), host="127.0.0.1") as srv:
        yield srv


async def detector_faces(url: str, token_file: Path, data_dir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(TGWATCH_WATCHLIST__KEY=KEY, TGWATCH_DATA_DIR=str(data_dir), TGWATCH_LOG_FORMAT="json")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler", "detector", "faces", "--url", url, "--token-file", str(token_file),
        "--until-empty", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, err.decode()[-2000:]
    return dict(json.loads(out.decode().splitlines()[-1]))


async def crawl(store: Store, settings: Settings, base: str) -> None:
    async with open_pipeline(store, settings) as ingest:
        await crawl_channel(settings, ingest, CHANNEL, base_url=base)


def embedding_like(value: Any) -> bool:
    """Anything that could be a stored face embedding: a long list of floats."""
    if isinstance(value, dict):
        return any(embedding_like(v) for v in value.values())
    if isinstance(value, list):
        if len(value) >= 64 and all(isinstance(v, float) for v in value):
            return True
        return any(embedding_like(v) for v in value)
    return False


async def test_a_consenting_person_is_found_reviewed_by_her_case_only_and_erased_on_withdrawal(
    store: Store, settings: Settings, api: TestServer, tmp_path: Path
) -> None:
    photos = registry_face_photos()
    model = FaceModel()
    service = WatchlistService(store, settings, Ledger(store))
    await service.enroll(
        person="p-1", consent_ref="CONSENT-2026-17", case="C1", photos=[(photos / ENROLLED).read_bytes()],
        expires_at=utcnow() + timedelta(days=180), actor="cli:staff", model=model,
    )  # fmt: skip

    # the channel: her face pasted into a scene (mirrored, JPEG q50), another person, no face at all
    (her,) = model.faces_in((photos / SAME_PERSON[0]).read_bytes())
    (other,) = model.faces_in((photos / OTHER_PERSON).read_bytes())
    her_post = jpeg(paste(face_crop(photos / SAME_PERSON[0], her.box), 7, scale=0.6, mirror=True), 50)
    other_post = jpeg(paste(face_crop(photos / OTHER_PERSON, other.box), 8, scale=0.6), 50)
    empty_post = jpeg(scene(9), 50)
    site = FaceSite(with_channel(build_world(), empty_channel(CHANNEL)))
    world = site.world
    for data, text in ((her_post, "one"), (other_post, "two"), (empty_post, "three")):
        world = publish(world, site, data, text)
    site.set_world(world)
    base = await site.start()
    try:
        await crawl(store, settings, base)

        secret = server_secret(settings)
        tokens = TokenRepo(store, secret)
        detector_token, _ = await tokens.create("faces-detector", Role.DETECTOR)
        token_file = tmp_path / "detector.token"
        token_file.write_text(detector_token)
        url = str(api.make_url("/"))
        stats = await detector_faces(url, token_file, tmp_path / "detector-machine")
        assert stats["enrolled"] == 1 and stats["nacked"] == 0
        assert stats["decisions"] == {"watchlist_match": 1, "negative": 2}

        her_sha, other_sha = hashlib.sha256(her_post).hexdigest(), hashlib.sha256(other_post).hexdigest()
        alerts = [a for a in await AlertRepo(store).list(limit=100) if a["kind"] == "watchlist_match"]
        assert [a["sha256"] for a in alerts] == [her_sha], "one review alert, for her post only"
        (alert,) = alerts
        assert alert["status"] == "open" and alert["details"]["review"] == "human" and alert["details"]["blurred"]
        (match,) = alert["details"]["matches"]
        assert match["person"] == "p-1" and match["case"] == "C1" and match["distance"] <= 0.5
        print(f"pipeline match distance {match['distance']:.3f}, box {match['box']}")
        assert "p-1" not in alert["summary"]
        assert await TakedownRepo(store).all() == [], "the takedown policy never acts on a watchlist match"

        # faces that match nobody leave nothing behind: a negative verdict, no embedding anywhere
        (other_verdict,) = await VerdictRepo(store).of_media(other_sha)
        assert other_verdict["decision"] == "negative" and not other_verdict.get("matches")
        for coll in COLLECTIONS:
            if coll.name == "watchlist":
                continue
            docs = await store[coll.name].find().to_list(None)
            assert not any(embedding_like(d) for d in docs), coll.name

        # review: her case's members and admins see the alert; nobody else does
        member, _ = await tokens.create("inv-member", Role.INVESTIGATOR)
        outsider, _ = await tokens.create("inv-outsider", Role.INVESTIGATOR)
        monitor, _ = await tokens.create("mon", Role.MONITOR)
        admin, _ = await tokens.create("adm", Role.ADMIN)
        await CaseMemberRepo(store).add("C1", "inv-member", added_by="cli:staff")
        async with aiohttp.ClientSession() as http:

            async def call(token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
                headers = {"Authorization": f"Bearer {token}"}
                async with http.request(method, url.rstrip("/") + path, json=body, headers=headers) as resp:
                    return resp.status, await resp.json(content_type=None)

            def keys(answer: Any) -> list[str]:
                return [i.get("key") or i.get("_id") for i in answer["items"] if i.get("kind") == "watchlist_match"]

            for token, expected in ((member, [alert["_id"]]), (admin, [alert["_id"]]), (outsider, []), (monitor, [])):
                status, answer = await call(token, "GET", "/api/v1/alerts?kind=watchlist_match")
                assert status == 200 and keys(answer) == expected
            status, answer = await call(monitor, "GET", "/api/v1/alerts")
            assert status == 200 and keys(answer) == [], "not in the unfiltered list either"
            path = f"/api/v1/alerts/{alert['_id']}/status"
            assert (await call(outsider, "POST", path, {"status": "closed"}))[0] == 404
            assert (await call(member, "POST", path, {"status": "acknowledged"}))[0] == 200
            status, seen = await call(outsider, "GET", f"/api/v1/media/{her_sha}")
            assert status == 200 and all(a["kind"] != "watchlist_match" for a in seen["alerts"])
            assert "p-1" not in json.dumps(seen), "the media view names nobody"
            status, _ = await call(outsider, "GET", "/api/v1/messages?verdict=watchlist_match")
            assert status == 400, "no search finds which media matched a watchlist"
            audit = await store["audit"].find({"actor": "token:inv-member"}).to_list(None)
            assert {"alerts.list", "alerts.status"} <= {a["action"] for a in audit}

            # withdrawal erases her: no embedding stored, an empty gallery, no new match
            await service.withdraw("p-1", actor="cli:staff", reason="consent withdrawn")
            raw = await WatchlistRepo(store).raw("p-1")
            assert raw is not None and "sealed" not in raw
            status, gallery = await call(detector_token, "GET", "/api/v1/watchlist/gallery")
            assert status == 200 and gallery["persons"] == []
            again = jpeg(paste(face_crop(photos / SAME_PERSON[1], her.box), 11, scale=0.6), 50)
            site.set_world(publish(site.world, site, again, "four"))
            await crawl(store, settings, base)
            stats = await detector_faces(url, token_file, tmp_path / "detector-machine")
            assert stats["enrolled"] == 0 and stats["decisions"] == {"negative": 1}

        # a detector with a stale gallery cannot bring her back: the server refuses the match
        svc = DetectionService(store, settings)
        stale = svc.quarantine.put(her_post + b"x")
        await svc.enqueue(stale)
        async with DetectionClient(url, detector_token) as client:
            (job,) = await client.claim(1, detector="faces")
            hit = {"person": "p-1", "distance": 0.3, "box": [1, 1, 50, 50]}
            answer = await client.ack(job, {"decision": "watchlist_match", "matches": [hit]})
        assert answer["verdict"]["decision"] == "negative"
        assert len([a for a in await AlertRepo(store).list(limit=100) if a["kind"] == "watchlist_match"]) == 1
    finally:
        await site.stop()


def test_the_takedown_policy_refuses_to_act_on_a_watchlist_match() -> None:
    for policy in ("draft", "auto"):
        with pytest.raises(PolicyRefused, match="human review only"):
            check_policy(policy, trusted=True, alert_kind="watchlist_match")
        assert effective_policy(policy, trusted=True, alert_kind="watchlist_match") is TakedownPolicy.MANUAL
    assert check_policy("manual", trusted=False, alert_kind="watchlist_match") is TakedownPolicy.MANUAL


async def test_a_watchlist_match_is_refused_where_the_watchlist_is_off(store: Store, tmp_path: Path) -> None:
    settings = config.load(data_dir=tmp_path / "d", detection={"detectors": ["faces"]})
    async with TestServer(build_app(store, settings, ALL_MODULES), host="127.0.0.1") as srv:
        token, _ = await TokenRepo(store, server_secret(settings)).create("det", Role.DETECTOR)
        svc = DetectionService(store, settings)
        await svc.enqueue(svc.quarantine.put(jpeg(scene(4), 50)))
        async with DetectionClient(str(srv.make_url("/")), token) as client:
            with pytest.raises(Exception, match="no watchlist"):
                (job,) = await client.claim(1, detector="faces")
                await client.ack(job, {"decision": "watchlist_match", "matches": [
                    {"person": "p-1", "distance": 0.1, "box": [0, 0, 9, 9]}]})  # fmt: skip
            async with client.session.get(str(srv.make_url("/api/v1/watchlist/gallery"))) as resp:
                assert resp.status == 409
    assert await AlertRepo(store).list() == []


def test_a_watchlist_match_is_never_notified() -> None:
    from crawler.notify.rules import NotifyRule

    rule = NotifyRule(name="all", sink="email", target="staff@example.org")
    alert = {"_id": "watchlist/x/p-1", "kind": "watchlist_match", "channels": ["c"], "details": {"case": "C1"}}
    assert not rule.matches(alert)
    assert rule.matches({**alert, "_id": "detection/x/d", "kind": "detection"})

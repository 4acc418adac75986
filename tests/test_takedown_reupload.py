"""Re-uploads of removed takedown items, through the real ingest door and the real media stage.

A picture is reported, its message found removed; the same picture (or a re-encoded, brightened
copy) appearing again anywhere re-opens the request with the new message as an item, a ledger
``reopen`` entry and a ``reupload/...`` alert. Unrelated pictures and re-crawls change nothing, and
while nothing is removed the stage does not touch the store.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

import config
from config import Settings
from crawler.evidence.wiring import build_ledger
from crawler.hashing import synthetic
from crawler.hashing.images import hash_image
from crawler.hashing.pdqbits import hex_distance
from crawler.ingest import Ingest
from crawler.pipeline import open_pipeline
from crawler.takedowns.models import ItemStatus, ProbeResult, Reason, RequestStatus
from crawler.takedowns.reupload import ReuploadStage
from crawler.takedowns.service import TakedownService
from foundation.models import ChannelRef, MediaKind, MediaRef, Message, Source, utcnow
from storage.client import Store
from tests.media_host import LOOPBACK_HTTP, MediaServer

T0 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return config.load(
        data_dir=tmp_path / "data",
        media={"hash_workers": 1},
        limits={"max_media_bytes": 2_000_000},
        http=LOOPBACK_HTTP,  # the media host is on loopback
    )


def post(channel: str, i: int, url: str, sha256: str | None = None) -> Message:
    return Message(
        ref=ChannelRef(username=channel),
        msg_id=i,
        source=Source.WEB,
        date=T0,
        text=f"post {i}",
        media=[MediaRef(kind=MediaKind.PHOTO, url=url, sha256=sha256)],
    )


def stage_of(ingest: Ingest) -> ReuploadStage:
    names = [s.name for s in ingest.stages]
    assert names.index("reupload") > names.index("ledger") > names.index("persist")
    stage = next(s for s in ingest.stages if isinstance(s, ReuploadStage))
    stage.refresh_every = 0.0  # see every state change at once (production reads it every few seconds)
    return stage


async def report_and_remove(service: TakedownService, message: str) -> str:
    """A request for ``message`` whose item a re-check then finds removed."""
    req = await service.create(reason=Reason.OTHER, actor="monitor", messages=[message])
    removed = ProbeResult(
        item_id=f"message:{message}", status=ItemStatus.REMOVED, reason="post_not_found",
        checked_at=utcnow(), method="web",
    )  # fmt: skip
    await service.apply_results(req.id, [removed])
    assert (await service.get(req.id)).status is RequestStatus.REMOVED
    return req.id


async def reupload_alerts(store: Store) -> list[dict[str, Any]]:
    return await store["alerts"].find({"kind": "reupload"}).to_list(None)


async def reopen_entries(service: TakedownService, request_id: str) -> list[dict[str, Any]]:
    return [e for e in await service.history(request_id) if e["kind"] == "takedown" and e["action"] == "reopen"]


async def test_identical_copy_elsewhere_reopens_once_and_unrelated_does_not(
    store: Store, settings: Settings, media_server: tuple[MediaServer, str]
) -> None:
    server, base = media_server
    picture = synthetic.encode(synthetic.scene(11), "PNG")
    server.add("orig.png", picture)
    server.add("mirror.png", picture)  # same bytes under another URL, as a re-upload is
    server.add("other.png", synthetic.encode(synthetic.scene(12), "PNG"))
    service = TakedownService(store, build_ledger(store, settings), settings.takedowns)
    async with open_pipeline(store, settings) as ingest:
        stage = stage_of(ingest)
        await ingest.submit([post("source_chan", 1, base + "orig.png")])
        request_id = await report_and_remove(service, "source_chan/1")

        batch = [post("mirror_chan", 5, base + "mirror.png"), post("mirror_chan", 6, base + "other.png")]
        result = await ingest.submit(batch)
        assert result.new == 2 and result.errors == 0

        req = await service.get(request_id)
        assert req.status is RequestStatus.REOPENED and req.reopen_count == 1
        assert [i.item_id for i in req.items] == ["message:source_chan/1", "message:mirror_chan/5"]
        added = req.items[1]
        assert added.added_because == "reupload of message:source_chan/1"
        assert added.media[0].sha256 == hashlib.sha256(picture).hexdigest()
        assert added.evidence, "the re-upload is added with the ledger capture of its message"

        alerts = await reupload_alerts(store)
        assert [a["_id"] for a in alerts] == [f"reupload/{request_id}/mirror_chan/5"]
        assert alerts[0]["details"]["signal"] == "sha256" and alerts[0]["details"]["distance"] == 0
        assert alerts[0]["details"]["original"] == "message:source_chan/1" and alerts[0]["channels"] == ["mirror_chan"]

        entries = await reopen_entries(service, request_id)
        assert len(entries) == 1
        assert entries[0]["cause"] == "reupload" and entries[0]["original"] == "message:source_chan/1"
        assert entries[0]["match"]["sha256"] == hashlib.sha256(picture).hexdigest()
        assert "message:mirror_chan/5" in entries[0]["subjects"]

        # the same batch crawled again: nothing new on the request, no second alert or entry
        again = await ingest.submit(batch)
        assert again.unchanged == 2
        req2 = await service.get(request_id)
        assert len(req2.items) == 2 and req2.reopen_count == 1 and req2.ledger == req.ledger
        assert len(await reupload_alerts(store)) == 1
        assert stage.stats.exact_hits == 1 and stage.stats.reopened == 1 and stage.stats.pdq_hits == 0


async def test_altered_copy_in_the_same_channel_reopens_by_pdq(
    store: Store, settings: Settings, media_server: tuple[MediaServer, str]
) -> None:
    server, base = media_server
    original = synthetic.scene(21)
    server.add("orig.png", synthetic.encode(original, "PNG"))
    server.add("variant.jpg", synthetic.encode(synthetic.brighter(original, 1.1), "JPEG", quality=60))
    server.add("unrelated.jpg", synthetic.encode(synthetic.scene(22), "JPEG", quality=60))
    orig_hash = hash_image(server.files["orig.png"][0]).pdq
    variant_hash = hash_image(server.files["variant.jpg"][0]).pdq
    assert orig_hash is not None and variant_hash is not None
    distance = hex_distance(orig_hash.hash, variant_hash.hash)
    assert 0 < distance <= settings.matching.pdq_max_distance, "the variant must be a near, not exact, copy"
    orig_sha = hashlib.sha256(server.files["orig.png"][0]).hexdigest()
    variant_sha = hashlib.sha256(server.files["variant.jpg"][0]).hexdigest()

    service = TakedownService(store, build_ledger(store, settings), settings.takedowns)
    async with open_pipeline(store, settings) as ingest:
        stage = stage_of(ingest)
        await ingest.submit([post("source_chan", 1, base + "orig.png")])
        request_id = await report_and_remove(service, "source_chan/1")
        removed = (await service.get(request_id)).items[0]
        assert removed.media[0].pdq == orig_hash.hash

        await ingest.submit([post("source_chan", 2, base + "variant.jpg"), post("else", 3, base + "unrelated.jpg")])

    req = await service.get(request_id)
    assert req.status is RequestStatus.REOPENED
    assert [i.item_id for i in req.items] == ["message:source_chan/1", "message:source_chan/2"]
    assert req.items[1].added_because == "reupload of message:source_chan/1"
    alerts = await reupload_alerts(store)
    assert [a["_id"] for a in alerts] == [f"reupload/{request_id}/source_chan/2"]
    details = alerts[0]["details"]
    assert details["signal"] == "pdq" and details["sha256"] == variant_sha and details["original_sha256"] == orig_sha
    assert details["pdq_distance"] == details["distance"] == distance
    entries = await reopen_entries(service, request_id)
    assert len(entries) == 1 and entries[0]["match"]["signal"] == "pdq"
    assert stage.stats.pdq_hits == 1 and stage.stats.exact_hits == 0


class Commands(monitoring.CommandListener):
    """Which collections a client touched, per command (the embedded server sees the same)."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.seen: list[tuple[str, str]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        if event.database_name == self.db and isinstance(target, str):
            self.seen.append((event.command_name, target))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def on(self, *collections: str) -> list[tuple[str, str]]:
        return [c for c in self.seen if c[1] in collections]


async def test_nothing_removed_means_no_takedown_or_media_queries(
    store: Store, settings: Settings, media_server: tuple[MediaServer, str], embedded_uri: str
) -> None:
    server, base = media_server
    server.add("orig.png", synthetic.encode(synthetic.scene(31), "PNG"))
    server.add("other.png", synthetic.encode(synthetic.scene(32), "PNG"))
    other_sha = hashlib.sha256(server.files["other.png"][0]).hexdigest()
    service = TakedownService(store, build_ledger(store, settings), settings.takedowns)
    async with open_pipeline(store, settings) as ingest:
        await ingest.submit([post("source_chan", 1, base + "orig.png"), post("else", 1, base + "other.png")])
    req = await service.create(reason=Reason.OTHER, actor="monitor", messages=["source_chan/1"])
    online = ProbeResult(
        item_id="message:source_chan/1", status=ItemStatus.ONLINE, reason="present", checked_at=utcnow(), method="web"
    )
    await service.apply_results(req.id, [online])

    # a second client on the same database, watched command by command
    commands = Commands(store.db.name)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        embedded_uri, tz_aware=True, event_listeners=[commands], appname="tgwatch-reupload-test"
    )
    try:
        watched = Store(client=client, db=client[store.db.name], uri="(test)", kind="embedded")
        ingest = Ingest(watched, store_retry_seconds=2.0)  # no media stage: digests come with the records
        stage = ReuploadStage(
            TakedownService(watched, build_ledger(watched, settings), settings.takedowns),
            settings.matching,
            refresh_every=0.0,
        )
        ingest.add_stage(stage, after="persist")
        await ingest.submit([post("mirror", 1, base + "x.png", sha256=other_sha)])  # first batch loads the index
        commands.seen.clear()
        for i in range(2, 5):
            await ingest.submit([post("mirror", i, base + "x.png", sha256=other_sha)])
        assert commands.on("media", "takedowns") == []
        assert stage.stats.idle == 4 and not stage.index

        # control: once an item is removed the stage does query (so the listener would have seen it)
        gone = online.model_copy(update={"status": ItemStatus.REMOVED, "reason": "post_not_found"})
        await service.apply_results(req.id, [gone])
        await ingest.submit([post("mirror", 9, base + "x.png", sha256=other_sha)])
        assert ("find", "takedowns") in commands.on("takedowns") and ("find", "media") in commands.on("media")
        assert stage.stats.rebuilds == 2 and stage.stats.media_queries == 1
        # an unrelated picture re-opens nothing, and its PDQ is not read twice
        commands.seen.clear()
        await ingest.submit([post("mirror", 10, base + "x.png", sha256=other_sha)])
        assert commands.on("media", "takedowns") == []
        assert stage.stats.reopened == 0 and await reupload_alerts(store) == []
    finally:
        await client.close()

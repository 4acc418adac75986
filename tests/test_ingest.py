"""The ingest door's semantics on the real embedded store: idempotency, versions, deletions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crawler.ingest import Ingest, IngestResult
from foundation.models import (
    Channel,
    ChannelRef,
    Checkpoint,
    Deletion,
    MediaKind,
    MediaRef,
    Message,
    RawCapture,
    Source,
    utcnow,
)
from storage.client import Store
from storage.repos import ChannelRepo, ErrorRepo, MessageRepo

REF = ChannelRef(username="example_news")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def msg(i: int, text: str | None = None, **kw: object) -> Message:
    body = text if text is not None else f"message {i} 안녕하세요"
    html = f"<div>{body}</div>"
    return Message(
        ref=kw.pop("ref", REF),  # type: ignore[arg-type]
        msg_id=i,
        source=Source.WEB,
        date=T0 + timedelta(minutes=i),
        text=body,
        html=html,
        raw=RawCapture.of("html", html, url="http://sample/s/example_news", fetched_at=T0),
        **kw,  # type: ignore[arg-type]
    )


async def test_new_messages_are_stored_once(ingest: Ingest, store: Store) -> None:
    result = await ingest.submit([msg(i) for i in range(1, 11)])
    assert (result.new, result.updated, result.unchanged) == (10, 0, 0)
    again = await ingest.submit([msg(i) for i in range(1, 11)])
    assert (again.new, again.updated, again.unchanged) == (0, 0, 10)
    docs = await MessageRepo(store).query(channel="example_news", limit=100)
    assert [d["msg_id"] for d in docs] == list(range(10, 0, -1))
    assert {d["version"] for d in docs} == {1}
    assert all(d["_id"] == f"example_news/{d['msg_id']}" for d in docs)


async def test_changed_text_makes_a_new_version_and_keeps_the_old(ingest: Ingest, store: Store) -> None:
    await ingest.submit([msg(1, "original text")])
    result = await ingest.submit([msg(1, "edited text", edited=True)])
    assert (result.new, result.updated) == (0, 1)
    current = await MessageRepo(store).get("example_news/1")
    assert current is not None
    assert current["text"] == "edited text" and current["version"] == 2 and current["edited"] is True
    versions = await MessageRepo(store).versions("example_news/1")
    assert [(v["version"], v["text"]) for v in versions] == [(1, "original text"), (2, "edited text")]


async def test_changed_media_list_is_a_new_version_but_views_are_not(ingest: Ingest, store: Store) -> None:
    photo = MediaRef(kind=MediaKind.PHOTO, url="http://cdn/1.jpg")
    await ingest.submit([msg(1, "same", media=[photo], views=10)])
    views_only = await ingest.submit(
        [msg(1, "same", media=[photo.model_copy(update={"url": "http://cdn/2"})], views=99)]
    )
    assert views_only.unchanged == 1
    current = await MessageRepo(store).get("example_news/1")
    assert current is not None and current["views"] == 99 and current["version"] == 1
    video = MediaRef(kind=MediaKind.VIDEO, url="http://cdn/v.mp4", duration=3.0)
    changed = await ingest.submit([msg(1, "same", media=[photo, video])])
    assert changed.updated == 1


async def test_digests_differing_on_both_sides_make_a_version(ingest: Ingest) -> None:
    a = MediaRef(kind=MediaKind.PHOTO, sha256="a" * 64)
    b = MediaRef(kind=MediaKind.PHOTO, sha256="b" * 64)
    await ingest.submit([msg(1, "x", media=[a])])
    unknown = await ingest.submit([msg(1, "x", media=[MediaRef(kind=MediaKind.PHOTO)])])
    assert unknown.unchanged == 1, "a digest missing on one crawl must not create a version"
    replaced = await ingest.submit([msg(1, "x", media=[b])])
    assert replaced.updated == 1


async def test_deletion_marks_and_never_removes(ingest: Ingest, store: Store) -> None:
    await ingest.submit([msg(1), msg(2)])
    seen = utcnow()
    result = await ingest.submit([Deletion(ref=REF, msg_ids=[2, 99], source=Source.MTPROTO, seen_at=seen)])
    assert result.deleted == 1
    doc = await MessageRepo(store).get("example_news/2")
    assert doc is not None and doc["text"] == "message 2 안녕하세요"
    assert doc["deleted_at"] is not None and abs((doc["deleted_at"] - seen).total_seconds()) < 0.01
    again = await ingest.submit([Deletion(ref=REF, msg_ids=[2], source=Source.MTPROTO, seen_at=utcnow())])
    assert again.deleted == 0, "deleted_at is set once"
    # the message reappearing in a later crawl keeps its deletion mark and version
    reseen = await ingest.submit([msg(2)])
    assert reseen.unchanged == 1
    doc = await MessageRepo(store).get("example_news/2")
    assert doc is not None and doc["deleted_at"] is not None


async def test_duplicate_in_one_batch_is_one_message_with_versions_in_order(ingest: Ingest, store: Store) -> None:
    result = await ingest.submit([msg(5, "first"), msg(5, "first"), msg(5, "second")])
    assert (result.new, result.unchanged, result.updated) == (1, 1, 1)
    versions = await MessageRepo(store).versions("example_news/5")
    assert [v["text"] for v in versions] == ["first", "second"]


async def test_replaying_a_half_written_batch_repairs_it(ingest: Ingest, store: Store) -> None:
    """A crash after versions were inserted but before current docs were replaced loses nothing."""
    await ingest.submit([msg(1, "v1")])
    # simulate the crash: v1 was already archived, but the current document was not yet replaced
    current = await MessageRepo(store).get("example_news/1")
    assert current is not None
    await store["message_versions"].insert_one({**current, "_id": "example_news/1/v1", "message": "example_news/1"})
    result = await ingest.submit([msg(1, "v2")])
    assert result.updated == 1
    versions = await MessageRepo(store).versions("example_news/1")
    assert [(v["version"], v["text"]) for v in versions] == [(1, "v1"), (2, "v2")]


async def test_raw_capture_is_kept_by_digest(ingest: Ingest, store: Store) -> None:
    m = msg(3)
    await ingest.submit([m])
    assert m.raw is not None
    raw = await MessageRepo(store).raw_capture(m.raw.sha256)
    assert raw is not None and raw["content"] == m.raw.content and raw["url"] == "http://sample/s/example_news"
    doc = await MessageRepo(store).get("example_news/3")
    assert doc is not None and doc["raw_sha256"] == m.raw.sha256


async def test_checkpoint_is_saved_after_the_batch(ingest: Ingest) -> None:
    cp = Checkpoint(stream="web:example_news", newest_id=10, oldest_id=1)
    await ingest.submit([msg(i) for i in range(1, 11)], checkpoint=cp)
    saved = await ingest.checkpoint("web:example_news")
    assert saved is not None and (saved.newest_id, saved.oldest_id) == (10, 1) and saved.updated_at is not None


async def test_channel_key_survives_username_change(ingest: Ingest, store: Store) -> None:
    """Key chosen at first sighting; a later numeric id and a new username resolve to it."""
    await ingest.submit([msg(1, ref=ChannelRef(username="oldname"))])
    renamed = ChannelRef(username="newname", tg_id=1234)
    await ingest.submit([msg(2, ref=ChannelRef(username="oldname", tg_id=1234))])
    await ingest.submit([msg(3, ref=renamed)])
    assert await ChannelRepo(store).resolve(ChannelRef(username="newname")) == "oldname"
    assert await ChannelRepo(store).resolve(ChannelRef(tg_id=1234)) == "oldname"
    docs = await MessageRepo(store).query(channel="oldname")
    assert sorted(d["msg_id"] for d in docs) == [1, 2, 3]
    channel = await ChannelRepo(store).get("oldname")
    assert channel is not None and set(channel["usernames"]) == {"oldname", "newname"}


async def test_channel_snapshots_keep_history(ingest: Ingest, store: Store) -> None:
    for n, seen in ((1000, T0), (1500, T0 + timedelta(days=1))):
        snap = Channel(ref=REF, source=Source.WEB, seen_at=seen, title="Example", counters={"subscribers": n})
        await ingest.submit([snap])
    channel = await ChannelRepo(store).get("example_news")
    assert channel is not None and channel["latest"]["counters"]["subscribers"] == 1500
    snaps = await store["channel_snapshots"].find({"channel": "example_news"}).to_list(None)
    assert sorted(s["counters"]["subscribers"] for s in snaps) == [1000, 1500]


async def test_invalid_record_is_reported_not_silently_dropped(ingest: Ingest, store: Store) -> None:
    bad = Message(ref=REF, msg_id=0, source=Source.WEB, text="no id")
    result = await ingest.submit([bad, msg(1)])
    assert result.errors == 1 and result.new == 1
    errors = await ErrorRepo(store).recent()
    assert errors and errors[0]["kind"] == "invalid_record"


async def test_non_essential_stage_failure_is_recorded_and_batch_still_stored(ingest: Ingest, store: Store) -> None:
    class Exploding:
        name = "explodes"
        essential = False

        async def __call__(self, batch: object) -> None:
            raise RuntimeError("stage bug")

    ingest.add_stage(Exploding(), before="persist")
    result = await ingest.submit([msg(1)])
    assert result.new == 1 and result.errors == 1
    assert await MessageRepo(store).get("example_news/1") is not None
    errors = await ErrorRepo(store).recent()
    assert errors[0]["kind"] == "stage_failed" and errors[0]["stage"] == "explodes"


def test_add_stage_rejects_unknown_seam(ingest: Ingest) -> None:
    with pytest.raises(ValueError, match="no stage named"):
        ingest.add_stage(object(), before="nope")  # type: ignore[arg-type]


class _Named:
    def __init__(self, name: str, essential: bool) -> None:
        self.name, self.essential = name, essential

    async def __call__(self, batch: object) -> None:
        return None


def test_assemble_lays_out_the_declared_order_and_skips_absent_stages(ingest: Ingest) -> None:
    order = [("normalize", True), ("media", False), ("version", True), ("persist", True), ("after", False)]
    ingest.assemble(order, [_Named("after", False)])
    assert [s.name for s in ingest.stages] == ["normalize", "version", "persist", "after"]


def test_assemble_rejects_an_undeclared_stage_or_a_wrong_essential_flag(ingest: Ingest) -> None:
    order = [("normalize", True), ("version", True), ("persist", True), ("after", False)]
    with pytest.raises(ValueError, match="not in the declared order"):
        ingest.assemble(order, [_Named("stray", False)])
    with pytest.raises(ValueError, match="declared essential=False"):
        ingest.assemble(order, [_Named("after", True)])


def test_result_addition() -> None:
    a, b = IngestResult(new=1, errors=2), IngestResult(new=3, deleted=1)
    a.add(b)
    assert (a.new, a.errors, a.deleted) == (4, 2, 1)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        Message(ref=REF, msg_id=1, source=Source.WEB, date=datetime(2026, 1, 1))

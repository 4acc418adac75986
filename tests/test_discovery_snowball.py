"""Snowball: links, mentions and forwards of ingested messages become candidates, within limits."""

from __future__ import annotations

from datetime import UTC, datetime

from config.discovery import DiscoverySettings
from crawler.discovery.models import Sighting, SourceKind
from crawler.discovery.service import DiscoveryService
from crawler.discovery.snowball import SnowballStage, message_rooms
from crawler.discovery.targets import create_target
from crawler.ingest import Ingest
from foundation.links import normalize
from foundation.models import ChannelRef, ForwardInfo, Message, Source
from storage.client import Store

T0 = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)


def msg(channel: str, msg_id: int, *, text: str = "", links: list[str] | None = None,
        mentions: list[str] | None = None, fwd: ForwardInfo | None = None) -> Message:  # fmt: skip
    return Message(
        ref=ChannelRef(username=channel), msg_id=msg_id, source=Source.WEB, date=T0, text=text,
        links=links or [], mentions=mentions or [], forwarded_from=fwd,
    )  # fmt: skip


def wire(store: Store, ingest: Ingest, **limits: int) -> SnowballStage:
    stage = SnowballStage(DiscoveryService(store, DiscoverySettings(**limits)))
    ingest.add_stage(stage, after="persist")
    return stage


async def docs(store: Store) -> dict[str, dict]:
    return {d["_id"]: d for d in await DiscoveryService(store).list(limit=10_000)}


def test_message_rooms_reads_links_mentions_and_forwards() -> None:
    m = msg(
        "seed_channel", 1,
        links=["https://t.me/Alpha_Room/5", "https://example.org/x", "https://t.me/+InviteHash01", "https://t.me/c/1234/5"],
        mentions=["beta_room", "id12345", "alpha_room"],
        fwd=ForwardInfo(name="Gamma", username="gamma_room", msg_id=3),
    )  # fmt: skip
    got = [(link.canonical, how) for link, how in message_rooms(m)]
    assert got == [
        ("https://t.me/alpha_room", "link"),
        ("https://t.me/+InviteHash01", "link"),
        ("https://t.me/beta_room", "mention"),
        ("https://t.me/gamma_room", "forwarded_from"),
    ]


async def test_seed_messages_become_depth_one_candidates_with_provenance(store: Store, ingest: Ingest) -> None:
    stage = wire(store, ingest)
    await create_target(store, "https://t.me/known_target", "web")
    await ingest.submit([
        msg("seed_channel", 7, text="see @alpha_room", mentions=["alpha_room", "seed_channel", "known_target"],
            links=["https://t.me/+InviteHash01"]),
        msg("seed_channel", 8, fwd=ForwardInfo(name="Beta", username="beta_room")),
    ])  # fmt: skip
    found = await docs(store)
    assert set(found) == {"https://t.me/alpha_room", "https://t.me/+InviteHash01", "https://t.me/beta_room"}
    alpha = found["https://t.me/alpha_room"]
    assert alpha["depth"] == 1 and alpha["status"] == "new"
    (entry,) = alpha["provenance"]
    assert entry["source_kind"] == "snowball" and entry["source"] == "seed_channel"
    assert entry["message_key"] == "seed_channel/7" and entry["context"]["found_as"] == "mention"
    assert found["https://t.me/beta_room"]["provenance"][0]["context"]["found_as"] == "forwarded_from"
    assert stage.stats.skipped_targets == 1  # known_target is crawled already; own name skipped silently


async def test_depth_is_source_depth_plus_one_and_limited(store: Store, ingest: Ingest) -> None:
    stage = wire(store, ingest, max_depth=2)
    service = DiscoveryService(store)
    alpha = normalize("https://t.me/alpha_room")
    assert alpha is not None
    await service.record([Sighting.of(alpha, SourceKind.SNOWBALL, "seed", T0, depth=1)])
    await ingest.submit([msg("alpha_room", 1, mentions=["delta_room"])])
    assert (await docs(store))["https://t.me/delta_room"]["depth"] == 2
    await ingest.submit([msg("delta_room", 1, mentions=["epsilon_room"])])  # would be depth 3
    found = await docs(store)
    assert "https://t.me/epsilon_room" not in found
    assert stage.stats.skipped_depth == 1


async def test_a_shallower_sighting_lowers_the_depth(store: Store, ingest: Ingest) -> None:
    wire(store, ingest)
    service = DiscoveryService(store)
    alpha = normalize("https://t.me/alpha_room")
    assert alpha is not None
    await service.record([Sighting.of(alpha, SourceKind.SNOWBALL, "x", T0, depth=2)])
    await ingest.submit([msg("seed_channel", 1, mentions=["alpha_room"])])
    doc = (await docs(store))["https://t.me/alpha_room"]
    assert doc["depth"] == 1 and doc["sightings"] == 2 and len(doc["provenance"]) == 2


async def test_volume_limits(store: Store, ingest: Ingest) -> None:
    stage = wire(store, ingest, max_new_per_batch=3, max_links_per_message=6)
    names = [f"room_number_{i:02d}" for i in range(8)]
    await ingest.submit([msg("seed_channel", 1, mentions=names)])
    found = await docs(store)
    assert set(found) == {f"https://t.me/{n}" for n in names[:3]}
    assert stage.stats.skipped_per_message == 2 and stage.stats.skipped_volume == 3
    # a known candidate is always merged; the new-candidate budget is per batch
    await ingest.submit([msg("seed_channel", 2, mentions=[names[0], *names[3:6]])])
    found = await docs(store)
    assert len(found) == 6 and found[f"https://t.me/{names[0]}"]["sightings"] == 2


async def test_reingesting_unchanged_messages_adds_nothing(store: Store, ingest: Ingest) -> None:
    wire(store, ingest)
    batch = [msg("seed_channel", 1, mentions=["alpha_room"])]
    await ingest.submit(batch)
    await ingest.submit(batch)
    assert (await docs(store))["https://t.me/alpha_room"]["sightings"] == 1

"""Reviewers' verdicts on matches go back to NCMEC (votes on the entry's fingerprint) and to Meta
ThreatExchange (reactions on the descriptors), through python-threatexchange's real clients against
the loopback servers, once per verdict change."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from crawler.hashing import synthetic
from crawler.hashing.exchanges import NCMECExchange, ThreatExchangeExchange
from crawler.media.exchange_sync import sync_exchange
from storage.client import Store
from storage.repos.alerts import AlertRepo
from tests.exchange_servers import NCMEC, NCMEC_NS, NCMEC_PASSWORD, NCMEC_USER, TE_TOKEN, ThreatExchange, serving
from tests.media_host import MediaServer
from tests.test_hash_exchanges import crawl, exchange_settings, msg, pdq_of

BENIGN, OFF_TOPIC = "0d5c4a5e-1111-4c1e-9a51-000000000001", "0d5c4a5e-2222-4c1e-9a51-000000000002"


def two_media(server: MediaServer, base: str) -> tuple[bytes, bytes]:
    a, b = (synthetic.encode(synthetic.scene(s), "PNG") for s in (81, 82))
    server.files.update({"a.png": (a, "image/png"), "b.png": (b, "image/png")})
    return a, b


def vote(body: str) -> tuple[str, list[str]]:
    """(affirmative | negative, reason GUIDs) of a ``feedbackSubmission`` body."""
    root = ET.fromstring(body)
    assert root.tag == f"{{{NCMEC_NS}}}feedbackSubmission", body
    [choice] = list(root)
    return choice.tag.split("}")[-1], [g.text or "" for g in choice.iter(f"{{{NCMEC_NS}}}guid")]


async def test_ncmec_hears_an_upvote_or_a_downvote_with_its_reason_once_per_verdict(
    store: Store, tmp_path: Path, media_server: tuple[MediaServer, str]
) -> None:
    media, base = media_server
    a, b = two_media(media, base)
    server = NCMEC(reasons={"PDQ": {BENIGN: "Benign image", OFF_TOPIC: "Not in scope"}})
    server.put("1001", "image", {"PDQ": pdq_of(a), "MD5": "c" * 32}, ts=1_700_000_000)
    server.put("1002", "image", {"PDQ": pdq_of(b)}, ts=1_700_000_050)
    sha_a, sha_b = hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest()
    async with serving(server.app()) as url:
        cfg: dict[str, Any] = {"user": NCMEC_USER, "password": NCMEC_PASSWORD, "environment": "test_NGO",
                               "base_url": url}  # fmt: skip
        settings = exchange_settings(tmp_path / "d", ncmec=cfg)
        await crawl(store, settings, [msg(1, base + "a.png"), msg(2, base + "b.png")])

        first = await sync_exchange(store, settings, NCMECExchange(settings))
        assert first.status == "ok" and first.retro is not None and first.retro.alerts_raised == 2, first.error
        assert server.feedback == [] and first.feedback_sent == 0, "NCMEC has no 'pending review'"

        alerts = AlertRepo(store)
        await alerts.set_review(f"match/ncmec/{sha_a}", "confirmed", "rev")
        await alerts.set_review(f"match/ncmec/{sha_b}", "rejected", "rev")
        # NCMEC offers two downvote reasons and none is configured: the library refuses to guess
        unsure = await sync_exchange(store, settings, NCMECExchange(settings))
        assert unsure.status == "error" and "feedback reason" in (unsure.error or ""), unsure.error
        assert unsure.feedback_sent == 1 and NCMEC_PASSWORD not in (unsure.error or "")
        assert [(path, vote(body)) for path, body in server.feedback] == [("42/1001/PDQ", ("affirmative", []))]

        settings = exchange_settings(tmp_path / "d", ncmec={**cfg, "feedback_reason": "benign IMAGE"})
        second = await sync_exchange(store, settings, NCMECExchange(settings))
        assert second.status == "ok" and second.feedback_sent == 1, second.error
        assert [(p, vote(body)) for p, body in server.feedback[1:]] == [("42/1002/PDQ", ("negative", [BENIGN]))]
        again = await sync_exchange(store, settings, NCMECExchange(settings))
        assert again.feedback_sent == 0 and len(server.feedback) == 2, "each verdict is sent once"

        await alerts.set_review(f"match/ncmec/{sha_a}", "rejected", "rev2")
        changed = await sync_exchange(store, settings, NCMECExchange(settings))
    assert changed.feedback_sent == 1
    assert [(p, vote(body)) for p, body in server.feedback[2:]] == [("42/1001/PDQ", ("negative", [BENIGN]))]


async def test_threatexchange_hears_reactions_on_the_descriptors_of_matched_indicators(
    store: Store, tmp_path: Path, media_server: tuple[MediaServer, str]
) -> None:
    media, base = media_server
    a, b = two_media(media, base)
    server = ThreatExchange()
    server.put(555, 1, "HASH_PDQ", pdq_of(a), ts=1000)  # descriptor 10, owned by another member
    server.put(555, 2, "HASH_PDQ", pdq_of(b), ts=1001)  # descriptor 20
    sha_a, sha_b = hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest()
    async with serving(server.app()) as url:
        cfg = {"access_token": TE_TOKEN, "privacy_groups": [555], "base_url": url}
        settings = exchange_settings(tmp_path / "d", threatexchange=cfg)
        await crawl(store, settings, [msg(1, base + "a.png"), msg(2, base + "b.png")])

        first = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
        assert first.status == "ok" and first.feedback_sent == 2, first.error
        seen = {"reactions": "SAW_THIS_TOO"}
        assert sorted(server.reactions) == [("10", seen, seen), ("20", seen, seen)], "query and body"

        alerts = AlertRepo(store)
        await alerts.set_review(f"match/te-555/{sha_a}", "confirmed", "rev")
        await alerts.set_review(f"match/te-555/{sha_b}", "rejected", "rev")
        second = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
        assert second.feedback_sent == 2
        verdicts = sorted((d, q) for d, q, _ in server.reactions[2:])
        assert verdicts == [("10", {"reactions": "HELPFUL"}), ("20", {"reactions": "NOT_HELPFUL"})]
        unchanged = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
        assert unchanged.feedback_sent == 0 and len(server.reactions) == 4

        await alerts.set_review(f"match/te-555/{sha_a}", "rejected", "rev2")
        changed = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
    assert changed.status == "ok" and changed.feedback_sent == 1
    assert [(d, q) for d, q, _ in server.reactions[4:]] == [
        ("10", {"reactions_to_remove": "HELPFUL"}), ("10", {"reactions": "NOT_HELPFUL"})]  # fmt: skip
    assert TE_TOKEN not in repr(server.reactions), "the token travels as access_token only"


async def test_threatexchange_reactions_reach_descriptors_fetched_by_later_syncs(
    store: Store, tmp_path: Path, media_server: tuple[MediaServer, str]
) -> None:
    media, base = media_server
    a, _ = two_media(media, base)
    server = ThreatExchange()
    server.put(555, 1, "HASH_PDQ", pdq_of(a), ts=1000)  # descriptor 10 (member 777)
    sha_a = hashlib.sha256(a).hexdigest()
    async with serving(server.app()) as url:
        cfg = {"access_token": TE_TOKEN, "privacy_groups": [555], "base_url": url}
        settings = exchange_settings(tmp_path / "d", threatexchange=cfg)
        await crawl(store, settings, [msg(1, base + "a.png")])
        first = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
        assert first.status == "ok" and [d for d, _, _ in server.reactions] == ["10"], first.error

        await AlertRepo(store).set_review(f"match/te-555/{sha_a}", "confirmed", "rev")
        server.add_descriptor(555, 1, 11, ts=2000)  # member 888 describes the same indicator later
        second = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
        assert second.status == "ok" and second.feedback_sent == 1, second.error
        assert sorted((d, q) for d, q, _ in server.reactions[1:]) == [
            ("10", {"reactions": "HELPFUL"}), ("11", {"reactions": "HELPFUL"})]  # fmt: skip

        unchanged = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
        assert unchanged.feedback_sent == 0 and len(server.reactions) == 3

        # a descriptor that arrives after the verdict was sent hears it; the others are not told again
        server.add_descriptor(555, 1, 12, ts=3000, owner="999")
        later = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
        assert later.status == "ok" and later.feedback_sent == 1, later.error
        assert [(d, q) for d, q, _ in server.reactions[3:]] == [("12", {"reactions": "HELPFUL"})]

        await AlertRepo(store).set_review(f"match/te-555/{sha_a}", "rejected", "rev2")
        changed = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
    assert changed.status == "ok" and changed.feedback_sent == 1
    assert sorted((d, q["reactions_to_remove"] if "reactions_to_remove" in q else q["reactions"])
                  for d, q, _ in server.reactions[4:]) == [
        ("10", "HELPFUL"), ("10", "NOT_HELPFUL"), ("11", "HELPFUL"), ("11", "NOT_HELPFUL"),
        ("12", "HELPFUL"), ("12", "NOT_HELPFUL")]  # fmt: skip


async def test_a_match_reported_before_keys_were_recorded_is_sent_once_more_to_every_descriptor(
    store: Store, tmp_path: Path, media_server: tuple[MediaServer, str]
) -> None:
    media, base = media_server
    a, _ = two_media(media, base)
    server = ThreatExchange()
    server.put(555, 1, "HASH_PDQ", pdq_of(a), ts=1000)
    sha_a = hashlib.sha256(a).hexdigest()
    async with serving(server.app()) as url:
        cfg = {"access_token": TE_TOKEN, "privacy_groups": [555], "base_url": url}
        settings = exchange_settings(tmp_path / "d", threatexchange=cfg)
        await crawl(store, settings, [msg(1, base + "a.png")])
        first = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
        await AlertRepo(store).set_review(f"match/te-555/{sha_a}", "confirmed", "rev")
        second = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
        assert (first.feedback_sent, second.feedback_sent) == (1, 1), second.error
        assert [(d, q["reactions"]) for d, q, _ in server.reactions] == [("10", "SAW_THIS_TOO"), ("10", "HELPFUL")]
        # an alert as an older tgwatch left it: the verdict sent, the descriptors it went to unknown
        await store.db["alerts"].update_one({"_id": f"match/te-555/{sha_a}"}, {"$unset": {"feedback_key": ""}})
        server.add_descriptor(555, 1, 11, ts=2000)
        again = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
        assert again.feedback_sent == 1 and len(server.reactions) == 4, again.error
        assert sorted((d, q) for d, q, _ in server.reactions[2:]) == [
            ("10", {"reactions": "HELPFUL"}), ("11", {"reactions": "HELPFUL"})]  # fmt: skip
        settled = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
    assert settled.feedback_sent == 0 and len(server.reactions) == 4

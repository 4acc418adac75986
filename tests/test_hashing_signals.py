"""The signal registry: one module + one registration makes a signal type usable end to end, and the
registry's indexes match exactly what the pairwise rules match (vPDQ through the one PdqIndex)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from config import MatchingSettings
from crawler.hashing import lists, signals, synthetic, video
from crawler.hashing.pdqbits import hex_distance, words_to_hex
from crawler.hashing.pool import MediaHashes, hash_media_sync
from crawler.hashing.signals import Rules, SignalType
from crawler.media.matcher import Matcher
from storage.client import Store
from storage.repos.hashlists import HashListRepo


class ByteSizeSignal(SignalType):
    """A toy near-match type, defined only here: media whose byte counts differ by at most 16."""

    name: ClassVar[str] = "toysize"
    threshold: ClassVar[float] = 16

    @classmethod
    def validate(cls, signal: str) -> str:
        text = signal.strip() if isinstance(signal, str) else ""
        if not text.isdecimal():
            raise ValueError(f"invalid {cls.name} signal {signal!r}: expected a byte count")
        return str(int(text))

    @classmethod
    def hash(cls, data: bytes | Path) -> str:
        return str(data.stat().st_size if isinstance(data, Path) else len(data))

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        return abs(int(a) - int(b))

    @classmethod
    def media_signals(cls, media: MediaHashes, rules: signals.MatchRules = signals.DEFAULT_RULES) -> list[str]:
        return [str(media.size)]


@pytest.fixture
def toy() -> Iterator[type[SignalType]]:
    signals.register(ByteSizeSignal)
    try:
        yield ByteSizeSignal
    finally:
        signals.unregister(ByteSizeSignal.name)


def test_a_registered_type_is_validated_by_every_list_format(toy: type[SignalType]) -> None:
    text = "signal_type,signal,label\nTOYSIZE, 0120 ,a\ntoysize,12kb,b\n"
    parsed = lists.split(lists.parse(text, "csv"))
    assert [(r.signal_type, r.signal, r.label) for r in parsed.rows] == [("toysize", "120", "a")]
    assert [(e.line, e.message) for e in parsed.errors] == [(3, "invalid toysize signal '12kb': expected a byte count")]
    jsonl = lists.split(lists.parse('{"signal_type": "toysize", "signal": "7"}\n', "jsonl"))
    assert [r.signal for r in jsonl.rows] == ["7"] and not jsonl.errors


def test_unregistered_types_are_refused_by_name() -> None:
    parsed = lists.split(lists.parse("signal_type,signal\ntoysize,120\n", "csv"))
    assert not parsed.rows and "unknown signal type 'toysize'" in parsed.errors[0].message


async def test_a_registered_type_matches_media_without_touching_the_matcher(
    store: Store, toy: type[SignalType]
) -> None:
    png = synthetic.encode(synthetic.scene(5), "PNG")
    media = hash_media_sync(png)
    near, far = str(len(png) + 3), str(len(png) + 500)
    rows = [(toy.name, toy.validate(v), label) for v, label in ((near, "close"), (far, "far"))]
    await HashListRepo(store).add_entries("toy-list", "csv", rows)
    hits = await Matcher(store, MatchingSettings()).match(media)
    assert [(h.list, h.signal_type, h.value, h.distance, h.label) for h in hits] == [
        ("toy-list", "toysize", near, 3.0, "close")
    ]


async def test_a_type_registered_after_the_matcher_started_is_picked_up(store: Store) -> None:
    png = synthetic.encode(synthetic.scene(6), "PNG")
    await HashListRepo(store).add_entries("toy-list", "csv", [("toysize", str(len(png)), None)])
    matcher = Matcher(store, MatchingSettings())
    assert await matcher.match(hash_media_sync(png)) == []
    signals.register(ByteSizeSignal)
    try:
        assert [h.signal_type for h in await matcher.match(hash_media_sync(png))] == ["toysize"]
    finally:
        signals.unregister(ByteSizeSignal.name)


def test_registry_refuses_a_second_type_under_a_taken_name() -> None:
    class Impostor(ByteSizeSignal):
        name: ClassVar[str] = "pdq"

    with pytest.raises(ValueError, match="'pdq' is already registered"):
        signals.register(Impostor)
    assert signals.get("pdq") is signals.PdqSignal
    assert list(signals.SIGNAL_TYPES) == ["sha256", "md5", "pdq", "vpdq"]


# -- the built-in indexes agree with the pairwise rules -------------------------------------------


def _frames(rng: np.random.Generator, centres: np.ndarray, count: int) -> list[video.FrameHash]:
    words = centres[rng.integers(0, len(centres), count)].copy()
    for row in range(count):  # flip 0..40 bits: some frames stay within 31 of their centre, some not
        for bit in rng.integers(0, 256, int(rng.integers(0, 41))):
            words[row, bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    qualities = rng.choice([10, 49, 50, 90, 100], count)
    pairs = zip(words_to_hex(words), qualities, strict=True)
    return [video.FrameHash(h, int(q), float(t)) for t, (h, q) in enumerate(pairs)]


@pytest.mark.parametrize(
    "rules",
    [
        Rules(),
        Rules(vpdq_query_percent=0.0, vpdq_target_percent=0.0),
        Rules(pdq_max_distance=20, pdq_quality_floor=0, vpdq_query_percent=40.0, vpdq_target_percent=30.0),
    ],
    ids=["meta-defaults", "zero-percent", "strict-distance"],
)
def test_vpdq_index_is_the_pairwise_vpdq_rule_for_every_listed_video(rules: Rules) -> None:
    rng = np.random.default_rng(17)
    centres = rng.integers(0, 2**64, (12, 4), dtype=np.uint64, endpoint=False)
    listed = [_frames(rng, centres, int(rng.integers(1, 9))) for _ in range(60)]
    index = signals.VpdqSignal.build_index(list(range(len(listed))), [video.frames_to_json(t) for t in listed], rules)
    matched = 0
    for _ in range(25):
        query = _frames(rng, centres, int(rng.integers(1, 9)))
        media = MediaHashes("0" * 64, "0" * 32, 1, "video/mp4", "video", video_frames=tuple(query))
        got = [(h.id, h.distance) for h in index.query(signals.VpdqSignal.media_signals(media, rules))]
        usable = [f for f in query if f.quality >= rules.pdq_quality_floor]
        expected = []
        for entry, target in enumerate(listed):
            result = video.compare(usable, target, distance=rules.pdq_max_distance, quality=rules.pdq_quality_floor)
            if (
                result.query_match_percent >= rules.vpdq_query_percent
                and result.target_match_percent >= rules.vpdq_target_percent
            ):
                expected.append((entry, round(100 - result.query_match_percent, 2)))
        assert got == expected
        matched += len(expected)
    assert 0 < matched < 25 * len(listed) or rules.vpdq_query_percent == 0.0, "the data must match some, not all"


def test_pdq_index_finds_exactly_the_hashes_within_the_distance() -> None:
    rng = np.random.default_rng(3)
    centres = rng.integers(0, 2**64, (5, 4), dtype=np.uint64, endpoint=False)
    listed = [f.pdq for f in _frames(rng, centres, 300)]
    queries = [f.pdq for f in _frames(rng, centres, 40)]
    index = signals.PdqSignal.build_index(list(range(len(listed))), listed, Rules(pdq_max_distance=20))
    got = {(h.query, h.id, h.distance) for h in index.query(queries)}
    expected = {
        (q, i, hex_distance(a, b))
        for q, a in enumerate(queries)
        for i, b in enumerate(listed)
        if hex_distance(a, b) <= 20
    }
    assert got == expected and expected


def test_exact_types_share_one_dict_index() -> None:
    sha = signals.Sha256Signal.hash(b"abc")
    index = signals.Sha256Signal.build_index(["a", "b", "c"], [sha, "f" * 64, sha])
    assert isinstance(index, signals.ExactIndex) and signals.Md5Signal.index_cls is signals.ExactIndex
    assert [(h.query, h.id, h.distance) for h in index.query(["0" * 64, sha])] == [(1, "a", 0), (1, "c", 0)]


async def test_a_listed_video_matches_its_reencoded_copy_through_the_matcher(store: Store) -> None:
    clip = synthetic.video(seed=1, seconds=4)
    rows = [("vpdq", signals.VpdqSignal.hash(clip), "clip-1"), ("md5", signals.Md5Signal.hash(clip), None)]
    await HashListRepo(store).add_entries("videos", "csv", rows)
    matcher = Matcher(store, MatchingSettings())
    copy = synthetic.reencode(clip, codec="libvpx", size=(160, 120), fps=15)
    hits = await matcher.match(hash_media_sync(copy))
    assert [(h.list, h.signal_type, h.label) for h in hits] == [("videos", "vpdq", "clip-1")]
    assert hits[0].distance <= 20
    same = await matcher.match(hash_media_sync(clip))
    assert [(h.signal_type, h.distance) for h in same] == [("md5", 0), ("vpdq", 0.0)]
    assert await matcher.match(hash_media_sync(synthetic.video(seed=2, seconds=3))) == []

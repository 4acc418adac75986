"""Video frame PDQ: one hash a second, near-repeats dropped, and Meta's vPDQ match rule."""

from __future__ import annotations

import pytest

from crawler.hashing import synthetic as syn
from crawler.hashing import video as vpdq
from crawler.hashing.signals import VpdqSignal
from foundation.errors import Bomb, TooLarge, Undecodable


@pytest.fixture(scope="module")
def clip() -> bytes:
    return syn.video(seed=1, seconds=6)


def test_one_hash_per_second_with_timestamps(clip: bytes) -> None:
    frames = vpdq.hash_video(clip)
    assert [f.timestamp for f in frames] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert all(f.quality >= 50 for f in frames)


def test_still_shots_are_deduplicated() -> None:
    still = syn.video(seed=3, seconds=1, fps=5)
    long_still = syn.reencode(still, codec="libx264", fps=5)
    assert len(vpdq.hash_video(long_still)) == 1


def test_reencoded_video_matches_both_ways(clip: bytes) -> None:
    original = vpdq.hash_video(clip)
    reencoded = vpdq.hash_video(syn.reencode(clip, codec="libvpx", size=(160, 120), fps=15))
    assert vpdq.is_match(reencoded, original)
    result = vpdq.compare(reencoded, original)
    assert result.query_match_percent >= 80 and result.target_match_percent >= 80


def test_unrelated_video_does_not_match(clip: bytes) -> None:
    assert not vpdq.is_match(vpdq.hash_video(syn.video(seed=2, seconds=4)), vpdq.hash_video(clip))


def test_partial_overlap_follows_the_percent_thresholds(clip: bytes) -> None:
    full = vpdq.hash_video(clip)
    first_half = full[:3]
    # every frame of the half is in the full video: query side 100 %, target side 50 %
    assert vpdq.compare(first_half, full).query_match_percent == 100.0
    assert vpdq.compare(first_half, full).target_match_percent == 50.0
    assert vpdq.is_match(first_half, full)
    assert not vpdq.is_match(first_half, full, target_percent=80.0)
    assert not vpdq.is_match(full, first_half)  # only 50 % of the query found


def test_low_quality_frames_are_ignored_for_matching(clip: bytes) -> None:
    frames = vpdq.hash_video(clip)
    poor = [vpdq.FrameHash(f.pdq, 10, f.timestamp) for f in frames]
    assert not vpdq.is_match(poor, frames)


def test_vpdq_signal_round_trip(clip: bytes) -> None:
    signal = VpdqSignal.hash(clip)
    assert VpdqSignal.validate(signal) == signal
    assert VpdqSignal.distance(signal, signal) == 0
    assert VpdqSignal.matches(signal, signal)


def test_bad_videos_are_refused(clip: bytes) -> None:
    with pytest.raises(Undecodable):
        vpdq.hash_video(clip[: len(clip) // 4])
    with pytest.raises(Undecodable):
        vpdq.hash_video(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 300)
    with pytest.raises(Undecodable):
        vpdq.hash_video(b"not a video at all")
    with pytest.raises(TooLarge):
        vpdq.hash_video(clip, vpdq.VideoLimits(max_bytes=100))
    with pytest.raises(TooLarge):
        vpdq.hash_video(clip, vpdq.VideoLimits(max_duration=2.0))
    with pytest.raises(Bomb):
        vpdq.hash_video(clip, vpdq.VideoLimits(max_pixels=100 * 100))
    with pytest.raises(Bomb):
        vpdq.hash_video(clip, vpdq.VideoLimits(max_decoded_frames=20))

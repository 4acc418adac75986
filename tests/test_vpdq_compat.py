"""tgwatch's video frame hashes against Meta's reference vPDQ (skipped unless scripts/install-vpdq.sh ran)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from crawler.hashing import synthetic
from crawler.hashing.video import hash_video, is_match

vpdq = pytest.importorskip("vpdq", reason="Meta's vpdq is not built here: run scripts/install-vpdq.sh as root")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from vpdq_compat import aligned_distances, reference_hashes  # noqa: E402


def test_small_frames_hash_identically_and_large_ones_keep_the_decision() -> None:
    small = synthetic.video(seed=41, seconds=4, size=(320, 240))
    ours, ref = hash_video(small), reference_hashes(small)
    assert [f.pdq for f in ours] == [f.pdq for f in ref] and [f.quality for f in ours] == [f.quality for f in ref]
    large = synthetic.video(seed=42, seconds=3, size=(1024, 768))
    ours, ref = hash_video(large), reference_hashes(large)
    assert max(aligned_distances(ours, ref)) <= 16, "the 512 px pre-scale moves a frame a few bits"
    assert is_match(ours, ref) and not is_match(ours, reference_hashes(small))

"""The faces detector on real photos: the person enrolled from one photo is found in her other
photos and in her face pasted into unrelated synthetic scenes (scaled, mirrored, JPEG quality 50);
the other person is not; a scene with no face is negative. Distances are printed (``-s``) and are
the calibration quoted in docs/watchlist.md.

The photos are the ``face_recognition`` sdist's test images, fetched from the package registry at
test time (``tests/faces_support.py``); the test skips with the reason when it cannot be reached.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("dlib", reason="the faces extra is not installed: pip install 'tgwatch[faces]'")

from config.watchlist import WatchlistSettings
from crawler.watchlist.detector import verdict_for
from crawler.watchlist.faces import FaceModel
from crawler.watchlist.gallery import Gallery
from tests.faces_support import (
    ENROLLED,
    OTHER_PERSON,
    SAME_PERSON,
    face_crop,
    jpeg,
    paste,
    png,
    registry_face_photos,
    scene,
)

THRESHOLD = WatchlistSettings().threshold
#: (scale, mirrored) of the pasted face; every variant is re-encoded as JPEG quality 50
VARIANTS = [(1.0, False), (0.5, False), (0.35, True), (1.4, True)]


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return FaceModel()


@pytest.fixture(scope="module")
def images() -> Path:
    return registry_face_photos()


@pytest.fixture(scope="module")
def gallery(model: FaceModel, images: Path) -> Gallery:
    (face,) = model.faces_in((images / ENROLLED).read_bytes())  # enrolled from ONE photo
    return Gallery([("person-a", face.embedding)])


def test_her_other_photos_match_and_the_other_person_does_not(model: FaceModel, images: Path, gallery: Gallery) -> None:
    for name in SAME_PERSON:
        (face,) = model.faces_in((images / name).read_bytes())
        hit = gallery.nearest(face.embedding)
        assert hit is not None
        print(f"same person   {name:<24} distance {hit.distance:.3f}")
        assert hit.distance <= THRESHOLD, name
    (other,) = model.faces_in((images / OTHER_PERSON).read_bytes())
    far = gallery.nearest(other.embedding)
    assert far is not None
    print(f"other person  {OTHER_PERSON:<24} distance {far.distance:.3f}")
    assert far.distance > THRESHOLD
    assert gallery.match(other.embedding, THRESHOLD) is None


def test_her_face_pasted_scaled_mirrored_and_recompressed_still_matches(
    model: FaceModel, images: Path, gallery: Gallery
) -> None:
    for name in SAME_PERSON[:2]:
        (face,) = model.faces_in((images / name).read_bytes())
        crop = face_crop(images / name, face.box)
        for i, (scale, mirror) in enumerate(VARIANTS):
            data = jpeg(paste(crop, 100 + i, scale=scale, mirror=mirror), quality=50)
            found = model.faces_in(data)
            verdict = verdict_for(found, gallery, THRESHOLD)
            shown = [m["distance"] for m in verdict.get("matches", [])]
            print(f"pasted        {name:<24} scale {scale:<4} mirrored {mirror!s:<5} q50 distances {shown}")
            assert verdict["decision"] == "watchlist_match", (name, scale, mirror)
            (match,) = verdict["matches"]
            assert match["person"] == "person-a" and match["distance"] <= THRESHOLD
            left, top, right, bottom = match["box"]
            assert 0 <= left < right <= 1280 and 0 <= top < bottom <= 720
            assert "embedding" not in str(verdict)


def test_the_other_person_pasted_and_a_scene_without_a_face_are_negative(
    model: FaceModel, images: Path, gallery: Gallery
) -> None:
    (face,) = model.faces_in((images / OTHER_PERSON).read_bytes())
    crop = face_crop(images / OTHER_PERSON, face.box)
    for i, (scale, mirror) in enumerate(VARIANTS):
        found = model.faces_in(jpeg(paste(crop, 200 + i, scale=scale, mirror=mirror), quality=50))
        assert len(found) == 1, "the other person's face is found ..."
        assert verdict_for(found, gallery, THRESHOLD)["decision"] == "negative", "... and matches nobody"
    for seed in (1, 2, 3):
        assert model.faces_in(png(scene(seed))) == []
        assert verdict_for(model.faces_in(jpeg(scene(seed), 50)), gallery, THRESHOLD)["decision"] == "negative"


def test_an_empty_gallery_matches_nothing_and_non_images_have_no_faces(model: FaceModel, images: Path) -> None:
    found = model.faces_in((images / ENROLLED).read_bytes())
    assert verdict_for(found, Gallery(), THRESHOLD)["decision"] == "negative"
    assert model.faces_in(b"%PDF-1.4 not an image") == []


def test_a_video_is_looked_at_in_its_keyframes(model: FaceModel, images: Path, gallery: Gallery) -> None:
    import io

    import av
    import numpy as np

    (face,) = model.faces_in((images / SAME_PERSON[1]).read_bytes())
    frames = [np.asarray(scene(50)), np.asarray(paste(face_crop(images / SAME_PERSON[1], face.box), 51, scale=0.5))]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "1"}  # every frame a keyframe
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    found = model.faces_in(buf.getvalue())
    verdict = verdict_for(found, gallery, THRESHOLD)
    assert verdict["decision"] == "watchlist_match"
    assert [m["frame"] for m in verdict["matches"]] == [1], "found in the second keyframe"

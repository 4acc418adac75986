"""Text in images: Korean and English words drawn on generated pictures (and a video's keyframe) are
read by Tesseract, stored with the media, found by the message search's ``q`` and scored by discovery.
Skipped, with the reason, where Tesseract or its Korean data is absent (scripts/install-ocr.sh)."""

from __future__ import annotations

import io
import shutil
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image, ImageDraw, ImageFont

import config
from config import Settings
from crawler.discovery.repo import CandidateRepo
from crawler.discovery.scoring import Scorer
from crawler.discovery.service import context_texts
from crawler.hashing.ocr import available, read_text, read_text_in_child
from crawler.investigate.filters import MessageSearch, to_mongo
from crawler.pipeline import open_pipeline
from foundation.models import ChannelRef, MediaKind, MediaRef, Message, Source
from storage.client import Store
from storage.repos.messages import MessageRepo
from tests.media_host import LOOPBACK_HTTP, MediaServer

MISSING = available("kor+eng")
FONT = next(iter(sorted(Path("/usr/share/fonts").rglob("NotoSansCJK-Regular.ttc"))), None)
pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=f"OCR unavailable: {MISSING}"),
    pytest.mark.skipif(FONT is None, reason="no CJK font (fonts-noto-cjk) to draw Korean text"),
]
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def picture(lines: list[str], size: tuple[int, int] = (720, 240)) -> Image.Image:
    assert FONT is not None
    font = ImageFont.truetype(str(FONT), 56, index=1)  # index 1: the Korean face of the collection
    img = Image.new("RGB", size, (250, 250, 245))
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((30, 30 + i * 90), line, font=font, fill=(20, 20, 30))
    return img


def png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def mp4(img: Image.Image, frames: int = 6) -> bytes:
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(3, 1))
        stream.width, stream.height, stream.pix_fmt = img.width, img.height, "yuv420p"
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_image(img)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def test_korean_and_english_words_are_read_from_an_image_and_a_video() -> None:
    img = picture(["비밀방 입장", "SECRET ROOM"])
    result = read_text(png(img), "image", timeout=60)
    assert result.error is None and result.frames == 1 and result.engine.startswith("tesseract")
    assert "비밀방" in result.text and "SECRET" in result.text.upper()
    video = read_text(mp4(img), "video", timeout=60)
    assert video.error is None and video.frames >= 1 and "비밀방" in video.text


async def test_a_video_is_read_in_a_child_process_so_a_crawler_never_imports_pyav() -> None:
    result = await read_text_in_child(mp4(picture(["유출 제보", "LEAK NOTICE"])), "video", seconds=60)
    assert result.error is None and result.frames >= 1 and "유출" in result.text and "LEAK" in result.text.upper()


def test_failures_are_recorded_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = read_text(b"\x89PNG\r\n\x1a\nnot really", "image", timeout=30)
    assert broken.text == "" and broken.error is not None and broken.error["kind"] == "undecodable"
    slow = read_text(png(picture(["유출 제보", "LEAK"], size=(1800, 900))), "image", timeout=0.01)
    assert slow.error is not None and slow.error["kind"] == "ocr_timeout"
    monkeypatch.setenv("PATH", "/nonexistent")
    available.cache_clear()
    try:
        gone = read_text(png(picture(["x"])), "image")
    finally:
        available.cache_clear()
    assert gone.error is not None and gone.error["kind"] == "ocr_unavailable" and gone.text == ""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return config.load(data_dir=tmp_path / "data", media={"hash_workers": 1, "ocr": True, "ocr_timeout_seconds": 60},
                       http=LOOPBACK_HTTP)  # fmt: skip


async def test_search_and_discovery_see_the_text_in_a_picture(
    store: Store, settings: Settings, media_server: tuple[MediaServer, str]
) -> None:
    server, base = media_server
    server.add("invite.png", png(picture(["비밀방 입장", "SECRET ROOM"])))
    server.add("plain.png", png(picture(["ORDINARY"])))
    post = Message(
        ref=ChannelRef(username="ocr_lab"), msg_id=1, source=Source.WEB, date=T0,
        text="see https://t.me/hidden_room_x", links=["https://t.me/hidden_room_x"],
        media=[MediaRef(kind=MediaKind.PHOTO, url=base + "invite.png")],
    )  # fmt: skip
    other = Message(
        ref=ChannelRef(username="ocr_lab"), msg_id=2, source=Source.WEB, date=T0, text="nothing here",
        media=[MediaRef(kind=MediaKind.PHOTO, url=base + "plain.png")],
    )  # fmt: skip
    async with open_pipeline(store, settings) as ingest:
        result = await ingest.submit([post, other])
    assert result.media_hashed == 2 and result.media_errors == 0

    stored = await MessageRepo(store).get("ocr_lab/1")
    assert stored is not None
    media = await store["media"].find_one({"_id": stored["media"][0]["sha256"]})
    assert media is not None and "비밀방" in media["ocr_text"] and media["ocr_error"] is None

    # the word is in the picture only, never in the message text: q still finds that message
    query = await to_mongo(store, MessageSearch.from_query({"q": "비밀방"}))
    found = await MessageRepo(store).search(query)
    assert [d["_id"] for d in found] == ["ocr_lab/1"]
    assert [d["_id"] for d in await MessageRepo(store).search(await to_mongo(store, MessageSearch(q="ordinary")))] == [
        "ocr_lab/2"
    ]

    candidate = await CandidateRepo(store).get("https://t.me/hidden_room_x")
    assert candidate is not None
    score = Scorer.from_file().score(None, None, context_texts(candidate))
    assert any(m.term == "비밀방" and m.field == "context" for m in score.matches)


def test_the_install_script_names_the_debian_packages() -> None:
    script = (Path(__file__).resolve().parents[1] / "scripts" / "install-ocr.sh").read_text()
    for package in ("tesseract-ocr", "tesseract-ocr-kor", "tesseract-ocr-eng", "fonts-noto-cjk"):
        assert package in script
    assert shutil.which("tesseract") is not None

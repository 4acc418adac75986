"""A small evidence world for the case-access tests: two cases, one generated image, four roles."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, ImageDraw

import config
from config import Settings
from crawler.detection.service import DetectionService
from crawler.evidence.cases import Cases
from crawler.evidence.ledger import Ledger
from crawler.evidence.members import CaseMembers
from crawler.evidence.signing import generate_key
from crawler.evidence.wiring import build_ledger
from crawler.hashing.digests import digest_bytes
from crawler.pipeline import open_pipeline
from crawler.tokens import Role, TokenRepo, server_secret
from foundation.models import ChannelRef, MediaKind, MediaRef, Message, RawCapture, Source
from storage.client import Store
from storage.repos.authorizations import AuthorizationRepo, channel_scope

T0 = datetime(2026, 4, 1, tzinfo=UTC)
#: words that appear only in message text and raw HTML: an auditor's bundle must not hold them
SECRET_TEXT = "case-text-only-investigators-read"


def synthetic_png() -> bytes:
    img = Image.new("RGB", (48, 32), (20, 120, 200))
    draw = ImageDraw.Draw(img)
    draw.rectangle([5, 5, 30, 25], outline=(255, 255, 0), width=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class World:
    settings: Settings
    ledger: Ledger
    sha: str
    image: bytes
    #: token name → token, for: boss (admin, on the authorization), chief (admin, not on it),
    #: member (investigator in CASE-A), outsider (investigator in CASE-B only, but named on the
    #: CASE-A authorization), aud (auditor)
    tokens: dict[str, str]


async def build_world(store: Store, data_dir: Path) -> World:
    settings = config.load(data_dir=data_dir, media={"fetch": False})
    key = settings.evidence.private_key_path(settings.data_dir)
    generate_key(key.parent, name=key.name)
    image = synthetic_png()
    sha = digest_bytes(image).sha256
    photo = MediaRef(kind=MediaKind.PHOTO, sha256=sha, width=48, height=32)
    async with open_pipeline(store, settings) as ingest:
        for channel, msg_id, media in (("case_chan", 1, [photo]), ("other_chan", 2, [])):
            html = f"<div>{SECRET_TEXT} {msg_id}</div>"
            raw = RawCapture.of("html", html, url=f"http://x/s/{channel}", fetched_at=T0)
            message = Message(
                ref=ChannelRef(username=channel), msg_id=msg_id, source=Source.WEB, date=T0,
                text=f"{SECRET_TEXT} {msg_id}", media=media, raw=raw,
            )  # fmt: skip
            await ingest.submit([message])
    DetectionService(store, settings).quarantine.put(image)
    ledger = build_ledger(store, settings)
    tokens: dict[str, str] = {}
    for name, role in (
        ("boss", Role.ADMIN),
        ("chief", Role.ADMIN),
        ("member", Role.INVESTIGATOR),
        ("outsider", Role.INVESTIGATOR),
        ("aud", Role.AUDITOR),
    ):
        tokens[name], _ = await TokenRepo(store, server_secret(config.load())).create(name, role)
    await Cases(ledger).add("CASE-A", channel="case_chan", actor="boss")
    await Cases(ledger).add("CASE-B", channel="other_chan", actor="boss")
    await CaseMembers(ledger).add("CASE-A", "member", actor="boss")
    await CaseMembers(ledger).add("CASE-B", "outsider", actor="boss")
    await AuthorizationRepo(store).add(
        case_id="CASE-A",
        warrant_ref="W-A",
        approver="judge",
        scope=[channel_scope("case_chan")],
        accounts=["member", "outsider", "boss"],
        valid_until=time.time() + 3600,
    )
    return World(settings, ledger, sha, image, tokens)

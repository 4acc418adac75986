"""Screenshots of posts as evidence: taken, kept encrypted like media, and written to the ledger.

A screenshot is one more media item of its message: its PNG goes into the quarantine (AES-GCM,
SHA-256 as associated data), a ``media`` document (``media_kind: screenshot``) and a sighting on
the message, so the console, ``/media/{sha}/bytes`` and bundle export apply the very rules they
apply to the message's own media. The ledger gets an ``item: screenshot`` capture entry with the
PNG's SHA-256 — or, when no image could be taken, the reason (``unavailable``), never a fake.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from dataclasses import dataclass

from PIL import Image

from config import Settings
from crawler.captures.screenshot import post_widget_url, shoot
from crawler.detection.quarantine import Quarantine
from crawler.evidence.entries import capture_screenshot_entry
from crawler.evidence.ledger import Ledger
from foundation import keys
from foundation.egress import EgressPolicy
from foundation.errors import NotFound
from foundation.logs import get_logger
from foundation.models import utcnow
from storage.client import Store
from storage.repos.authorizations import AuthorizationRepo, channel_scope
from storage.repos.channels import ChannelRepo
from storage.repos.media import MediaRepo
from storage.repos.messages import MessageRepo

log = get_logger(__name__)


@dataclass(frozen=True)
class ScreenshotResult:
    message: str
    url: str
    seq: int
    sha256: str | None
    unavailable: str | None


class Screenshots:
    def __init__(self, store: Store, settings: Settings, ledger: Ledger, *, web_base: str | None = None) -> None:
        self.store = store
        self.settings = settings
        self.ledger = ledger
        self.web_base = web_base or settings.telegram_web_base
        self.policy = EgressPolicy.from_settings(settings, self.web_base)
        data_dir = settings.data_dir
        key = keys.load_or_create(settings.detection.quarantine_key, data_dir, "quarantine")
        self.quarantine = Quarantine(data_dir / "quarantine", key)

    async def capture(self, message: str, *, actor: str, reason: str, seconds: float = 45.0) -> ScreenshotResult:
        """Screenshot the post ``<channel_key>/<msg_id>`` and record it (or why there is none)."""
        doc = await MessageRepo(self.store).get(message)
        if doc is None:
            raise NotFound(f"no stored message {message!r}")
        channel, msg_id = str(doc["channel"]), int(doc["msg_id"])
        chan = await ChannelRepo(self.store).get(channel) or {}
        username = chan.get("username") or (doc.get("ref") or {}).get("username")
        taken_at = utcnow()
        png: bytes | None
        unavailable: str | None
        if not username:
            url, png, unavailable, browser = "", None, "a private chat has no public post widget", ""
        else:
            url = post_widget_url(self.web_base, str(username), msg_id)
            shot = await shoot(url, self.policy, seconds=seconds)
            png, unavailable, browser = shot.png, shot.unavailable, shot.browser
        sha = hashlib.sha256(png).hexdigest() if png else None
        if png is not None and sha is not None:
            await asyncio.to_thread(self.quarantine.put, png)
            await self._as_media(png, sha, channel, msg_id, message)
        entry = capture_screenshot_entry(
            message=message, channel=channel, url=url, sha256=sha, taken_at=taken_at, unavailable=unavailable,
            browser=browser, actor=actor, reason=reason,
        )  # fmt: skip
        # like a capture of the post itself: the active authorization naming the channel, and its case
        scopes = [channel_scope(channel), *([channel_scope(str(username))] if username else [])]
        grant = next(iter(await AuthorizationRepo(self.store).active_for_scopes(scopes)), None)
        entry["authorization"] = grant["_id"] if grant else None
        entry["cases"] = [grant["case_id"]] if grant and grant.get("case_id") else []
        seq = await self.ledger.append(entry)
        return ScreenshotResult(message, url, seq, sha, unavailable)

    async def _as_media(self, png: bytes, sha: str, channel: str, msg_id: int, message: str) -> None:
        with Image.open(io.BytesIO(png)) as img:
            width, height = img.size
        media = MediaRepo(self.store)
        await media.insert(
            {
                "_id": sha, "md5": hashlib.md5(png).hexdigest(), "size": len(png), "mime": "image/png",
                "kind": "image", "media_kind": "screenshot", "width": width, "height": height,
                "screenshot_of": message, "matches": [], "matched": False, "first_seen_at": utcnow(),
            }
        )  # fmt: skip
        await media.add_sighting(sha, channel=channel, msg_id=msg_id, message=message, at=utcnow(), source="screenshot")


class AlertScreenshots:
    """Screenshots at alert time: ``on_alert`` (an ``on_alert_raised`` listener) screenshots the
    post an alert names (``details.message``, else the first message its media was seen in), one
    at a time, each post once per process. ``aclose`` waits for the ones under way (bounded)."""

    def __init__(self, shots: Screenshots, *, timeout: float) -> None:
        self.shots = shots
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: set[str] = set()
        self._slot = asyncio.Semaphore(1)

    def on_alert(self, key: str) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._capture(key))
        except RuntimeError:  # raised outside a running loop: nothing to schedule on
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _capture(self, key: str) -> None:
        from storage.repos.alerts import AlertRepo

        try:
            alert = await AlertRepo(self.shots.store).get(key)
            if alert is None:
                return
            message = (alert.get("details") or {}).get("message")
            if not isinstance(message, str) and alert.get("sha256"):
                seen = await MediaRepo(self.shots.store).sightings_of(str(alert["sha256"]))
                message = next((str(s["message"]) for s in seen if s.get("message")), None)
            if not isinstance(message, str) or message in self._done:
                return
            self._done.add(message)
            async with self._slot:
                await self.shots.capture(message, actor="system:alert", reason=f"alert {key}", seconds=self.timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed screenshot must never disturb the crawl that raised the alert
            log.warning("alert screenshot failed", alert=key, error=str(exc)[:300])

    async def aclose(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=self.timeout + 5)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

"""The faces detector: a detection-queue consumer like any other (``tgwatch detector faces``).

For each leased media item it finds the faces (images, and a video's keyframes), embeds them,
compares each with the enrolled gallery and posts ``watchlist_match`` (person reference, distance,
face box) or ``negative``. The embeddings of the faces it saw live only in this function's locals:
nothing about a face that matches nobody is stored, logged or sent.

The gallery comes from the server as sealed blobs and is opened with this process's own copy of the
key; it is fetched again every ``gallery_refresh_seconds`` (a withdrawal also takes effect on the
server at once: it drops a match for a person no longer enrolled).
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

from crawler.detection.client import DetectionClient
from crawler.watchlist.faces import MODEL_VERSION, FaceModel
from crawler.watchlist.gallery import Gallery
from crawler.watchlist.sealing import Sealer
from foundation.errors import MediaError
from foundation.models import WATCHLIST_DETECTOR

DETECTOR_NAME = WATCHLIST_DETECTOR


class FacesDetector:
    def __init__(self, client: DetectionClient, sealer: Sealer, model: FaceModel, refresh_seconds: float) -> None:
        self._client = client
        self._sealer = sealer
        self._model = model
        self._refresh = refresh_seconds
        self._fetched_at = -1e18
        self._lock = asyncio.Lock()
        self.gallery = Gallery()
        self.threshold = 0.0

    async def refresh(self, *, force: bool = False) -> None:
        async with self._lock:
            if not force and time.monotonic() - self._fetched_at < self._refresh:
                return
            # fail closed: whatever goes wrong (server unreachable, the watchlist turned off, a blob
            # that does not open), the previous gallery is dropped first, so a person withdrawn
            # meanwhile is never held in memory nor matched on a stale copy
            self.gallery, self.threshold, self._fetched_at = Gallery(), 0.0, -1e18
            body = await self._client.get_json("/api/v1/watchlist/gallery")
            self.gallery = Gallery(
                (p["person"], self._sealer.open(p["person"], base64.b64decode(p["sealed"]))) for p in body["persons"]
            )
            self.threshold = float(body["threshold"])
            self._fetched_at = time.monotonic()

    async def __call__(self, path: Path, job: dict[str, Any]) -> dict[str, Any]:
        await self.refresh()
        try:
            faces = await asyncio.to_thread(self._model.faces_in, await asyncio.to_thread(path.read_bytes))
        except MediaError as exc:  # nothing to look at safely: say so, it is not a failure to retry
            return {"decision": "unknown", "labels": {}, "detector_version": f"{MODEL_VERSION} ({exc.kind})"}
        return verdict_for(faces, self.gallery, self.threshold)


def verdict_for(faces: list[Any], gallery: Gallery, threshold: float) -> dict[str, Any]:
    """The verdict for the faces of one media item: matches only, never an embedding."""
    matches = []
    for face in faces:
        hit = gallery.match(face.embedding, threshold)
        if hit is not None:
            matches.append(
                {"person": hit.person, "distance": round(hit.distance, 4), "box": list(face.box), "frame": face.frame}
            )
    if matches:
        return {"decision": "watchlist_match", "matches": matches, "detector_version": MODEL_VERSION}
    return {"decision": "negative", "labels": {}, "detector_version": MODEL_VERSION}

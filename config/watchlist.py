"""Settings of the consent-based watchlist (``[watchlist]``; docs/watchlist.md).

The feature is off unless ``key`` is set (``TGWATCH_WATCHLIST__KEY``): there is no default key and
no key file, so nobody can be enrolled or matched on an installation that did not choose it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class WatchlistSettings(BaseModel):
    #: AES-256-GCM key sealing enrolled embeddings (urlsafe base64 of 32 bytes); unset = feature off
    key: SecretStr | None = None
    #: a face within this Euclidean distance of an enrolled embedding is a match (dlib ResNet; 0.6
    #: is dlib's own cut-off; 0.5 is calibrated in docs/watchlist.md)
    threshold: float = Field(0.5, gt=0.0, le=1.0)
    #: photos given to ``watchlist enroll`` are read up to this size (they are never stored)
    max_photo_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    #: the detector fetches the enrolled gallery again after this many seconds, so a withdrawal
    #: stops matching within it (the server also refuses a match for a withdrawn person at once)
    gallery_refresh_seconds: float = Field(30.0, gt=0)

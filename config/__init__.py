"""Typed settings, targets and schedules. Imports nothing else of tgwatch at module level."""

from __future__ import annotations

from config.settings import (
    DetectionSettings,
    HttpSettings,
    IngestSettings,
    LimitSettings,
    MatchingSettings,
    MediaSettings,
    Settings,
    TelegramSettings,
    is_secret_name,
    load,
    mask_uri,
    masked_data,
)

__all__ = [
    "DetectionSettings",
    "HttpSettings",
    "IngestSettings",
    "LimitSettings",
    "MatchingSettings",
    "MediaSettings",
    "Settings",
    "TelegramSettings",
    "is_secret_name",
    "load",
    "mask_uri",
    "masked_data",
]

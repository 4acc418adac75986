"""Helpers for the scheduling tests (no tests here): a sample world of many small channels, settings
and environments that point tgwatch at the test store and the sample site."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from config import Settings
from spiders.sample_site import content
from spiders.sample_site.content import World

PYTHON = sys.executable


def many_channels(n: int, posts: int = 8, seed: int = 7) -> World:
    """A world of ``n`` public channels ``feed_00`` … with ``posts`` posts each (one preview page)."""
    channels = {}
    for i in range(n):
        name = f"feed_{i:02d}"
        channels[name] = content._channel(
            seed, name, f"Feed {i} (sample)", "Synthetic test channel.",
            history=lambda b: content._mixed_history(b, posts),
        )  # fmt: skip
    return World(seed=seed, generation=1, channels=channels, changes={})


def settings_for(base_url: str, data_dir: Path) -> Settings:
    return Settings(telegram_web_base=base_url, data_dir=data_dir, http={"autothrottle": False, "retry_times": 1})


def env_for(uri: str, database: str, base_url: str, data_dir: Path) -> dict[str, str]:
    """Environment of a child ``tgwatch`` process sharing the test's store and sample site."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(
        TGWATCH_MONGODB_URI=uri,
        TGWATCH_DATABASE=database,
        TGWATCH_TELEGRAM_WEB_BASE=base_url,
        TGWATCH_DATA_DIR=str(data_dir),
        TGWATCH_HTTP__AUTOTHROTTLE="false",
        TGWATCH_HTTP__RETRY_TIMES="1",
        TGWATCH_LOG_FORMAT="json",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    return env


def tgwatch(*args: str) -> list[str]:
    return [PYTHON, "-m", "crawler", *args]

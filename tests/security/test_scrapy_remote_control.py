"""Scrapy ≥ 2.19 ships ``RemoteControl``: an HTTP server on 127.0.0.1 that executes posted Python code
in the crawling process, its bearer token written to a job file under the user's state directory.
Any local process able to read that file could run code inside tgwatch; a crawl must never start it."""

from __future__ import annotations

from pathlib import Path

from scrapy.utils.conf import build_component_list

from config import Settings
from spiders.settings import build_scrapy_settings


def test_crawl_settings_remove_scrapy_remote_control(tmp_path: Path) -> None:
    scrapy_settings = build_scrapy_settings(Settings(data_dir=tmp_path))
    assert scrapy_settings.getbool("REMOTE_CONTROL_ENABLED") is False
    loaded = [str(path).rsplit(".", 1)[-1] for path in build_component_list(scrapy_settings.getwithbase("EXTENSIONS"))]
    assert "RemoteControl" not in loaded and "CoreStats" in loaded  # what Scrapy's extension manager loads

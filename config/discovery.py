"""Discovery settings: snowball limits, tip priority, triage batch size and the rule/term files.

Why a model of its own: discovery can flood the review queue (one busy channel mentions hundreds of
rooms), so its limits must be visible and tunable in one place. ``Settings`` gets a ``discovery``
field of this type; until then callers use ``discovery_settings(settings)``, which falls back to
the defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

#: the shipped multi-language term list (``crawler.discovery.scoring`` reads it)
DEFAULT_TERMS_FILE = Path(__file__).with_name("terms.toml")


class DiscoverySettings(BaseModel):
    #: snowball: a candidate found in a channel of depth d gets depth d + 1; deeper ones are dropped
    max_depth: int = Field(2, ge=0)
    #: snowball: at most this many *new* candidates per ingested batch (sightings of known ones always count)
    max_new_per_batch: int = Field(200, ge=0)
    #: snowball: at most this many links taken from one message (spam walls of links are not rooms)
    max_links_per_message: int = Field(20, ge=1)
    #: provenance entries kept per candidate (sightings beyond it are only counted)
    max_provenance: int = Field(50, ge=1)
    #: review priority per source kind; tips outrank everything found by machines
    tip_priority: int = 100
    aggregator_priority: int = 10
    snowball_priority: int = 5
    #: triage: candidates fetched per ``discover run`` (highest priority first)
    triage_batch: int = Field(500, ge=1)
    #: aggregator crawl: pages per site and run (pagination + category links)
    max_pages_per_site: int = Field(50, ge=1)
    #: aggregator crawl: new candidates taken from one page, and from one site in one run; links
    #: past either cap are counted (``capped`` on the run) and recorded as one error, not stored
    max_new_per_page: int = Field(500, ge=0)
    max_new_per_site_run: int = Field(5000, ge=0)
    #: site rules and term list; None = the files shipped in ``config/``
    aggregators_file: Path | None = None
    terms_file: Path | None = None


def discovery_settings(settings: Any) -> DiscoverySettings:
    """``settings.discovery``; the defaults for settings-like objects without it (tests' stand-ins)."""
    value = getattr(settings, "discovery", None)
    return value if isinstance(value, DiscoverySettings) else DiscoverySettings()

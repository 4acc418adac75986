"""The seam between re-checks and the sources that can re-fetch an item.

A probe is told which items to look at and answers one ``ProbeResult`` per item, always: a fetch
that fails becomes ``unknown`` with the error in ``detail``, never an exception that loses the other
items' answers. Only a store failure may propagate. The web probe (``crawler.takedowns.web``, with
its spider in ``spiders/takedown_probe.py``) reads t.me pages; the MTProto probe
(``telegram_watch/takedown_probe.py``) asks Telegram through the account pool. Re-checks use the
probe of the way each item was found (``ProbeItem.source``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from crawler.takedowns.models import ProbeItem, ProbeResult


class Probe(Protocol):
    method: str  # "web" | "mtproto"

    async def check(self, items: Sequence[ProbeItem]) -> list[ProbeResult]: ...

"""Takedown re-check spider: is each reported item still on t.me's web preview?

An item is re-fetched the way tgwatch found it on the web:

* a message: ``{base}/NAME/ID?embed=1`` (the single-post widget). The post shown → ``online``;
  t.me's "Post not found" widget → ``removed/post_not_found``. Anything else (the profile page a
  private or blocked channel answers with, a 404, markup we do not know) says nothing by itself,
  so the channel's profile page decides (below).
* a channel (or the follow-up of a message): ``{base}/NAME`` read by ``parse_profile``: the block
  notice → ``removed/channel_blocked``; no such username → ``removed/channel_not_found``; private →
  ``unknown/channel_private`` (closed by its owner or to us: not proof the platform acted); a public
  channel without its web preview → ``online`` for a channel item, ``unknown/no_web_preview`` for a message;
  a channel with its preview is ``online`` (for a channel item) or ``unknown/unrecognised_page``
  (for a message whose post page we could not read: the channel is up, the post is undecided).

Removal needs positive proof: an unfamiliar page is ``unknown``, never ``removed``. Fetch failures
after the project's retries (429 honours ``Retry-After``, 5xx back off) are ``unknown/fetch_failed``
or ``unknown/rate_limited`` with the error in ``detail``. Each channel's profile page is fetched at
most once per run and answers every item that needs it (a report of 50 messages from one blocked
channel costs 50 post pages and one profile page).

Answers leave as ``ProbeAnswer`` items through ``ProbePipeline`` to the run's sink
(``crawler.takedowns.web.WebProbe``); the spider never touches the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Self

import scrapy
from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response, TextResponse
from twisted.python.failure import Failure

from foundation.contracts import ItemKind, ItemStatus, ProbeItem, ProbeResult
from foundation.errors import NotFound, RateLimited
from foundation.models import utcnow
from spiders.aggregator import map_failure
from spiders.parsing.channel import ChannelPage, parse_page
from spiders.parsing.profile import EntityType, PageState, ProfilePage, parse_profile
from spiders.shared import shared

if TYPE_CHECKING:
    from datetime import datetime

    from scrapy.crawler import Crawler

METHOD = "web"

ONLINE, REMOVED, UNKNOWN = ItemStatus.ONLINE, ItemStatus.REMOVED, ItemStatus.UNKNOWN


@dataclass(frozen=True)
class Verdict:
    """What one page says about one item (before it is stamped with the item, time and URL)."""

    status: ItemStatus
    reason: str
    detail: str | None = None


@dataclass(frozen=True)
class ProbeAnswer:
    """The spider's item: one item's result (Scrapy items must be dataclasses, dicts, …)."""

    result: ProbeResult


def post_url(base_url: str, username: str, msg_id: int) -> str:
    return f"{base_url.rstrip('/')}/{username}/{msg_id}?embed=1"


def profile_url(base_url: str, username: str) -> str:
    return f"{base_url.rstrip('/')}/{username}"


# ------------------------------------------------------------------------------------ pure decisions


def read_post_page(page: ChannelPage, msg_id: int) -> Verdict | None:
    """What a ``/NAME/ID?embed=1`` page says about message ``msg_id``; None: ask the profile page."""
    if page.kind in ("post", "channel") and page.messages:
        ids = page.ids
        if msg_id in ids:
            return Verdict(ONLINE, "present")
        if page.kind == "post":  # t.me shows an album's slot within its post (data-post = first slot)
            return Verdict(ONLINE, "present", f"shown within post {ids[0]}")
        return None
    if page.kind == "error" and "not found" in (page.error_text or "").lower():
        return Verdict(REMOVED, "post_not_found", page.error_text)
    return None


def read_profile_page(profile: ProfilePage, kind: ItemKind, post_note: str | None = None) -> Verdict:
    """What ``/NAME`` says about a channel item, or about a message whose post page said nothing.

    ``post_note`` says what the post page showed instead of the post (kept in ``detail`` when the
    profile cannot decide either)."""
    if profile.state is PageState.BLOCKED:
        return Verdict(REMOVED, "channel_blocked", profile.blocked_notice)
    if profile.state is PageState.NOT_FOUND:
        return Verdict(REMOVED, "channel_not_found", "t.me shows no such username")
    if profile.state is not PageState.VALID:
        problems = "; ".join(profile.problems) or f"profile page state {profile.state.value}"
        return Verdict(UNKNOWN, "unrecognised_page", _join(post_note, problems))
    if profile.type in (EntityType.USER, EntityType.BOT):
        # the username was given up and taken by someone else: the reported room is gone
        return Verdict(REMOVED, "channel_not_found", f"the username now belongs to a {profile.type.value}")
    if profile.is_private:  # the owner closed it (or we were shut out): not proof the platform acted
        return Verdict(UNKNOWN, "channel_private", _join("the profile page says it is private", post_note))
    if profile.has_web_preview:
        if kind is ItemKind.CHANNEL:
            return Verdict(ONLINE, "present")
        return Verdict(UNKNOWN, "unrecognised_page", _join("the channel is online", post_note))
    if profile.type is EntityType.GROUP:
        # public groups never have a /s/ web preview: its absence proves nothing
        if kind is ItemKind.CHANNEL:
            return Verdict(ONLINE, "present", "public group (groups have no web preview)")
        return Verdict(UNKNOWN, "unrecognised_page", _join("the group is online", post_note))
    # the owner switched the web preview off: the channel is still on Telegram
    if kind is ItemKind.CHANNEL:
        return Verdict(ONLINE, "present", "the channel exists (its web preview is off)")
    return Verdict(UNKNOWN, "no_web_preview", _join("the channel exists but shows no web preview", post_note))


def _join(*parts: str | None) -> str | None:
    kept = [p for p in parts if p]
    return "; ".join(kept) if kept else None


def failure_verdict(failure: Failure) -> tuple[Verdict, str | None]:
    """A download that failed after retries → ``unknown`` (and the URL it failed on).

    ``rate_limited`` only when the server said so (429, or 503 with ``Retry-After``); a 503 that
    kept failing is an outage (``fetch_failed``), though ``map_failure`` files both under RateLimited.
    """
    error = map_failure(failure)
    response = getattr(failure.value, "response", None)
    said_so = response is not None and (response.status == 429 or b"Retry-After" in response.headers)
    reason = "rate_limited" if isinstance(error, RateLimited) and said_so else "fetch_failed"
    detail = str(error) or error.kind
    if isinstance(error, RateLimited) and not said_so and response is not None:
        detail = f"HTTP {response.status} after retries"
    return Verdict(UNKNOWN, reason, detail), error.url


# ------------------------------------------------------------------------------------------- spider


@dataclass
class _ProfileFetch:
    """One channel's profile page: items waiting for it, then what it said (cached for the run)."""

    waiting: list[tuple[ProbeItem, str | None]] = field(default_factory=list)
    profile: ProfilePage | None = None
    failed: Verdict | None = None  # the fetch failed after retries
    url: str | None = None
    fetched_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.profile is not None or self.failed is not None


class TakedownProbeSpider(scrapy.Spider):
    name = "tgwatch_takedown_probe"

    def __init__(self, items: list[ProbeItem], base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.items: dict[str, ProbeItem] = {}
        for item in items:
            self.items.setdefault(item.item_id, item)
        self.base_url = base_url
        self.profiles: dict[str, _ProfileFetch] = {}

    async def start(self) -> AsyncIterator[Any]:
        for item in self.items.values():
            if not item.username:
                yield self._answer(item, Verdict(UNKNOWN, "not_checkable", "no public username: not on t.me's web"))
            elif item.kind is ItemKind.MESSAGE:
                if item.msg_id is None:
                    yield self._answer(item, Verdict(UNKNOWN, "not_checkable", "message item without a message id"))
                    continue
                yield Request(
                    post_url(self.base_url, item.username, item.msg_id),
                    callback=self.parse_post,
                    errback=self.post_failed,
                    dont_filter=True,
                    meta={"probe_item": item.item_id},
                )
            else:
                for out in self._need_profile(item, None):
                    yield out

    # -- results ------------------------------------------------------------------------------
    @staticmethod
    def _answer(
        item: ProbeItem, verdict: Verdict, url: str | None = None, checked_at: datetime | None = None
    ) -> ProbeAnswer:
        return ProbeAnswer(
            ProbeResult(
                item_id=item.item_id,
                status=verdict.status,
                reason=verdict.reason,
                checked_at=checked_at or utcnow(),
                method=METHOD,
                url=url,
                detail=verdict.detail,
            )
        )

    # -- post pages ---------------------------------------------------------------------------
    def parse_post(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        item = self.items[str(response.meta["probe_item"])]
        assert item.msg_id is not None
        fetched_at = utcnow()
        if not isinstance(response, TextResponse):
            yield from self._need_profile(item, f"the post page was not a text page ({response.url})")
            return
        page = parse_page(response.text, response.url, fetched_at=fetched_at, username=item.username)
        verdict = read_post_page(page, item.msg_id)
        if verdict is not None:
            yield self._answer(item, verdict, response.url, fetched_at)
            return
        shown = page.error_text or page.kind
        yield from self._need_profile(item, f"the post page showed no post ({shown})")

    def post_failed(self, failure: Failure) -> Iterator[Any]:
        request = getattr(failure, "request", None)
        if request is None or "probe_item" not in request.meta:
            return  # not ours to answer: the probe's "no answer" default covers the item
        item = self.items[str(request.meta["probe_item"])]
        if isinstance(map_failure(failure), NotFound):  # no widget for that address: the profile page says why
            yield from self._need_profile(item, f"the post page answered HTTP 404 ({request.url})")
            return
        verdict, url = failure_verdict(failure)
        yield self._answer(item, verdict, url or request.url)

    # -- profile pages ------------------------------------------------------------------------
    def _need_profile(self, item: ProbeItem, post_note: str | None) -> Iterator[Any]:
        """Answer ``item`` from its channel's profile page: fetched once per run, shared by all."""
        assert item.username is not None
        key = item.username.lower()
        fetch = self.profiles.get(key)
        if fetch is not None and fetch.done:
            yield self._from_profile(fetch, item, post_note)
            return
        if fetch is not None:  # in flight: wait for it
            fetch.waiting.append((item, post_note))
            return
        self.profiles[key] = _ProfileFetch(waiting=[(item, post_note)])
        yield Request(
            profile_url(self.base_url, item.username),
            callback=self.parse_profile,
            errback=self.profile_failed,
            dont_filter=True,
            meta={"probe_channel": key},
        )

    def _from_profile(self, fetch: _ProfileFetch, item: ProbeItem, post_note: str | None) -> ProbeAnswer:
        if fetch.failed is not None:
            return self._answer(item, fetch.failed, fetch.url, fetch.fetched_at)
        assert fetch.profile is not None
        return self._answer(item, read_profile_page(fetch.profile, item.kind, post_note), fetch.url, fetch.fetched_at)

    def _settle(self, key: str) -> Iterator[ProbeAnswer]:
        fetch = self.profiles[key]
        waiting, fetch.waiting = fetch.waiting, []
        for item, note in waiting:
            yield self._from_profile(fetch, item, note)

    def parse_profile(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        key = str(response.meta["probe_channel"])
        fetch = self.profiles[key]
        fetch.url, fetch.fetched_at = response.url, utcnow()
        if isinstance(response, TextResponse):
            fetch.profile = parse_profile(response.text, url=f"https://t.me/{key}")
        else:
            fetch.profile = ProfilePage(state=PageState.UNKNOWN, problems=("not a text page",))
        yield from self._settle(key)

    def profile_failed(self, failure: Failure) -> Iterator[Any]:
        request = getattr(failure, "request", None)
        if request is None or "probe_channel" not in request.meta:
            return
        key = str(request.meta["probe_channel"])
        fetch = self.profiles[key]
        fetch.failed, url = failure_verdict(failure)
        fetch.url, fetch.fetched_at = url or request.url, utcnow()
        yield from self._settle(key)


# ----------------------------------------------------------------------------------------- pipeline


class ProbeSink(Protocol):
    """Where probe answers go (``crawler.takedowns.web`` provides it)."""

    def accept(self, result: ProbeResult) -> None: ...


class ProbePipeline:
    """The one door out of the probe spider: every answer goes to the run's sink."""

    def __init__(self, sink: ProbeSink) -> None:
        self.sink = sink

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        sink = shared(crawler.settings, "TGWATCH_PROBE_SINK")
        if sink is None:
            raise NotConfigured("TGWATCH_PROBE_SINK is not set: nowhere to hand probe results")
        return cls(sink)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, ProbeAnswer):
            self.sink.accept(item.result)
        return item


PROBE_PIPELINES = {"spiders.takedown_probe.ProbePipeline": 300}

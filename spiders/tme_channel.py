"""The public-channel spider: walk ``{base}/s/NAME`` and its ``?before=ID`` pages, newest first.

The walk logic lives in ``Walker``, a pure state machine (no Scrapy, no I/O) that turns each parsed
page into the checkpoint that becomes true once that page is stored, and the next page to fetch.
The checkpoint is saved by ingest *after* the page's batch (``spiders.pipelines``), so a kill at any
moment leaves a checkpoint that claims only stored messages; a rerun refetches at most one page and
re-ingesting it is a no-op (natural ``_id``), so nothing is lost and nothing is duplicated.

Checkpoint fields (``foundation.models.Checkpoint``):

* ``[oldest_id, newest_id]`` — read without a gap; ``complete`` once ``oldest_id`` is the first message.
* ``walk_top``/``walk_low`` — a newest-first walk above ``newest_id`` that has not reached it yet:
  ``[walk_low, walk_top]`` is stored; a rerun continues at ``?before=walk_low``.
* ``extra["want_full"]`` — a ``--full`` backfill was asked for and is not finished: plain reruns
  continue it. ``extra["gaps"]`` — ``[low, high]`` id ranges a truncated page could not give us
  even after retries; the next run fetches ``?before=high`` again first.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Request, Response
from twisted.python.failure import Failure

from foundation.errors import AccessDenied, BadPage, EgressDenied, NotFound, PossiblyThrottled, TgwatchError
from foundation.links import LinkKind, normalize
from foundation.logs import get_logger
from foundation.models import Channel, ChannelRef, ChannelState, Checkpoint, Counters, RawCapture, Source, utcnow
from spiders.aggregator import map_failure
from spiders.page_capture import web_page
from spiders.parsing.channel import ChannelPage, parse_page
from spiders.parsing.profile import EntityType, PageState, parse_profile
from spiders.pipelines import PageItem

log = get_logger(__name__)

#: t.me's notice on a channel whose content it will not show on the web ("may contain sensitive content")
_SENSITIVE = re.compile(r"sensitive content|cannot be displayed in the web preview", re.IGNORECASE)

#: how long a "No posts found" answer (a likely throttle) suggests waiting before the channel is read again
NO_POSTS_RETRY_AFTER = 900.0

TOP: Literal["top"] = "top"
STOP: Literal["stop"] = "stop"
Next = int | Literal["top", "stop"]


def stream_name(username: str) -> str:
    return f"web:{username.lower()}"


@dataclass(frozen=True)
class CrawlMode:
    """How far back to go. Default (all None/False): newer than the checkpoint, or everything on a first crawl."""

    pages: int | None = None
    since: int | None = None
    full: bool = False

    def __post_init__(self) -> None:
        if self.pages is not None and self.pages < 1:
            raise ValueError(f"pages must be >= 1, got {self.pages}")


class Walker:
    """Decides what to fetch next and what each stored page proves. Pure logic, unit-testable."""

    def __init__(self, stream: str, checkpoint: Checkpoint | None, mode: CrawlMode) -> None:
        self.mode = mode
        self.cp = checkpoint or Checkpoint(stream=stream)
        self.pages = 0
        self.want_full = mode.full or (
            mode.pages is None and mode.since is None and bool(self.cp.extra.get("want_full"))
        )
        if checkpoint is None and mode.pages is None and mode.since is None:
            self.want_full = True  # first crawl without limits: everything
        self.phase: Literal["gap", "resume", "top", "backfill", "recheck"] = "top"
        self.top_walks = 0
        self.prev_low: int | None = None  # lowest id of the previous page in the current walk
        self._gaps: list[list[int | None]] = [list(g) for g in self.cp.extra.get("gaps", [])]
        self._gap: list[int | None] | None = None

    # -------------------------------------------------------------------------------------- public

    def start(self) -> Next:
        if self.want_full and not self.cp.complete:
            self.cp = self._with(extra={**self.cp.extra, "want_full": True})
        if self._gaps:
            self.phase = "gap"
            self._gap = self._gaps[0]
            return self._gap[1] if self._gap[1] is not None else TOP
        return self._start_walk()

    def on_page(self, ids: list[int], has_older: bool, truncated: bool = False) -> tuple[Checkpoint, Next]:
        """Account for one stored page (its message ids, whether an older page exists)."""
        self.pages += 1
        if self.phase == "gap":
            return self._on_gap_page(ids, truncated)
        if not ids:
            # an empty page: nothing (older) to read, the channel's history ends here
            return self._bottom()
        lo, hi = min(ids), max(ids)
        if truncated:
            self._gaps.append([hi, self.prev_low])  # prev_low None: the top page itself was cut
        self.prev_low = lo
        cp = self.cp
        bottom = not has_older

        if self.phase == "backfill":
            self.cp = self._with(oldest_id=min(lo, cp.oldest_id or lo), complete=bottom)
            return self._finish_or(lo, bottom)

        if self.phase == "recheck":  # re-reading stored pages: the checkpoint already covers them
            return self.cp, STOP if bottom or self._limit_reached(lo) else lo

        if self.phase == "top":
            walk_top, walk_low = hi, lo
            self.top_walks += 1
        else:  # resume
            walk_top, walk_low = int(cp.walk_top or hi), min(lo, int(cp.walk_low or lo))

        if cp.newest_id is None:
            # nothing stored before: this walk is the range, and it grows downwards from here
            self.cp = self._with(newest_id=walk_top, oldest_id=walk_low, complete=bottom, walk_top=None, walk_low=None)
            self.phase = "backfill"
            return self._finish_or(lo, bottom)

        if lo <= cp.newest_id or bottom:
            oldest = min(walk_low, cp.oldest_id) if cp.oldest_id is not None else walk_low
            self.cp = self._with(
                newest_id=max(walk_top, cp.newest_id),
                oldest_id=oldest,
                complete=cp.complete or bottom,
                walk_top=None,
                walk_low=None,
            )
            return self.cp, self._after_join()

        self.cp = self._with(walk_top=walk_top, walk_low=walk_low)
        if self._limit_reached(lo):
            return self.cp, STOP
        self.phase = "resume"
        return self.cp, lo

    # ------------------------------------------------------------------------------------ internals

    def _start_walk(self) -> Next:
        if self.cp.walk_low is not None:
            self.phase = "resume"
            self.prev_low = self.cp.walk_low
            return int(self.cp.walk_low)
        self.phase = "top"
        self.prev_low = None
        return TOP

    def _with(self, **update: Any) -> Checkpoint:
        extra = dict(update.pop("extra", self.cp.extra))
        if self._gaps_dirty():
            extra["gaps"] = [list(g) for g in self._gaps]
        if not self._gaps:
            extra.pop("gaps", None)
        complete = update.get("complete", self.cp.complete)
        if complete:
            extra.pop("want_full", None)
        return self.cp.model_copy(update={**update, "extra": extra, "updated_at": utcnow()})

    def _gaps_dirty(self) -> bool:
        return bool(self._gaps) or "gaps" in self.cp.extra

    def _limit_reached(self, lo: int) -> bool:
        if self.mode.pages is not None and self.pages >= self.mode.pages:
            return True
        return self.mode.since is not None and lo <= self.mode.since

    def _finish_or(self, lo: int, bottom: bool) -> tuple[Checkpoint, Next]:
        """Going down below what was read before: only for --full, --pages or --since walks."""
        if bottom or self._limit_reached(lo):
            return self.cp, STOP
        if self.want_full or self.mode.pages is not None or self.mode.since is not None:
            return self.cp, lo
        return self.cp, STOP

    def _after_join(self) -> Next:
        if self.mode.pages is not None and self.pages >= self.mode.pages:
            return STOP
        if self.mode.pages is not None and self.prev_low is not None and self.phase != "resume":
            # --pages N reads N pages from the top even where they were read before: re-reading
            # recent pages is how edits to recent messages become new versions
            self.phase = "recheck"
            return int(self.prev_low)
        if self.phase == "resume" and self.top_walks == 0:
            # the interrupted walk is closed; messages newer than it may have appeared meanwhile
            self.phase = "top"
            self.prev_low = None
            return TOP
        oldest = self.cp.oldest_id
        below = (
            self.want_full
            or self.mode.pages is not None
            or (self.mode.since is not None and oldest is not None and self.mode.since < oldest)
        )
        if below and not self.cp.complete and oldest is not None:
            self.phase = "backfill"
            self.prev_low = oldest
            return int(oldest)
        return STOP

    def _bottom(self) -> tuple[Checkpoint, Next]:
        cp = self.cp
        if cp.walk_low is not None and cp.walk_top is not None and cp.newest_id is not None:
            self.cp = self._with(
                newest_id=max(cp.walk_top, cp.newest_id),
                oldest_id=min(cp.walk_low, cp.oldest_id or cp.walk_low),
                walk_top=None,
                walk_low=None,
                complete=True,
            )
        elif cp.newest_id is not None or self.phase == "backfill":
            self.cp = self._with(complete=True)
        else:
            self.cp = self._with(complete=True, extra={**cp.extra, "empty": True})
        return self.cp, STOP

    def _on_gap_page(self, ids: list[int], truncated: bool) -> tuple[Checkpoint, Next]:
        assert self._gap is not None
        if not truncated:
            self._gaps.pop(0)
            self.cp = self._with()
        if self._gaps and not truncated:
            self._gap = self._gaps[0]
            return self.cp, self._gap[1] if self._gap[1] is not None else TOP
        if truncated:
            self._gaps.append(self._gaps.pop(0))  # still bad: keep it, try again next run
            self.cp = self._with()
        self._gap = None
        return self.cp, self._start_walk()


# ------------------------------------------------------------------------------------------- spider


def resolve_username(target: str) -> str:
    """A username from ``NAME``, ``@NAME`` or any t.me / telegram.me URL form; raises on invite links."""
    text = target.strip()
    link = normalize(text if ("/" in text or text.startswith("@")) else "@" + text)
    if link is None:
        raise NotFound(f"not a Telegram username or channel link: {target!r}")
    if link.kind is LinkKind.INVITE:
        raise AccessDenied(
            "private channel (invite link): it has no web preview; use the MTProto watcher", url=link.canonical
        )
    if not link.username:
        raise NotFound(f"no channel username in {target!r}")
    return link.username


def _unreachable(failure: Failure) -> bool:
    """The host could not be reached at all (name, connection, timeout): another host may do better."""
    from scrapy import exceptions as sx
    from twisted.internet import error as tx

    return failure.check(
        sx.CannotResolveHostError, sx.DownloadConnectionRefusedError, sx.DownloadTimeoutError,
        tx.DNSLookupError, tx.ConnectError, tx.TimeoutError,
    ) is not None  # fmt: skip


class TmeChannelSpider(scrapy.Spider):
    """One channel's web preview. Arguments: ``username``, ``base_url``, ``mode``, ``checkpoint``, and
    ``fallback_bases``: hosts tried in order when ``base_url`` cannot be reached (``telegram.me`` for
    ``t.me``); the walk goes on on the host that answered."""

    name = "tme_channel"
    custom_settings: dict[str, Any] = {}

    def __init__(
        self,
        username: str,
        base_url: str = "https://t.me",
        mode: CrawlMode | None = None,
        checkpoint: Checkpoint | None = None,
        fallback_bases: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.username = username
        self.base_url = base_url.rstrip("/")
        self.fallback_bases = [b.rstrip("/") for b in fallback_bases or [] if b.rstrip("/") != self.base_url]
        self.hosts_tried: list[str] = [self.base_url]
        self.walker = Walker(stream_name(username), checkpoint, mode or CrawlMode())
        self.header_sent = False
        self.failures: list[TgwatchError] = []
        self.truncated_retries = 2

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> TmeChannelSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.truncated_retries = crawler.settings.getint("TGWATCH_TRUNCATED_RETRIES", 2)
        return spider

    def page_url(self, before: int | None) -> str:
        url = f"{self.base_url}/s/{self.username}"
        return f"{url}?before={before}" if before is not None else url

    def _request(self, nxt: Next) -> Request | None:
        if nxt == STOP:
            return None
        before = None if nxt == TOP else int(nxt)
        return Request(
            self.page_url(before),
            callback=self.parse,
            errback=self.failed,
            dont_filter=True,  # the top page may legitimately be fetched twice in one run
            meta={"before": before},
        )

    async def start(self) -> AsyncIterator[Any]:
        request = self._request(self.walker.start())
        if request is not None:
            yield request

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        fetched_at = utcnow()
        path = urlsplit(response.url).path
        if not path.startswith("/s/"):
            yield self._with_page(self._state_item(response, fetched_at), response, fetched_at)
            return
        page = parse_page(response.text, response.url, fetched_at=fetched_at, username=self.username)
        if page.truncated and response.meta.get("truncated_retries", 0) < self.truncated_retries:
            yield response.request.replace(  # type: ignore[union-attr]
                meta={**response.meta, "truncated_retries": response.meta.get("truncated_retries", 0) + 1},
                dont_filter=True,
            )
            return
        if page.no_posts:
            # a throttled t.me answers "No posts found": not proof of an empty channel; the walk stops
            # here without a checkpoint (nothing below this page is claimed) and the next run reads it
            throttled = PossiblyThrottled(
                "t.me answered 'No posts found' (a possible throttle): not stored as an empty channel, "
                "retried on the next run",
                retry_after=NO_POSTS_RETRY_AFTER,
                url=response.url,
            )
            self.failures.append(throttled)
            records: list[Any] = []
            if page.channel is not None and not self.header_sent:
                records.append(page.channel)
                self.header_sent = True
            item = PageItem(url=response.url, records=records, checkpoint=None, errors=[throttled], kind="error")
            yield self._with_page(item, response, fetched_at)
            return
        if page.kind != "channel" and not page.messages:
            err = BadPage(f"not a channel preview page ({page.kind})", url=response.url)
            self.failures.append(err)
            yield PageItem(url=response.url, records=[], checkpoint=None, errors=[err], kind="error")
            return
        before = response.meta.get("before")
        if isinstance(before, int) and page.ids and min(page.ids) >= before:
            # a page asked for ids below `before` that holds none: following it could loop forever
            err = BadPage(
                f"pagination did not go down: before={before} answered ids {min(page.ids)}..{max(page.ids)}",
                url=response.url,
            )
            self.failures.append(err)
            yield PageItem(url=response.url, records=[], checkpoint=None, errors=[err], kind="error")
            return
        checkpoint, nxt = self.walker.on_page(page.ids, page.before is not None, page.truncated)
        # the next download starts while this page is being stored; the pipeline still stores
        # pages (and saves their checkpoints) strictly in this order
        request = self._request(nxt)
        if request is not None:
            yield request
        yield self._with_page(self._page_item(page, checkpoint), response, fetched_at)

    def _with_page(self, item: PageItem, response: Response, fetched_at: Any) -> PageItem:
        """The whole response goes with the records parsed from it (kept once per page for web
        archives); a page that yields no record is not kept."""
        if item.records:
            item.page = web_page(response, self.username, fetched_at)
        return item

    def _page_item(self, page: ChannelPage, checkpoint: Checkpoint) -> PageItem:
        records: list[Any] = []
        if page.channel is not None and not self.header_sent:
            records.append(page.channel)
            self.header_sent = True
        records.extend(page.messages)
        return PageItem(
            url=page.url,
            records=records,
            checkpoint=checkpoint,
            errors=[p.to_error() for p in page.problems],
            media_refs=page.media_count,
            undated=page.undated_count,
        )

    def _state_item(self, response: Response, fetched_at: Any) -> PageItem:
        """``/s/NAME`` redirected away: no web preview, or no such username."""
        profile = parse_profile(response.text, response.url)
        kind = profile.type.value if profile.type is not EntityType.UNKNOWN else None
        if profile.state is PageState.NOT_FOUND:
            state, reason = ChannelState.NOT_FOUND, f"@{self.username} does not exist (t.me shows no such username)"
        elif profile.state is PageState.BLOCKED:
            state, reason = ChannelState.BANNED, profile.blocked_notice or f"t.me shows @{self.username} as blocked"
        elif profile.state is PageState.VALID and profile.type in (EntityType.USER, EntityType.BOT):
            state, reason = ChannelState.INVALID, f"@{self.username} is a {profile.type.value}, not a channel"
        elif profile.state is PageState.VALID and profile.is_private:
            state, reason = ChannelState.PRIVATE, f"t.me/{self.username} says the channel is private"
        elif profile.state is PageState.VALID and _SENSITIVE.search(response.text):
            state = ChannelState.NO_PREVIEW
            reason = f"t.me/s/{self.username} redirects to {response.url}: t.me withholds sensitive content"
        elif profile.state is PageState.VALID:
            state = ChannelState.NO_PREVIEW
            reason = f"t.me/s/{self.username} redirects to {response.url}: the owner disabled the web preview"
        else:
            state, reason = (
                ChannelState.INVALID,
                "redirected to a page that is not a t.me preview: " + "; ".join(profile.problems),
            )
        channel = Channel(
            ref=ChannelRef(username=self.username),
            source=Source.WEB,
            seen_at=fetched_at,
            title=profile.title,
            description=profile.description,
            avatar_url=profile.avatar_url,
            verified=profile.verified,
            kind=kind,
            counters=Counters(
                subscribers=profile.subscribers,
                members=profile.members,
                online=profile.online,
                monthly_users=profile.monthly_users,
            ),
            state=state,
            state_reason=reason,
            raw=RawCapture.of("html", response.text, url=response.url, fetched_at=fetched_at),
        )
        return PageItem(url=response.url, records=[channel], checkpoint=None, kind="state")

    def failed(self, failure: Failure) -> Iterator[Any]:
        """A page we could not get even after retries: record why; the walk cannot go on without it."""
        request = failure.request  # type: ignore[attr-defined]
        url = request.url
        err = map_failure(failure)
        if self.fallback_bases and not isinstance(err, EgressDenied) and _unreachable(failure):
            failed_base, self.base_url = self.base_url, self.fallback_bases.pop(0)
            self.hosts_tried.append(self.base_url)
            log.warning("web preview host unreachable, trying the next", failed=failed_base, next=self.base_url)
            moved = self.base_url + url[len(failed_base) :] if url.startswith(failed_base) else None
            yield request.replace(url=moved or self.page_url(request.meta.get("before")), dont_filter=True)
            return
        self.failures.append(err)
        if isinstance(err, NotFound) and request.meta.get("before") is None:
            channel = Channel(
                ref=ChannelRef(username=self.username),
                source=Source.WEB,
                seen_at=utcnow(),
                state=ChannelState.NOT_FOUND,
                state_reason=f"{url} answered 404",
            )
            yield PageItem(url=url, records=[channel], checkpoint=None, errors=[err], kind="state")
            return
        yield PageItem(url=url, records=[], checkpoint=None, errors=[err], kind="error")

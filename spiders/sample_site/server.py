"""The aiohttp server of the sample site, with faults a test can switch on per path.

Routes (t.me's shapes, served on loopback)::

    /                       index of the sample usernames (for people; t.me has no such page)
    /s/NAME                 newest page of the web preview; ?before=ID older, ?after=ID newer
                            NAME without preview, private, blocked or unknown → 302 to /NAME
    /NAME                   profile page (or the "Contact @NAME" form for an unknown username;
                            the block notice for a blocked channel)
    /NAME/ID                single post widget ("Post not found" widget for a missing id); the
                            profile page for a channel without preview (private, blocked)
    /media/file/ID.EXT      media bytes (jpg, png, webp, mp4, ogg, tgs)
    /media/thumb/ID.jpg     poster picture of a video
    /img/emoji/40/HEX.png   emoji images referenced by message text
    /directory/…, /blog/…   the synthetic aggregator (``aggregator.py``); /+HASH, /joinchat/HASH invites

Faults (``site.faults``) match a request by ``fnmatch`` pattern, against the path alone or, when
the pattern holds a ``?``-query part, against path plus query; the first rule with uses left wins
and spends one use. Every request is recorded in ``site.hits`` with its status and fault.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import fnmatch
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from aiohttp import web

from spiders.sample_site import aggregator, render
from spiders.sample_site import media as media_mod
from spiders.sample_site.content import Media, World, build_world


class FaultKind(StrEnum):
    RATE_LIMIT = "rate_limit"  # 429 with Retry-After
    SERVER_ERROR = "server_error"  # 5xx
    SLOW = "slow"  # wait, then answer normally
    TRUNCATE = "truncate"  # 200 with the HTML cut in the middle of a message (consistent length)
    CUT = "cut"  # headers promise the full body, half is sent, then the connection closes
    DROP = "drop"  # connection closed before any response


@dataclass
class Fault:
    pattern: str
    kind: FaultKind
    times: int | None = 1  # None: forever
    retry_after: int = 1
    status: int = 503
    delay: float = 0.0
    used: int = 0

    def matches(self, path: str, path_qs: str) -> bool:
        target = path_qs if "?" in self.pattern else path
        return fnmatch.fnmatchcase(target, self.pattern)

    @property
    def spent(self) -> bool:
        return self.times is not None and self.used >= self.times


@dataclass
class Faults:
    """Per-path misbehaviour, switched on by tests (and by ``--fault`` on the command line)."""

    rules: list[Fault] = field(default_factory=list)

    def add(self, fault: Fault) -> Fault:
        self.rules.append(fault)
        return fault

    def rate_limit(self, pattern: str, times: int | None = 1, retry_after: int = 1) -> Fault:
        return self.add(Fault(pattern, FaultKind.RATE_LIMIT, times, retry_after=retry_after))

    def server_error(self, pattern: str, times: int | None = 1, status: int = 503) -> Fault:
        return self.add(Fault(pattern, FaultKind.SERVER_ERROR, times, status=status))

    def slow(self, pattern: str, seconds: float, times: int | None = None) -> Fault:
        return self.add(Fault(pattern, FaultKind.SLOW, times, delay=seconds))

    def truncate(self, pattern: str, times: int | None = 1) -> Fault:
        return self.add(Fault(pattern, FaultKind.TRUNCATE, times))

    def cut(self, pattern: str, times: int | None = 1) -> Fault:
        return self.add(Fault(pattern, FaultKind.CUT, times))

    def drop(self, pattern: str, times: int | None = 1) -> Fault:
        return self.add(Fault(pattern, FaultKind.DROP, times))

    def clear(self) -> None:
        self.rules.clear()

    def take(self, path: str, path_qs: str) -> Fault | None:
        for rule in self.rules:
            if not rule.spent and rule.matches(path, path_qs):
                rule.used += 1
                return rule
        return None


@dataclass(frozen=True)
class Hit:
    path_qs: str
    status: int  # 0 when the connection was dropped
    fault: FaultKind | None
    at: float  # time.monotonic()


_WRAP = re.compile(r'<div class="tgme_widget_message_wrap[ "]')


def truncate_html(body: str) -> str:
    """Cut a page in the middle of its middle message (or in the middle of the page if it has none)."""
    starts = [m.start() for m in _WRAP.finditer(body)]
    if not starts:
        return body[: len(body) // 2]
    k = len(starts) // 2
    end = starts[k + 1] if k + 1 < len(starts) else body.find("</section>", starts[k])
    if end < 0:
        end = len(body)
    return body[: starts[k] + (end - starts[k]) // 2]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SITE_KEY: web.AppKey[SampleSite] = web.AppKey("sample_site")


class SampleSite:
    """The served world plus its faults and request log; ``world`` may be swapped between crawls."""

    def __init__(self, world: World | None = None, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.hits: list[Hit] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.set_world(world or build_world())

    def set_world(self, world: World) -> None:
        """Serve another world (e.g. generation 2) from now on, on the same address."""
        self.world = world
        self._media: dict[str, Media] = world.media_index()

    def url(self, path: str) -> str:
        return self.base_url + path

    def hits_for(self, path_qs: str) -> list[Hit]:
        return [h for h in self.hits if h.path_qs == path_qs]

    def hits_for_prefix(self, prefix: str) -> list[Hit]:
        return [h for h in self.hits if h.path_qs.startswith(prefix)]

    # -- app ------------------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._fault_middleware])
        app[SITE_KEY] = self
        app.router.add_get("/", self._index)
        app.router.add_get("/s/{name}", self._preview)
        app.router.add_get("/media/{variant}/{file}", self._media_file)
        app.router.add_get("/img/emoji/40/{code}.png", self._emoji)
        aggregator.add_routes(app, _html)  # /directory/…, /blog/…, /+HASH, /joinchat/HASH
        app.router.add_get("/{name}", self._profile)
        app.router.add_get("/{name}/{post}", self._post)
        return app

    @classmethod
    @contextlib.asynccontextmanager
    async def serve(
        cls, world: World | None = None, host: str = "127.0.0.1", port: int = 0, faults: Faults | None = None
    ) -> AsyncIterator[SampleSite]:
        """Serve on ``host:port`` (0 picks a free port) for the ``async with`` block."""
        site = cls(world, faults)
        await site.start(host, port)
        try:
            yield site
        finally:
            await site.stop()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.base_url = f"http://{bound_host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- faults ---------------------------------------------------------------------------------
    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = self.faults.take(request.path, request.path_qs)
        kind = fault.kind if fault else None
        if fault is None or fault.kind is FaultKind.SLOW:
            if fault is not None:
                await asyncio.sleep(fault.delay)
            response = await self._answer(request, handler, kind)
        elif fault.kind is FaultKind.RATE_LIMIT:
            response = web.Response(
                status=429, text="Too Many Requests", headers={"Retry-After": str(fault.retry_after)}
            )
        elif fault.kind is FaultKind.SERVER_ERROR:
            response = web.Response(status=fault.status, text=f"sample site: injected {fault.status}")
        elif fault.kind is FaultKind.DROP:
            self._record(request, 0, kind)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # aiohttp treats this as a client gone: nothing is written
        else:
            full = await self._answer(request, handler, kind)
            body = full.body if isinstance(full, web.Response) else None
            raw = body if isinstance(body, bytes) else b""
            if fault.kind is FaultKind.TRUNCATE:
                cut = truncate_html(raw.decode()).encode() if full.content_type == "text/html" else raw[: len(raw) // 2]
                response = web.Response(
                    status=full.status, body=cut, content_type=full.content_type, charset=full.charset
                )
            else:  # CUT: promise everything, send half, hang up
                stream = web.StreamResponse(status=full.status, headers={"Content-Type": full.headers["Content-Type"]})
                stream.content_length = len(raw)
                await stream.prepare(request)
                await stream.write(raw[: len(raw) // 2])
                self._record(request, full.status, kind)
                if request.transport is not None:
                    request.transport.close()
                return stream
        self._record(request, response.status, kind)
        return response

    async def _answer(self, request: web.Request, handler: Handler, kind: FaultKind | None) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:  # redirects and 404s are answers too: log them, let aiohttp send them
            self._record(request, exc.status, kind)
            raise

    def _record(self, request: web.Request, status: int, kind: FaultKind | None) -> None:
        self.hits.append(Hit(request.path_qs, status, kind, time.monotonic()))

    # -- handlers -------------------------------------------------------------------------------
    @staticmethod
    def _base(request: web.Request) -> str:
        return str(request.url.origin())

    async def _index(self, request: web.Request) -> web.Response:
        return _html(render.render_index(self.world, self._base(request)))

    async def _preview(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        ch = self.world.channel(name)
        if ch is None or not ch.has_preview:
            raise web.HTTPFound(f"/{name}")
        before, after = _int_arg(request, "before"), _int_arg(request, "after")
        size = self.world.page_size
        msgs = ch.messages  # ascending by id: a page is a slice found by bisection
        if before is not None:
            end = bisect.bisect_left(ch.ids, before)
            page = list(msgs[max(0, end - size) : end])
        elif after is not None:
            start = bisect.bisect_right(ch.ids, after)
            page = list(msgs[start : start + size])
        else:
            page = list(msgs[-size:])
        older = page and msgs[0].id < page[0].id
        newer = page and msgs[-1].id > page[-1].id
        html = render.render_channel_page(
            self.world,
            ch,
            page,
            self._base(request),
            before=page[0].id if older else None,
            after=page[-1].id if newer else None,
        )
        return _html(html)

    async def _profile(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        ch = self.world.channel(name)
        if ch is None:
            room = aggregator.room_page(name, self._base(request))  # groups and bots the aggregator lists
            return _html(room if room is not None else render.render_not_found(name))
        return _html(render.render_profile(ch, self._base(request)))

    async def _post(self, request: web.Request) -> web.Response:
        name, post = request.match_info["name"], request.match_info["post"]
        ch = self.world.channel(name)
        if ch is None or not post.isdigit():
            raise web.HTTPNotFound()
        if not ch.has_preview:
            return _html(render.render_profile(ch, self._base(request)))
        msg = ch.message(int(post))
        return _html(render.render_post_page(self.world, ch, msg, int(post), self._base(request)))

    async def _media_file(self, request: web.Request) -> web.Response:
        variant, file = request.match_info["variant"], request.match_info["file"]
        media_id, _, ext = file.rpartition(".")
        item = self._media.get(media_id)
        if item is None:
            raise web.HTTPNotFound()
        try:
            data = await asyncio.to_thread(media_mod.media_bytes, item, variant, ext)
        except KeyError:
            raise web.HTTPNotFound() from None
        return web.Response(body=data, content_type=media_mod.CONTENT_TYPES[ext])

    async def _emoji(self, request: web.Request) -> web.Response:
        code = request.match_info["code"]
        if not re.fullmatch(r"[0-9A-F]{2,32}", code):
            raise web.HTTPNotFound()
        return web.Response(body=media_mod.emoji_png(code), content_type="image/png")


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html", charset="utf-8")


def _int_arg(request: web.Request, key: str) -> int | None:
    value = request.query.get(key, "")
    return int(value) if value.isdigit() else None

"""From a post to staff being told: end-to-end latency of the notification path (issue 18, item 7).

Every figure is a wall-clock time from the moment a post appears on the platform to the moment a
local webhook receiver has a notification for it in hand, signature checked (``verify``). Each post
carries a different synthetic picture; every picture is on a hash list (PDQ, imported with
``tgwatch hashes import``), and one rule (``tgwatch notify add --webhook``) sends hash matches.

(a) live, MTProto: the fake Telegram posts to a watched channel; the live watcher
    (``telegram_watch.live.Watcher``, exactly what ``tgwatch watch`` runs: the real Telethon client,
    the account pool with its pacing, the ingest door with the MTProto media stage — download, hash
    pool, match, alert) runs in this process because the fake Telegram lives in memory; the
    notification dispatcher is a separate ``tgwatch notify deliver`` process, as a deployment runs
    ``tgwatch watch`` beside ``tgwatch serve``/``run`` (it finds alerts of other processes by polling
    the outbox every ``notify.poll_seconds``). Goal p95 < 5 s.
(b) web: the sample site publishes a post on a channel that ``tgwatch run`` crawls every 10 s
    (``tgwatch targets add … --every 10s``; the scheduler, its in-process worker, the Scrapy crawl,
    the media stage and the dispatcher are that one process). Posts are published at random moments
    spread over several schedule periods, several per period, so the wait for the next crawl is
    sampled over the whole period. Goal p95 < 15 s.

(c) alert → draft ready: in (a)'s run the list's policy is ``draft`` (``hashes import --takedown
    draft``); the policy stage drafts a request in the same ingest batch. Goal p95 < 2 s.
(d) post → request sent by SMTP: in (b)'s run the list is ``--takedown auto --trusted`` and the
    takedown e-mail sender points at a local aiosmtpd server; the figure ends when the server has
    accepted the report's DATA. Goal p95 < 20 s.
(c) and (d) are left out (and said so) in a tree without takedown policies, or with ``--no-policies``.
Each part also prints where its time went (stages, p50/p95); ``LATENCY_DEBUG=1`` prints every crawl
run and post of (b).

The rate limit of a sink (``notify.rate_limit``, default 20 messages a minute, beyond which alerts
wait for the window and go out as one digest) is raised to 1,000 here: this measures how fast one
alert travels, not the flood guard meant for people's inboxes. Run:
``python bench/latency.py [--posts 50] [--only live web]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import hashlib
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web

from bench._table import Row, print_table
from crawler.notify.sinks.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

HOOK_SECRET_ENV = "TGWATCH_BENCH_HOOK_SECRET"
HOOK_SECRET = "latency-bench-" + os.urandom(8).hex()
LIST = "latency-list"
SEOUL_SECONDS = 6 * 60.0  # Seoul's 2025 system: ~6 minutes from detection to a drafted request
#: Meta's PDQ quality floor (``MatchRules.pdq_quality_floor``): a flatter picture is never a query
QUALITY_FLOOR = 50


# --- the webhook receiver: its own thread and loop, so the stamps do not wait for the bench's work --


@dataclass
class Receipt:
    at: float
    payload: dict[str, Any]


@dataclass
class Receiver:
    """A local webhook endpoint: checks the signature as a receiver must, stamps each arrival."""

    secret: bytes
    receipts: list[Receipt] = field(default_factory=list)
    rejected: int = 0
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stop: asyncio.Event | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        ok = verify(
            self.secret, request.headers.get(TIMESTAMP_HEADER, ""), body, request.headers.get(SIGNATURE_HEADER, ""),
            now=now,
        )  # fmt: skip
        with self._lock:
            if not ok:
                self.rejected += 1
                return web.Response(status=401)
            self.receipts.append(Receipt(now, json.loads(body)))
        return web.Response(status=204)

    def snapshot(self) -> list[Receipt]:
        with self._lock:
            return list(self.receipts)

    def start(self) -> None:
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/hook", self.handle)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            self.url = f"http://{host}:{port}/hook"
            self._stop = asyncio.Event()
            ready.set()
            await self._stop.wait()
            await runner.cleanup()

        def main() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.close()

        self._thread = threading.Thread(target=main, name="webhook-receiver", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("webhook receiver did not start")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)


@contextlib.contextmanager
def receiver() -> Any:
    r = Receiver(HOOK_SECRET.encode())
    r.start()
    try:
        yield r
    finally:
        r.stop()


# --- the platform's abuse mailbox: a local SMTP server (aiosmtpd runs it in its own thread) ----------


@dataclass
class Mailbox:
    """Stamps each message when its DATA is accepted: the moment the request has reached the platform."""

    mails: list[tuple[float, bytes]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.mails.append((time.time(), bytes(envelope.original_content or envelope.content or b"")))
        return "250 2.0.0 queued"

    def snapshot(self) -> list[tuple[float, bytes]]:
        with self._lock:
            return list(self.mails)


@contextlib.contextmanager
def smtp_server() -> Any:
    from aiosmtpd.controller import Controller

    from crawler.demo_alerts import smtp_server as serve_mail

    with serve_mail(Controller, Mailbox()) as running:
        yield running


def policies_here() -> bool:
    """Whether this tree has takedown policies and senders (issue 18 items 3-4)."""
    try:
        import crawler.takedowns.autodraft
        import crawler.takedowns.senders.email  # noqa: F401
    except ImportError:
        return False
    return True


# --- tgwatch as the operator runs it ---------------------------------------------------------------


def base_env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(
        TGWATCH_DATA_DIR=str(data),
        TGWATCH_LOG_LEVEL="WARNING",
        TGWATCH_HTTP__ALLOW_PRIVATE_HOSTS='["127.0.0.1"]',
        TGWATCH_NOTIFY__RATE_LIMIT="1000",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
        **{HOOK_SECRET_ENV: HOOK_SECRET},
        **extra,
    )
    return env


def tgwatch(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "crawler", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"tgwatch {' '.join(args[:2])} failed: {done.stderr[-2000:]}")
    return done.stdout


def spawn(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "crawler", *args], env=env, stdout=out, stderr=out)


def stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def import_list(env: dict[str, str], tmp: Path, pdqs: list[str], *policy: str) -> None:
    path = tmp / "list.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["signal_type", "signal", "label"])
        for i, pdq in enumerate(pdqs):
            w.writerow(["pdq", pdq, f"latency bench picture {i}"])
    tgwatch(env, "hashes", "import", str(path), "--list", LIST, *policy)


def add_rule(env: dict[str, str], url: str) -> None:
    tgwatch(env, "notify", "add", "bench-hook", "--webhook", url, "--secret-env", HOOK_SECRET_ENV,
            "--on", "hash_match", "--lang", "en")  # fmt: skip


@contextlib.asynccontextmanager
async def held_store(data: Path) -> AsyncIterator[Any]:
    """This process's own connection: it keeps the embedded server up between CLI commands, and
    lets the bench look at runs and alerts."""
    import config
    from storage.client import open_store

    settings = config.load(data_dir=data, log_level="WARNING")
    async with open_store(settings) as store:
        yield store


async def wait_until(predicate: Callable[[], Any], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return True
        await asyncio.sleep(step)
    return False


# --- figures ---------------------------------------------------------------------------------------


@dataclass
class Part:
    name: str
    goal_p95: float
    #: what arrives at the end of the path (the first row of the table)
    arrived: str = "notifications received"
    posted: dict[str, float] = field(default_factory=dict)  # post key → publish time
    received: dict[str, float] = field(default_factory=dict)  # post key → first receipt time
    notes: list[str] = field(default_factory=list)
    #: where the time went: stage → seconds per post (median and p95 printed)
    stages: dict[str, list[float]] = field(default_factory=dict)

    def latencies(self) -> list[float]:
        return sorted(self.received[k] - t for k, t in self.posted.items() if k in self.received)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p95 of 50 values is the 48th smallest)."""
    if not values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(values)))
    return sorted(values)[rank - 1]


def rows_for(part: Part) -> list[Row]:
    lat = part.latencies()
    n, got = len(part.posted), len(lat)
    goal = f"< {part.goal_p95:g} s"
    if not lat:
        return [Row(f"{part.name}: {part.arrived}", "posts", f"0/{n}", goal="all")]
    p95 = percentile(lat, 95)
    return [
        Row(f"{part.name}: {part.arrived}", "posts", f"{got}/{n}", goal="all"),
        Row(f"{part.name}: p50", "s", round(percentile(lat, 50), 2)),
        Row(f"{part.name}: p95", "s", round(p95, 2), f"~{SEOUL_SECONDS:.0f} (Seoul)", goal),
        Row(f"{part.name}: Seoul's ~6 min ÷ p95", "×", f"{SEOUL_SECONDS / p95:.0f}×"),
        Row(f"{part.name}: min / mean / max", "s", f"{lat[0]:.2f} / {statistics.fmean(lat):.2f} / {lat[-1]:.2f}"),
        Row(f"{part.name}: goal", "", "met" if got == n and p95 < part.goal_p95 else "NOT met", goal=goal),
        *(
            Row(f"  {stage}: p50 / p95", "s", f"{percentile(v, 50):.2f} / {percentile(v, 95):.2f}")
            for stage, v in part.stages.items()
            if v
        ),
    ]


def note_receipts(part: Part, receipts: list[Receipt], key_of: Callable[[dict[str, Any]], str | None]) -> None:
    for r in receipts:
        for alert in r.payload.get("alerts") or []:
            key = key_of(alert)
            if key is not None and key in part.posted and key not in part.received:
                part.received[key] = r.at


# --- (b) the web path ------------------------------------------------------------------------------


async def web_part(posts: int, every: float, window_periods: int, seed: int, auto: bool) -> list[Part]:
    """(b), and with ``auto`` (d): the list is a trusted ``auto`` list and the takedown e-mail sender
    points at a local SMTP server, so each post is also reported to the platform."""
    from crawler.hashing.images import hash_image
    from spiders.sample_site import SampleSite, build_world
    from spiders.sample_site.publish import empty_channel, photo_bytes, with_channel, with_photo_post

    part = Part(f"(b) web, every {every:g} s", 15.0)
    sent = Part("(d) post → request sent by SMTP (auto list)", 20.0, "e-mails received")
    channel = "latency_feed"
    rng = random.Random(seed)
    seeds: list[str] = []
    pdqs: list[str] = []
    n = 0
    while len(seeds) < posts:  # a flat picture's PDQ (quality < 50) is never a query: skip those
        n += 1
        pdq = hash_image(photo_bytes(f"latency-web-{seed}-{n}")).pdq
        if pdq is not None and pdq.quality >= QUALITY_FLOOR:
            seeds.append(f"latency-web-{seed}-{n}")
            pdqs.append(pdq.hash)
    world = with_channel(build_world(big_size=20), empty_channel(channel, "Latency feed"))
    world, _ = with_photo_post(world, channel, "warm-up post, not listed", f"latency-web-{seed}-warmup")
    with tempfile.TemporaryDirectory(prefix="tgwatch-bench-latency-web-") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data"
        async with SampleSite.serve(world) as site, held_store(data) as store:
            env = base_env(data, TGWATCH_TELEGRAM_WEB_BASE=site.base_url)
            with receiver() as hook, contextlib.ExitStack() as stack:
                policy: tuple[str, ...] = ()
                mailbox: Mailbox | None = None
                if auto:
                    mailbox, port = stack.enter_context(smtp_server())
                    env.update(
                        TGWATCH_TAKEDOWNS__REPORTER_CONTACT="reports@example.org",
                        TGWATCH_TAKEDOWNS__SENDERS__EMAIL__ENABLED="true",
                        TGWATCH_TAKEDOWNS__SENDERS__EMAIL__HOST="127.0.0.1",
                        TGWATCH_TAKEDOWNS__SENDERS__EMAIL__PORT=str(port),
                        TGWATCH_TAKEDOWNS__SENDERS__EMAIL__SECURITY="none",
                    )
                    policy = ("--takedown", "auto", "--trusted")
                await asyncio.to_thread(import_list, env, tmp, pdqs, *policy)
                await asyncio.to_thread(add_rule, env, hook.url)
                await asyncio.to_thread(
                    tgwatch, env, "targets", "add", channel, "--method", "web", "--every", f"{every:g}s"
                )
                daemon = spawn(env, tmp / "run.log", "run")
                try:
                    # the channel's first crawl (the warm-up post) is done: the scheduler is in its rhythm
                    # (not just any run: the takedown re-check job also records runs)
                    async def crawled_once() -> bool:
                        runs = await store["runs"].find({"status": "ok"}, {"target": 1}).to_list(None)
                        return any(str(r.get("target", "")).endswith(f"/{channel}") for r in runs)

                    first = await wait_until(crawled_once, 120)
                    if not first:
                        raise RuntimeError(
                            "tgwatch run never finished a crawl: " + (tmp / "run.log").read_text()[-2000:]
                        )
                    span = window_periods * every
                    offsets = sorted(rng.uniform(0, span) for _ in range(posts))
                    start = time.time() + 0.5
                    for i, offset in enumerate(offsets):
                        await asyncio.sleep(max(0.0, start + offset - time.time()))
                        site.set_world(with_photo_post(site.world, channel, f"post {i}", seeds[i])[0])
                        msg_id = site.world.channel(channel).messages[-1].id  # type: ignore[union-attr]
                        part.posted[f"{channel}/{msg_id}"] = time.time()
                    prefix = f"{site.base_url}/"

                    def key_of(alert: dict[str, Any]) -> str | None:
                        link = alert.get("message_link") or ""
                        return link[len(prefix) :] if link.startswith(prefix) else None

                    sent.posted = dict(part.posted)

                    def all_in() -> bool:
                        note_receipts(part, hook.snapshot(), key_of)
                        if mailbox is not None:
                            note_mails(sent, mailbox.snapshot(), channel)
                            if len(sent.received) < len(sent.posted):
                                return False
                        return len(part.received) == len(part.posted)

                    await wait_until(all_in, 60 + 2 * every)
                finally:
                    await asyncio.to_thread(stop, daemon)
                note_receipts(part, hook.snapshot(), key_of)
                if hook.rejected:
                    part.notes.append(f"{hook.rejected} webhook requests failed the signature check")
                await web_stages(part, store, channel)
                if mailbox is not None:
                    note_mails(sent, mailbox.snapshot(), channel)
                    await sent_stages(sent, store, channel)
                runs = await store["runs"].count_documents({})
                part.notes.append(
                    f"{posts} posts published over {window_periods} schedule periods ({span:g} s); {runs} crawl runs"
                )
    return [part, sent] if auto else [part]


def note_mails(part: Part, mails: list[tuple[float, bytes]], channel: str) -> None:
    """Which post each report e-mail is about: the message link in its body."""
    import email
    import email.policy
    import re

    pattern = re.compile(rf"/{re.escape(channel)}/(\d+)")
    for at, raw in mails:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body()  # type: ignore[attr-defined]
        text = body.get_content() if body is not None else raw.decode("utf-8", "replace")
        for found in pattern.finditer(text):
            key = f"{channel}/{found.group(1)}"
            if key in part.posted and key not in part.received:
                part.received[key] = at


async def request_times(store: Any) -> dict[str, tuple[float, dict[str, Any]]]:
    """Alert key → (request created at, request) for the requests a policy drafted."""
    out = {}
    async for doc in store["takedowns"].find({"policy": {"$ne": None}}):
        for key in doc.get("alerts") or []:
            out[str(key)] = (float(doc["created_ts"]), doc)
    return out


async def sent_stages(part: Part, store: Any, channel: str) -> None:
    """Split (d): post → alert (crawl), alert → request drafted (policy stage), drafted → SMTP accepted."""
    alerts = await alert_times(store)
    requests = await request_times(store)
    stages: dict[str, list[float]] = {
        "publish → alert raised (schedule wait + crawl)": [],
        "alert raised → request drafted (policy stage)": [],
        "request drafted → e-mail accepted by SMTP (render, send)": [],
    }
    names = list(stages)
    for key, (raised, alert) in alerts.items():
        post = str((alert.get("details") or {}).get("message") or "")
        if post not in part.received or key not in requests:
            continue
        created = requests[key][0]
        stages[names[0]].append(raised - part.posted[post])
        stages[names[1]].append(created - raised)
        stages[names[2]].append(part.received[post] - created)
    part.stages.update(stages)
    statuses: dict[str, int] = {}
    for _, doc in requests.values():
        statuses[str(doc.get("status"))] = statuses.get(str(doc.get("status")), 0) + 1
    part.notes.append(f"requests by status: {statuses}; e-mails received {len(part.received)}")


def _ts(value: Any) -> float:
    from datetime import UTC, datetime

    assert isinstance(value, datetime)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


async def alert_times(store: Any) -> dict[str, tuple[float, dict[str, Any]]]:
    """Alert key → (raised at, alert)."""
    return {str(a["_id"]): (_ts(a["raised_at"]), a) async for a in store["alerts"].find({})}


async def web_stages(part: Part, store: Any, channel: str) -> None:
    """Split each post's time: waiting for its crawl, the crawl to the alert, the alert to the hook."""
    runs = [r async for r in store["runs"].find({"status": {"$ne": "running"}})]
    spans = sorted((_ts(r["started_at"]), _ts(r["finished_at"]), r.get("due")) for r in runs if r.get("finished_at"))
    stages: dict[str, list[float]] = {
        "publish → start of the crawl that found it": [],
        "  of which due time → crawl start (scheduler, task offset, worker poll)": [],
        "crawl start → alert raised (fetch page, media, hash, match)": [],
        "alert raised → webhook received (dispatch)": [],
    }
    names = list(stages)
    if os.environ.get("LATENCY_DEBUG"):
        t0 = min(part.posted.values())
        for s, f, d in spans:
            due = (d - t0) if isinstance(d, int | float) else math.nan
            print(f"run due {due:+.2f} start {s - t0:+.2f} end {f - t0:+.2f}")
        for k, t in sorted(part.posted.items(), key=lambda kv: kv[1]):
            print(f"post {k} at {t - t0:+.2f} received {part.received.get(k, math.nan) - t0:+.2f}")
    for raised, alert in (await alert_times(store)).values():
        key = str((alert.get("details") or {}).get("message") or "")
        if key not in part.posted or key not in part.received:
            continue
        span = next(((s, f, d) for s, f, d in spans if s <= raised <= f + 0.001), None)
        if span is not None:
            stages[names[0]].append(span[0] - part.posted[key])
            if isinstance(span[2], int | float):
                stages[names[1]].append(span[0] - span[2])
            stages[names[2]].append(raised - span[0])
        stages[names[3]].append(part.received[key] - raised)
    part.stages.update(stages)


async def explain_missing(part: Part, store: Any, sha_of: dict[str, str]) -> None:
    """For a post whose notification never came: how far it got (stored media, alert, delivery)."""
    for key in sorted(set(part.posted) - set(part.received)):
        sha = sha_of.get(key, "")
        media = await store["media"].find_one({"_id": sha})
        alerts = [a async for a in store["alerts"].find({"sha256": sha})]
        wanted = {"payload.alert": {"$in": [a["_id"] for a in alerts]}}
        deliveries = [d async for d in store["notify_deliveries"].find(wanted)]
        part.notes.append(
            f"not received: {key} (media stored {media is not None}, matched {bool(media and media.get('matched'))}, "
            f"alerts {len(alerts)}, deliveries {[(d.get('state'), d.get('errors')) for d in deliveries]})"
        )


# --- (a) the live MTProto path ---------------------------------------------------------------------


async def live_part(posts: int, gap: tuple[float, float], seed: int, draft: bool) -> list[Part]:
    """(a), and with ``draft`` (c): the list's policy is ``draft``, so each alert drafts a request
    for the review queue in the same ingest batch (the policy stage)."""
    import config
    from crawler.hashing import synthetic
    from crawler.hashing.images import hash_image
    from crawler.pipeline import open_pipeline
    from foundation.models import Source
    from storage.client import open_store
    from telegram_watch.accounts import Account
    from telegram_watch.client import fake_client_factory
    from telegram_watch.entities import Target
    from telegram_watch.fake.world import FakeTelegram
    from telegram_watch.live import Watcher
    from telegram_watch.media import MediaFetcher
    from telegram_watch.pool import AccountPool

    part = Part("(a) live, MTProto", 5.0)
    rng = random.Random(seed)
    pictures: list[bytes] = []
    pdqs: list[str] = []
    n = 0
    while len(pictures) < posts:  # a flat picture's PDQ (quality < 50) is never a query: skip those
        n += 1
        data_ = synthetic.encode(synthetic.scene(10_000 + seed * 1000 + n), "JPEG", quality=85)
        pdq = hash_image(data_).pdq
        if pdq is not None and pdq.quality >= QUALITY_FLOOR:
            pictures.append(data_)
            pdqs.append(pdq.hash)
    sha_to_key = {hashlib.sha256(p).hexdigest(): f"post{i}" for i, p in enumerate(pictures)}
    world = FakeTelegram(seed=f"latency-{seed}")
    channel = world.add_channel("Live feed", username="live_feed")
    world.fill_history(channel, 5)
    account = world.add_account("watcher")
    world.join(account, channel)
    with tempfile.TemporaryDirectory(prefix="tgwatch-bench-latency-live-") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data"
        env = base_env(data)
        settings = config.load(
            data_dir=data, log_level="WARNING", http={"allow_private_hosts": ["127.0.0.1"]},
            notify={"rate_limit": 1000},
        )  # fmt: skip
        async with open_store(settings) as store:
            with receiver() as hook:
                policy = ("--takedown", "draft") if draft else ()
                await asyncio.to_thread(import_list, env, tmp, pdqs, *policy)
                await asyncio.to_thread(add_rule, env, hook.url)
                dispatcher = spawn(env, tmp / "deliver.log", "notify", "deliver")
                pool = AccountPool(
                    [Account(name="watcher", session=world.session_string(account))], fake_client_factory(world),
                    pacing=settings.telegram.request_pacing_seconds,
                )  # fmt: skip
                try:
                    fetcher = MediaFetcher(pool, max_bytes=settings.limits.max_media_bytes)
                    async with open_pipeline(store, settings, fetchers={Source.MTPROTO: fetcher}) as ingest:
                        watcher = Watcher(pool, ingest, [Target.parse("live_feed")])
                        stop_watch = asyncio.Event()
                        watching = asyncio.create_task(watcher.run(stop_watch))
                        await wait_until(lambda: watcher.counts["catch_ups"] >= 1 and not watcher._running, 60)
                        for i, picture in enumerate(pictures):
                            await asyncio.sleep(rng.uniform(*gap))
                            part.posted[f"post{i}"] = time.time()
                            world.post(channel, f"live post {i}", media=world.photo(picture, 640, 480))

                        def key_of(alert: dict[str, Any]) -> str | None:
                            return sha_to_key.get(str(alert.get("key", "")).rsplit("/", 1)[-1])

                        def all_in() -> bool:
                            note_receipts(part, hook.snapshot(), key_of)
                            return len(part.received) == len(part.posted)

                        await wait_until(all_in, 60)
                        stop_watch.set()
                        await asyncio.wait_for(watching, 60)
                finally:
                    await pool.close()
                    await asyncio.to_thread(stop, dispatcher)
                note_receipts(part, hook.snapshot(), key_of)
                if hook.rejected:
                    part.notes.append(f"{hook.rejected} webhook requests failed the signature check")
                to_alert, to_hook = [], []
                for raised, alert in (await alert_times(store)).values():
                    key = sha_to_key.get(str(alert.get("sha256")))
                    if key in part.posted and key in part.received:
                        to_alert.append(raised - part.posted[key])
                        to_hook.append(part.received[key] - raised)
                await explain_missing(part, store, {v: k for k, v in sha_to_key.items()})
                part.stages["post → alert raised (update, catch-up, download, hash, match)"] = to_alert
                part.stages["alert raised → webhook received (other process: outbox poll, send)"] = to_hook
                part.notes.append(
                    f"{posts} posts {gap[0]:g}-{gap[1]:g} s apart; catch-ups {watcher.counts['catch_ups']}, "
                    f"account pacing {settings.telegram.request_pacing_seconds:g} s, "
                    f"dispatcher poll {settings.notify.poll_seconds:g} s"
                )
                if not draft:
                    return [part]
                drafted = Part("(c) alert → draft ready (draft list)", 2.0, "drafts ready")
                requests = await request_times(store)
                for key, (raised, alert) in (await alert_times(store)).items():
                    if sha_to_key.get(str(alert.get("sha256"))) in part.posted:
                        drafted.posted[key] = raised
                        if key in requests:
                            drafted.received[key] = requests[key][0]
                statuses = sorted({str(doc.get("status")) for _, doc in requests.values()})
                drafted.notes.append(
                    f"{len(drafted.posted)} alerts, {len(requests)} requests drafted by the policy (status {statuses})"
                )
    return [part, drafted]


# --- main ------------------------------------------------------------------------------------------


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


async def run(args: argparse.Namespace, policies: bool) -> list[tuple[Part, str, str]]:
    out = []
    if "live" in args.only:
        before = load()
        gap = (args.live_gap_min, args.live_gap_max)
        parts = await live_part(args.posts, gap, args.seed, draft=policies)
        out += [(p, before, load()) for p in parts]
    if "web" in args.only:
        before = load()
        parts = await web_part(args.posts, args.every, args.periods, args.seed, auto=policies)
        out += [(p, before, load()) for p in parts]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=50, help="posts per part (>= 50 for the record)")
    ap.add_argument("--only", nargs="*", default=["live", "web"], choices=["live", "web"])
    ap.add_argument("--every", type=float, default=10.0, help="(b): the target's schedule, seconds")
    ap.add_argument("--periods", type=int, default=6, help="(b): publish over this many schedule periods")
    ap.add_argument("--live-gap-min", type=float, default=0.8, help="(a): least seconds between posts")
    ap.add_argument("--live-gap-max", type=float, default=1.6, help="(a): most seconds between posts")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-policies", action="store_true", help="plain lists: (a) and (b) only, no (c)/(d)")
    args = ap.parse_args()
    started = time.perf_counter()
    policies = policies_here() and not args.no_policies
    results = asyncio.run(run(args, policies))
    rows: list[Row] = []
    for part, _, _ in results:
        rows += rows_for(part)
    print_table(rows, "post → signed webhook received (baseline: Seoul's ~6 min from detection to a drafted request)")
    for part, before, after in results:
        for note in part.notes:
            print(f"{part.name}: {note}")
        print(f"{part.name}: load average (1/5/15 min) before {before}, after {after}")
    if not policies:
        print("(c) alert → draft ready, (d) post → request sent by SMTP: not measured (no takedown policies here)")
    print(f"total {time.perf_counter() - started:.0f} s; {os.cpu_count()} cores")
    return 0 if all(len(p.received) == len(p.posted) for p, _, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

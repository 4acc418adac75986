"""The demo's "from sighting to action" steps (issue 18): staff are told, a draft is approved and sent,
and a list imported late still finds an older post.

Everything lands on servers started here on loopback: a webhook receiver that checks the signature
as a real receiver must, and an SMTP server (aiosmtpd, the dev extra) standing for both the staff
mailbox and the platform's abuse mailbox; the in-app report goes through the real Telethon client
over the in-memory fake Telegram. Nothing is printed that did not arrive: every wait is bounded and a
miss is said as such.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import io
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from PIL import Image

from config import Settings
from crawler.evidence.ledger import Ledger
from crawler.hashing.images import hash_image
from crawler.ingest import Ingest
from crawler.notify.rules import NotifyRule
from crawler.notify.service import NotifyService
from crawler.notify.sinks.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from crawler.takedowns.models import RequestStatus
from crawler.takedowns.service import TakedownService
from storage.client import Store
from storage.repos.hashlists import HashListRepo
from storage.repos.notify import NotifyRuleRepo

Echo = Callable[[str], None]

DRAFT_LIST = "demo-draft"
LATE_LIST = "demo-late"
CHANNEL = "daily_brief"
STAFF_ADDRESS = "staff@example.org"
#: a quality floor on PDQ (Meta's): a flat picture is never a query, so the demo picks one that is not
QUALITY_FLOOR = 50
WAIT_SECONDS = 20.0


@dataclass
class Hook:
    """A local webhook endpoint: keeps what passes the signature check, counts what does not."""

    secret: bytes
    received: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ts, sig = request.headers.get(TIMESTAMP_HEADER, ""), request.headers.get(SIGNATURE_HEADER, "")
        if not verify(self.secret, ts, body, sig, now=time.time()):
            self.rejected += 1
            return web.Response(status=401)
        self.received.append(json.loads(body))
        return web.Response(status=204)


@asynccontextmanager
async def webhook_receiver(secret: bytes) -> AsyncIterator[tuple[Hook, str]]:
    hook = Hook(secret)
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield hook, f"http://{host}:{port}/hook"
    finally:
        await runner.cleanup()


class Mailbox:
    """An aiosmtpd handler keeping (recipients, bytes as received) of every accepted message."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((list(envelope.rcpt_tos), bytes(envelope.original_content or b"")))
        return "250 2.0.0 queued"

    def to(self, address: str) -> list[bytes]:
        return [data for rcpt, data in list(self.mails) if address in rcpt]


H = TypeVar("H")


@contextmanager
def smtp_server(controller_cls: Any, handler: H) -> Iterator[tuple[H, int]]:
    """An aiosmtpd ``controller_cls`` serving ``handler`` on a free loopback port (the demo's and
    bench/latency.py's local mail servers)."""
    box = handler
    with socket.socket() as probe:  # aiosmtpd's readiness check cannot use port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = controller_cls(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()  # joins its thread: nothing is left behind


async def wait_for(predicate: Callable[[], Awaitable[bool]], seconds: float = WAIT_SECONDS) -> bool:
    """Poll ``predicate`` until it holds or ``seconds`` pass (the servers run outside this loop)."""
    deadline = time.monotonic() + seconds
    while not (done := await predicate()) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    return done


def listable_seed(prefix: str) -> tuple[str, str]:
    """A synthetic picture seed whose PDQ is good enough to be a query, and that PDQ."""
    from spiders.sample_site.publish import photo_bytes

    for n in range(1, 50):
        seed = f"{prefix}-{n}"
        pdq = hash_image(photo_bytes(seed)).pdq
        if pdq is not None and pdq.quality >= QUALITY_FLOOR:
            return seed, pdq.hash
    raise RuntimeError("no synthetic picture with a PDQ quality above the floor")


def demo_settings(settings: Settings, smtp_port: int) -> Settings:
    """Staff e-mail and the takedown e-mail sender both go to the local SMTP server (no TLS on loopback)."""
    smtp = settings.smtp.model_copy(
        update={"host": "127.0.0.1", "port": smtp_port, "starttls": False, "sender": "tgwatch@example.org"}
    )
    senders = settings.takedowns.senders
    senders = senders.model_copy(
        update={
            "email": senders.email.model_copy(
                update={"enabled": True, "host": "127.0.0.1", "port": smtp_port, "security": "none"}
            ),
            "mtproto": senders.mtproto.model_copy(update={"enabled": True, "pacing": 0.0}),
        }
    )
    takedowns = settings.takedowns.model_copy(
        update={"senders": senders, "send_backoff": 0.0,
                "reporter_contact": settings.takedowns.reporter_contact or "reports@example.org"}
    )  # fmt: skip
    notify = settings.notify.model_copy(update={"poll_seconds": 0.2})
    return settings.model_copy(update={"smtp": smtp, "takedowns": takedowns, "notify": notify})


async def run(settings: Settings, store: Store, ingest: Ingest, ledger: Ledger, site: Any, echo: Echo) -> None:
    """Step "staff are told, a draft is approved and sent" (the site is still served)."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        echo("  aiosmtpd is not installed (it is in the dev extra: pip install -e '.[dev]'): step skipped")
        return
    if await HashListRepo(store).get(DRAFT_LIST) is not None:
        echo(f"  already shown on this data directory (list '{DRAFT_LIST}' exists): use a fresh --data-dir to see it")
        return
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command lines
    secret = os.urandom(16).hex()
    env = {"TGWATCH_DEMO_HOOK_SECRET": secret}
    with smtp_server(Controller, Mailbox()) as (mailbox, port):
        async with webhook_receiver(secret.encode()) as (hook, url):
            cfg = demo_settings(settings, port)
            await _notify_and_draft(cfg, store, ingest, ledger, site, echo, hook, url, mailbox, env)


async def _notify_and_draft(
    cfg: Settings, store: Store, ingest: Ingest, ledger: Ledger, site: Any, echo: Echo,
    hook: Hook, url: str, mailbox: Mailbox, env: dict[str, str],
) -> None:  # fmt: skip
    from crawler.crawl_web import StoreRunRecorder, crawl_channel
    from spiders.sample_site.publish import with_photo_post

    service = NotifyService(store, cfg, env=env)
    kinds = [f"hash_match:{DRAFT_LIST}"]
    for rule in (
        NotifyRule(name="demo-hook", sink="webhook", target=url, secret_env="TGWATCH_DEMO_HOOK_SECRET", kinds=kinds,
                   lang="en"),
        NotifyRule(name="demo-mail", sink="email", target=STAFF_ADDRESS, kinds=kinds, lang="en"),
    ):  # fmt: skip
        await NotifyRuleRepo(store).remove(rule.name)  # a re-run of the demo on the same data replaces them
        await service.add(rule)
    echo(f"  rules: webhook → {url} (HMAC-SHA256 signed), e-mail → {STAFF_ADDRESS} via SMTP 127.0.0.1:{cfg.smtp.port}")
    seed, pdq = listable_seed("demo-new-post")
    lists = HashListRepo(store)
    await lists.add_entries(DRAFT_LIST, "csv", [("pdq", pdq, "demo list entry (drafted takedowns)")])
    await lists.set_takedown(DRAFT_LIST, policy="draft")
    echo(f"  list '{DRAFT_LIST}' (1 PDQ entry) has takedown policy: draft")
    world, post = with_photo_post(site.world, CHANNEL, "A new post with a listed synthetic picture.", seed)
    site.set_world(world)
    echo(f"  the sample site publishes @{CHANNEL}/{post.id} with a listed picture; a crawl picks it up")
    notify = service.dispatcher
    try:
        summary = await crawl_channel(cfg, ingest, CHANNEL, base_url=site.base_url, recorder=StoreRunRecorder(store))
        echo(f"  {CHANNEL:<16} new={summary.new} media refs={summary.media_refs}")

        async def delivered() -> bool:
            await notify.drain()
            return bool(hook.received) and bool(mailbox.to(STAFF_ADDRESS))

        await wait_for(delivered)
    finally:
        await service.aclose()
    for payload in hook.received[:1]:
        alert = (payload.get("alerts") or [{}])[0]
        channels = alert.get("channels") or [alert.get("channel")]
        echo(f"  webhook received: {alert.get('kind')} {', '.join(str(c) for c in channels)} signature ok")
    if not hook.received:
        echo(f"  webhook: nothing received within {WAIT_SECONDS:g} s (rejected signatures: {hook.rejected})")
    staff = mailbox.to(STAFF_ADDRESS)
    for data in staff[:1]:
        echo(f"  e-mail received: {email.message_from_bytes(data, policy=email.policy.default)['Subject']}")
    if not staff:
        echo(f"  e-mail: nothing received within {WAIT_SECONDS:g} s")
    await _approve_and_send(cfg, store, ledger, mailbox, echo, post.id)


async def _approve_and_send(
    cfg: Settings, store: Store, ledger: Ledger, mailbox: Mailbox, echo: Echo, msg_id: int
) -> None:
    from crawler.takedowns.senders import build_senders
    from crawler.takedowns.sending import Dispatcher
    from telegram_watch.accounts import Account
    from telegram_watch.client import fake_client_factory
    from telegram_watch.fake.world import FakeTelegram
    from telegram_watch.pool import AccountPool
    from telegram_watch.report import MtprotoReporter

    service = TakedownService(store, ledger, cfg.takedowns)
    link = f"/{CHANNEL}/{msg_id}"
    drafts = [
        r
        for r in await service.all()
        if r.status is RequestStatus.DRAFT and any((i.link or "").endswith(link) for i in r.items)
    ]
    if not drafts:
        echo("  no drafted request: the policy did not draft one")
        return
    draft = drafts[-1]
    items = ", ".join(i.link or "?" for i in draft.items)
    echo(f"  drafted at once by the list's policy: {draft.id} status={draft.status.value} items: {items}")
    # Telegram's side: the same channel on the fake Telegram, one reporting account in the pool
    world = FakeTelegram(seed="demo-report")
    reporter_account = world.add_account("demo_reporter")
    world.fill_history(world.add_channel("Daily brief", username=CHANNEL), max(msg_id, 1) + 5)
    pool = AccountPool(
        [Account(name="demo_reporter", session=world.session_string(reporter_account))],
        fake_client_factory(world), pacing=0,
    )  # fmt: skip
    try:
        senders = build_senders(cfg, reporter=MtprotoReporter(pool, pacing=0))
        before = len(mailbox.mails)
        outcome = await Dispatcher(service, senders).approve(draft.id, actor="demo")
    finally:
        await pool.close()
    failed = f"; failed: {outcome.failed}" if outcome.failed else ""
    echo(f"  approved (as `takedown approve {draft.id}`): status={outcome.request.status.value} "
         f"sent via {', '.join(outcome.sent) or 'nothing'}{failed}")  # fmt: skip

    async def mailed() -> bool:
        return len(mailbox.mails) > before

    await wait_for(mailed, 5.0)
    sent = [e for e in await service.history(draft.id) if e["action"] == "sent"]
    for entry in sent:
        if entry.get("channel") == "email":
            got = [data for _, data in mailbox.mails[before:]]
            match = any(hashlib.sha256(d).hexdigest() == entry["sha256"] for d in got)
            rcpt = [a for r, _ in mailbox.mails[before:] for a in r]
            echo(f"  e-mail to {', '.join(rcpt)}: ledger sha256 {entry['sha256'][:16]}… "
                 f"{'equals' if match else 'DOES NOT equal'} the SHA-256 of the bytes received")  # fmt: skip
    for rep in world.reports:
        option = " → ".join(rep.get("option") or [rep.get("reason", "")])
        echo(f"  fake Telegram recorded {rep['kind']}: peer @{CHANNEL} (id {rep['channel']}) "
             f"message ids {rep.get('ids')} reason option {option}")  # fmt: skip
    if not world.reports:
        echo("  fake Telegram recorded no in-app report")


def listed_variants(world: Any, n: int = 2) -> list[tuple[str, str]]:
    """PDQ hashes of altered copies (half size, JPEG quality 55) of ``n`` photos of ``daily_brief``.

    The site serves the originals, so matching them proves near-duplicate detection, not just
    byte equality. Returns (pdq, label) pairs.
    """
    from spiders.sample_site.content import MediaKind
    from spiders.sample_site.media import picture

    seeds: list[tuple[str, int, int]] = []
    for msg in world.channel("daily_brief").messages:
        for m in msg.media:
            if m.kind is MediaKind.PHOTO and m.content_seed not in {s for s, _, _ in seeds}:
                seeds.append((m.content_seed, m.width or 320, m.height or 240))
    out = []
    for seed, w, h in seeds[:n]:
        img = Image.open(io.BytesIO(picture(seed, w, h, "jpg"))).convert("RGB")
        small = img.resize((max(1, w // 2), max(1, h // 2)))
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=55)
        pdq = hash_image(buf.getvalue()).pdq
        if pdq is not None:
            out.append((pdq.hash, f"demo list entry for picture {seed}"))
    return out


async def late_import(settings: Settings, store: Store, ledger: Ledger, world: Any, echo: Echo) -> None:
    """A list made from an older post's picture arrives after the crawl: retroactive matching finds it."""
    from crawler.media.retro import retro_match
    from crawler.pipeline import policy_hook

    if await HashListRepo(store).get(LATE_LIST) is not None:
        echo(f"  already shown on this data directory (list '{LATE_LIST}' exists): use a fresh --data-dir to see it")
        return
    variants = listed_variants(world, 3)[2:]
    if not variants:
        echo("  no third picture on the sample site to list")
        return
    await HashListRepo(store).add_entries(LATE_LIST, "csv", [("pdq", p, label) for p, label in variants])
    echo(f"  list '{LATE_LIST}' imported after the crawl: {len(variants)} PDQ entry of an older post's picture")
    async with policy_hook(store, settings, ledger) as hook:
        raised: list[Any] = []

        async def on_alert(alert: Any) -> None:
            raised.append(alert)
            await hook(alert)

        result = await retro_match(store, settings, LATE_LIST, trigger="import", on_alert=on_alert)
    echo(f"  retroactive matching: media scanned={result.media_scanned} matched={result.media_matched} "
         f"alerts={result.alerts_raised} in {result.seconds:.2f} s")  # fmt: skip
    for alert in raised:
        doc = alert.model_dump(mode="json") if hasattr(alert, "model_dump") else dict(alert)
        details = doc.get("details") or {}
        flag = "retroactive" if details.get("retroactive") else "NOT retroactive"
        echo(f"  ALERT ({flag}) {doc.get('summary')} in {', '.join(doc.get('channels') or [])}; "
             f"first seen {details.get('first_seen_at')} (post {details.get('message')})")  # fmt: skip

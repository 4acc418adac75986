"""The dispatcher: new alerts → one delivery per matching rule → sent, retried, or dead-lettered.

Deliveries are jobs in the leased work queue (``notify_deliveries``) with the id
``<alert key>/<rule name>``: enqueuing is idempotent and done jobs are kept, so a restart, a replay
of the outbox or a second dispatcher (in ``tgwatch run``, ``serve`` and ``notify deliver`` at once)
never sends the same alert twice to one sink. A failed send is ``nack``-ed (exponential back-off,
dead after ``notify.max_attempts``). Each rule has a rate window: beyond ``notify.rate_limit``
messages per ``notify.rate_window`` seconds, the waiting alerts go out together as one digest.
Every attempt is written to ``notify_log``.

Latency: an alert raised in this process wakes the loop at once (``on_alert_raised``); alerts
raised by other processes are found by polling the outbox every ``notify.poll_seconds``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp

from config import Settings
from crawler.notify.render import Outgoing, render_alert, render_digest
from crawler.notify.rules import NEVER_NOTIFIED, SEVERITIES, NotifyRule, notify_kind, severity_of
from crawler.notify.sinks import SessionFactory, Sink, SinkError, default_session
from crawler.notify.sinks.email import EmailSink
from crawler.notify.sinks.telegram_bot import TelegramBotSink
from crawler.notify.sinks.webhook import WebhookSink
from foundation.errors import TgwatchError
from foundation.logs import get_logger
from foundation.models import utcnow
from storage.client import Doc, Store
from storage.repos.alerts import AlertRepo, on_alert_raised
from storage.repos.notify import NotifyLogRepo, NotifyRateRepo, NotifyRuleRepo
from storage.workqueue import DEAD, Lease, WorkQueue

log = get_logger(__name__)

DELIVERIES = "notify_deliveries"
Item = tuple[Lease, Doc]
#: called with the record of every message a sink accepted (the shell appends it to the ledger)
OnSent = Callable[[dict[str, Any]], Awaitable[object]]
#: ``{channel key: {target group, ...}}``, from the scheduler's targets (handed in by the shell)
GroupsResolver = Callable[[], Awaitable[Mapping[str, set[str]]]]


class Dispatcher:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        session_factory: SessionFactory | None = None,
        clock: Callable[[], float] = time.time,
        env: Mapping[str, str] | None = None,
        consumer: str | None = None,
        batch: int = 200,
        lease_seconds: float = 120.0,
        on_sent: OnSent | None = None,
        channel_groups: GroupsResolver | None = None,
    ) -> None:
        self.settings = settings
        self.cfg = settings.notify
        self.clock = clock
        self.queue = WorkQueue(store, DELIVERIES, max_attempts=self.cfg.max_attempts, clock=clock)
        self.alerts = AlertRepo(store)
        self.rules = NotifyRuleRepo(store)
        self.log = NotifyLogRepo(store)
        self.rate = NotifyRateRepo(store)
        self._session_factory = session_factory or (lambda: default_session(settings))
        self._session: aiohttp.ClientSession | None = None
        self._env = env if env is not None else os.environ
        self.consumer = consumer or f"notify@{socket.gethostname()}:{os.getpid()}"
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.on_sent = on_sent
        self.channel_groups = channel_groups
        self.counts: dict[str, int] = defaultdict(int)
        self._wake = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------------
    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self._session_factory()
        return self._session

    def wake(self) -> None:
        self._wake.set()

    # -- sinks -----------------------------------------------------------------------------------
    def sink_for(self, rule: NotifyRule) -> Sink:
        """The rule's sink with its secret read from the environment now (never stored)."""
        if rule.sink == "webhook":
            secret = self._env.get(rule.secret_env or "")
            if not secret:
                raise SinkError(f"environment variable {rule.secret_env} (webhook secret) is not set")
            return WebhookSink(rule.target, secret.encode(), self._http(), clock=self.clock)
        if rule.sink == "email":
            return EmailSink(rule.target, self.settings.smtp)
        token = self._env.get(rule.secret_env) if rule.secret_env else None
        if not token and self.cfg.telegram_bot_token is not None:
            token = self.cfg.telegram_bot_token.get_secret_value()
        if not token:
            raise SinkError("no bot token: set TGWATCH_NOTIFY__TELEGRAM_BOT_TOKEN (or the rule's --secret-env)")
        return TelegramBotSink(rule.target, token, self._http(), api_base=self.cfg.telegram_api_base)

    # -- alerts → deliveries ---------------------------------------------------------------------
    async def fanout(self) -> int:
        """Enqueue one delivery per (new alert, matching rule); returns how many were new."""
        pending = await self.alerts.outbox()
        if not pending:
            return 0
        rules = await self.rules_readable()
        by_channel: Mapping[str, set[str]] = {}
        if self.channel_groups is not None and any(r.groups for r in rules):
            by_channel = await self.channel_groups()
        created = 0
        for alert in pending:
            key = str(alert["_id"])
            priority = SEVERITIES.index(severity_of(notify_kind(alert)))
            groups = {g for c in alert.get("channels") or [] for g in by_channel.get(str(c).lower(), set())}
            for rule in rules:
                if rule.matches(alert, groups):
                    created += await self.queue.enqueue(
                        f"{key}/{rule.name}", {"alert": key, "rule": rule.name}, priority=priority
                    )
            await self.alerts.outbox_done(key)
        return created

    async def rules_readable(self) -> list[NotifyRule]:
        """Every stored rule that is valid (a damaged one is logged and left out, not fatal)."""
        rules = []
        for doc in await self.rules.list():
            try:
                rules.append(NotifyRule.from_doc(doc))
            except ValueError as exc:
                log.error("notification rule unreadable, skipped", rule=str(doc.get("_id")), error=str(exc)[:300])
        return rules

    # -- deliveries → sinks ----------------------------------------------------------------------
    async def deliver(self) -> int:
        """Claim ready deliveries and send them (per rule concurrently); returns how many were claimed."""
        leases = await self.queue.claim(self.consumer, self.batch, self.lease_seconds)
        by_rule: dict[str, list[Lease]] = defaultdict(list)
        for lease in leases:
            by_rule[str(lease.payload.get("rule"))].append(lease)
        await asyncio.gather(*(self._deliver_rule(name, group) for name, group in by_rule.items()))
        return len(leases)

    async def drain(self) -> dict[str, int]:
        """Fan out and deliver until nothing is ready now (``notify deliver --until-empty``, tests)."""
        await self.fanout()
        while await self.deliver():
            await self.fanout()
        return dict(self.counts)

    async def _deliver_rule(self, name: str, leases: list[Lease]) -> None:
        doc = await self.rules.get(name)
        if doc is None:
            await self._skip(leases, name, "rule removed")
            return
        try:
            rule = NotifyRule.from_doc(doc)
        except ValueError:
            await self._skip(leases, name, "rule unreadable")
            return
        items: list[Item] = []
        gone: list[Lease] = []
        never: list[Lease] = []
        for lease in leases:
            alert = await self.alerts.get(str(lease.payload.get("alert")))
            if alert is None:
                gone.append(lease)
            elif str(alert.get("kind")) in NEVER_NOTIFIED:  # however it was queued: never sent
                never.append(lease)
            else:
                items.append((lease, alert))
        if gone:
            await self._skip(gone, name, "alert gone")
        if never:
            await self._skip(never, name, "never notified (case-scoped review only)")
        if not items:
            return
        now = self.clock()
        recent = await self.rate.recent(name, now - self.cfg.rate_window)
        slots = self.cfg.rate_limit - len(recent)
        if slots <= 0:
            await self._hold(rule, items, max(min(recent) + self.cfg.rate_window - now, 0.05))
            return
        singles, rest = (items, []) if len(items) <= slots else (items[: slots - 1], items[slots - 1 :])
        try:
            sink = self.sink_for(rule)
        except SinkError as exc:
            await self._failed(rule, items, "digest" if rest else "alert", exc.message)
            return
        for item in singles:
            await self._send(rule, sink, [item], digest=False)
        if rest:
            await self._send(rule, sink, rest, digest=True)

    def _render(self, rule: NotifyRule, items: Sequence[Item], *, digest: bool) -> Outgoing:
        common: dict[str, Any] = {
            "lang": rule.lang, "rule": rule.name, "web_base": self.settings.telegram_web_base,
            "console_url": self.cfg.console_url,
        }  # fmt: skip
        if digest:
            return render_digest([a for _, a in items], deliveries=[le.job_id for le, _ in items], **common)
        lease, alert = items[0]
        return render_alert(alert, delivery=lease.job_id, **common)

    async def _send(self, rule: NotifyRule, sink: Sink, items: Sequence[Item], *, digest: bool) -> None:
        kind = "digest" if digest else "alert"
        message = self._render(rule, items, digest=digest)
        try:
            sha256 = await sink.send(message)
        except SinkError as exc:
            await self._failed(rule, items, kind, exc.message)
            return
        except Exception as exc:  # a sink bug must not stop the dispatcher; recorded without its text
            await self._failed(rule, items, kind, f"unexpected {type(exc).__name__}")
            return
        now = self.clock()
        await self.rate.add(rule.name, now, now - self.cfg.rate_window)
        for lease, _ in items:
            try:
                await self.queue.ack(lease.job_id, lease.token, {"sha256": sha256, "digest": digest, "sent_ts": now})
            except TgwatchError as exc:
                log.warning("notification sent but not settled", delivery=lease.job_id, error=exc.message)
        self.counts["sent"] += len(items)
        self.counts["digests"] += int(digest)
        await self._record(rule, items, kind, "sent", sha256=sha256)
        log.info("notification sent", rule=rule.name, sink=rule.sink, kind=kind, alerts=len(items))
        if self.on_sent is not None:
            sent = {
                "rule": rule.name, "sink": rule.sink, "message": kind, "sha256": sha256,
                "alerts": [str(a["_id"]) for _, a in items], "deliveries": [le.job_id for le, _ in items],
            }  # fmt: skip
            try:
                await self.on_sent(sent)
            except Exception as exc:  # sent is sent: the record's failure must not make it resend
                log.error("sent notification not recorded in the ledger", rule=rule.name, kind=type(exc).__name__)

    async def _failed(self, rule: NotifyRule, items: Sequence[Item], kind: str, error: str) -> None:
        states = []
        for lease, _ in items:
            try:
                states.append(await self.queue.nack(lease.job_id, lease.token, error))
            except TgwatchError as exc:
                log.warning("notification failure not settled", delivery=lease.job_id, error=exc.message)
        outcome = "dead" if DEAD in states else "failed"
        self.counts[outcome] += len(items)
        await self._record(rule, items, kind, outcome, error=error)
        log.warning("notification failed", rule=rule.name, sink=rule.sink, outcome=outcome, error=error)

    async def _hold(self, rule: NotifyRule, items: Sequence[Item], delay: float) -> None:
        for lease, _ in items:
            await self.queue.release(lease.job_id, lease.token, delay)
        self.counts["held"] += len(items)
        await self._record(rule, items, "alert", "held", error=f"rate limit: next window in {delay:.0f}s")

    async def _skip(self, leases: Sequence[Lease], rule: str, reason: str) -> None:
        for lease in leases:
            await self.queue.ack(lease.job_id, lease.token, {"skipped": reason})
            await self.log.record(
                {"rule": rule, "sink": None, "kind": "alert", "deliveries": [lease.job_id],
                 "alerts": [lease.payload.get("alert")], "outcome": "skipped", "error": reason,
                 "attempt": lease.attempt, "at_ts": self.clock(), "at": utcnow()}
            )  # fmt: skip
        self.counts["skipped"] += len(leases)

    async def _record(
        self, rule: NotifyRule, items: Sequence[Item], kind: str, outcome: str, *, sha256: str | None = None,
        error: str | None = None,
    ) -> None:  # fmt: skip
        await self.log.record(
            {
                "rule": rule.name, "sink": rule.sink, "kind": kind, "outcome": outcome,
                "deliveries": [le.job_id for le, _ in items], "alerts": [str(a["_id"]) for _, a in items],
                "attempt": max(le.attempt for le, _ in items), "sha256": sha256, "error": error,
                "at_ts": self.clock(), "at": utcnow(),
            }
        )  # fmt: skip

    # -- the loop --------------------------------------------------------------------------------
    async def step(self) -> None:
        """One round; a failure is logged and the next round tries again (the loop never dies)."""
        try:
            await self.drain()
        except TgwatchError as exc:
            log.warning("notification round failed", kind=exc.kind, error=exc.message)
        except Exception as exc:
            log.error("notification round failed", kind=type(exc).__name__)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set: woken at once by same-process alerts, else every poll."""
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()

        def wake(_key: str) -> None:
            loop.call_soon_threadsafe(self._wake.set)

        unsubscribe = on_alert_raised(wake)
        try:
            while not stop.is_set():
                self._wake.clear()
                await self.step()
                waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
                try:
                    await asyncio.wait(waiters, timeout=self.cfg.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
        finally:
            unsubscribe()

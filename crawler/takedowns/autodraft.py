"""The takedown policy hook: a newly raised alert drafts (``draft``) or sends (``auto``) a request.

Why a hook the alert-raising code calls (``PolicyHook.__call__``) instead of a job that scans
alerts: the goal is seconds from sighting to action (alert → draft under 2 s, post → sent under
20 s), and every path that raises a match alert — the crawl's media stage and the retroactive
matching of a late list import — passes through the same call, so the policy is applied once, in one
place. The hook never breaks the caller: a request that cannot be made (no stored message, too
many items) is logged and the alert stays for staff.

``auto`` sending runs as a background task (the ingest batch is not held up by SMTP or MTProto);
``aclose`` waits for the tasks still running, so a crawl that ends does not drop a sending.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from config.takedowns import TakedownSettings
from crawler.ingest import Batch
from crawler.takedowns.models import Reason, TakedownRequest
from crawler.takedowns.policy import REVIEW_ONLY_KINDS, TakedownPolicy, effective_policy
from crawler.takedowns.sending import Dispatcher
from crawler.takedowns.service import TakedownService
from foundation.errors import NotFound, StoreError, TgwatchError
from foundation.logs import get_logger
from foundation.models import Alert, AlertKind
from storage.repos.hashlists import HashListRepo

log = get_logger(__name__)

#: the reason a list's drafts get when the list names none
DEFAULT_REASON = Reason.SEXUAL_DEEPFAKE
#: who drafts and sends for a policy (the ledger's actor)
ACTOR = "policy"


class PolicyHook:
    def __init__(
        self,
        service: TakedownService,
        dispatcher: Dispatcher | Callable[[], Awaitable[Dispatcher]],
        settings: TakedownSettings,
        *,
        background: bool = True,
    ) -> None:
        self.service = service
        self.settings = settings
        self._dispatcher = dispatcher
        self._lists = HashListRepo(service.store)
        self._background = background
        self._tasks: set[asyncio.Task[Any]] = set()

    async def decide(self, alert: Alert) -> tuple[TakedownPolicy, Reason, str]:
        """The policy for this alert, the report's reason, and what set it (for the actor name)."""
        if alert.kind is AlertKind.HASH_MATCH:
            name = str(alert.details.get("list") or "")
            doc = await self._lists.get(name) if name else None
            if doc is None:
                return TakedownPolicy.MANUAL, DEFAULT_REASON, name
            policy = effective_policy(doc.get("takedown_policy"), trusted=bool(doc.get("trusted")),
                                      alert_kind=alert.kind.value)  # fmt: skip
            try:
                reason = Reason(doc.get("takedown_reason") or DEFAULT_REASON)
            except ValueError:
                reason = DEFAULT_REASON
            return policy, reason, f"list:{name}"
        if alert.kind.value in REVIEW_ONLY_KINDS:  # a watchlist match: a person reviews it, nothing is drafted
            return TakedownPolicy.MANUAL, DEFAULT_REASON, alert.kind.value
        if alert.kind is AlertKind.DETECTION:
            policy = effective_policy(self.settings.detection_policy, trusted=False, alert_kind=alert.kind.value)
            return policy, DEFAULT_REASON, "detection"
        return TakedownPolicy.MANUAL, DEFAULT_REASON, alert.kind.value

    async def __call__(self, alert: Alert) -> TakedownRequest | None:
        """Apply the policy to a newly raised alert; the drafted request, if any."""
        try:
            return await self._apply(alert)
        except StoreError:
            raise
        except TgwatchError as exc:
            log.warning("takedown policy: no request drafted", alert=alert.key, error=exc.message, kind=exc.kind)
            return None

    async def _apply(self, alert: Alert) -> TakedownRequest | None:
        policy, reason, source = await self.decide(alert)
        if policy is TakedownPolicy.MANUAL:
            return None
        if alert.sha256 and await self.service.repo.open_with_digest(alert.sha256):
            log.info("takedown policy: media already in an open request", alert=alert.key)
            return None
        try:
            req = await self.service.create(
                reason=reason, actor=f"{ACTOR}:{source}", alert=alert.key, policy=policy.value,
            )  # fmt: skip
        except NotFound as exc:  # the alerted message is not stored (yet): staff decide
            log.info("takedown policy: nothing to report", alert=alert.key, error=exc.message)
            return None
        log.info("takedown drafted by policy", request=req.id, alert=alert.key, policy=policy.value)
        if policy is TakedownPolicy.AUTO:
            if self._background:
                task = asyncio.create_task(self._send(req.id, source))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                await self._send(req.id, source)
        return req

    async def _send(self, request_id: str, source: str) -> None:
        try:
            dispatcher = self._dispatcher if isinstance(self._dispatcher, Dispatcher) else await self._dispatcher()
            outcome = await dispatcher.send(request_id, actor=f"{ACTOR}:{source}")
        except TgwatchError as exc:
            log.error("takedown policy: automatic sending failed", request=request_id, error=exc.message)
            return
        if not outcome.ok:
            log.error("takedown policy: automatic sending incomplete", request=request_id, failed=outcome.failed)

    async def aclose(self) -> None:
        """Wait for automatic sendings still running."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class PolicyStage:
    """The ingest stage that applies the policy to the alerts a batch raised, once its messages are
    stored and captured (after the ``ledger`` stage): a request names stored items with evidence."""

    name = "takedown_policy"
    essential = False

    def __init__(self, hook: PolicyHook) -> None:
        self.hook = hook

    async def __call__(self, batch: Batch) -> None:
        for alert in batch.alerts:
            if isinstance(alert, Alert):
                await self.hook(alert)

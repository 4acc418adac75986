"""A web target whose preview is unavailable moves to MTProto, or is reported unreachable with why.

Why here (after a scheduled web run) and not in the spider: the spider only reads pages; whether
another method may take over is a question of settings (``target_policy.auto_mtproto``) and of the
account pool, and the answer changes the target, which the scheduler owns through ``TargetRepo``.

A preview is unavailable when the crawl ends in ``ChannelState.NO_PREVIEW``: ``t.me/s/NAME``
redirects to the profile page (the owner turned the preview off, or t.me withholds "sensitive"
content). The switch needs the policy on (default: on when the pool has accounts), an account the
pool may use (state active), the Telegram API credentials an account connects with, and a read that
works: the caller's ``probe`` resolves the target over MTProto first, and its error is the reason the
target is marked unreachable instead. The switch is
kept twice: in the target's ``method_changes`` history and on the run (``method_switch``). Otherwise
the target is marked ``unreachable`` (reason, state, run) and the run's status says so, which
raises a target-failure alert. A later run that reads the preview again clears the mark.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from foundation.models import ChannelState, utcnow
from storage.repos.accounts import AccountRepo
from storage.repos.runs import RunRepo
from storage.repos.targets import TargetRepo

if TYPE_CHECKING:
    from config import Settings
    from storage.client import Store

#: channel states that mean "the web preview cannot read this target, MTProto might"
PREVIEWLESS = frozenset({ChannelState.NO_PREVIEW})
#: reads the target once over MTProto: None when it can, else why not (the MTProto error)
Probe = Callable[[], Awaitable[str | None]]
#: the run status of a previewless target that no other method may read (a target-failure alert)
UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class PreviewOutcome:
    action: Literal["switched", "unreachable"]
    reason: str

    def as_doc(self) -> dict[str, Any]:
        return {"action": self.action, "reason": self.reason}


async def _why_not(settings: Settings, store: Store) -> str | None:
    """Why MTProto may not take over (None: it may)."""
    accounts = await AccountRepo(store).usable()
    policy = settings.target_policy.auto_mtproto
    if policy is False:
        return "target_policy.auto_mtproto is off"
    if not accounts:
        return "no usable MTProto account in the pool"
    if settings.telegram.api_id is None or settings.telegram.api_hash is None:
        return "no Telegram API credentials (telegram.api_id / telegram.api_hash)"
    return None


async def settle_preview_state(
    settings: Settings,
    store: Store,
    target: str,
    state: ChannelState | None,
    state_reason: str | None,
    run_id: str | None,
    probe: Probe | None = None,
) -> PreviewOutcome | None:
    """After a web run of ``target`` (its canonical link): switch, mark unreachable, or clear the mark."""
    targets = TargetRepo(store)
    if state is ChannelState.OK:
        await targets.mark_unreachable(target, None)
        return None
    if state not in PREVIEWLESS:
        return None
    now = utcnow()
    seen = state_reason or f"the web preview is unavailable ({state.value})"
    why_not = await _why_not(settings, store)
    if why_not is None and probe is not None:
        why_not = await probe()
    if why_not is None:
        change = {"from": "web", "to": "mtproto", "at": now, "reason": seen, "state": state.value,
                  "run_id": run_id, "by": "target_policy.auto_mtproto"}  # fmt: skip
        await targets.switch_method(target, "mtproto", change)
        outcome = PreviewOutcome("switched", f"switched to MTProto: {seen}")
    else:
        reason = f"{seen}; not switched to MTProto: {why_not}"
        await targets.mark_unreachable(target, {"reason": reason, "state": state.value, "at": now, "run_id": run_id})
        outcome = PreviewOutcome("unreachable", reason)
    if run_id is not None:
        status = {"status": UNREACHABLE} if outcome.action == UNREACHABLE else {}  # the run says so too
        await RunRepo(store).annotate(run_id, method_switch=outcome.as_doc(), **status)
    return outcome

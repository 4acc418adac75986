"""Crawl and target failures become alerts, so notification rules can send them to staff.

Why here (the worker) and not in the runners: only the worker knows a task has used its last
attempt. Keys keep the volume down: one ``crawl_failure`` per target per UTC day (a failed run or
a task dead after all attempts), one ``target_failure`` per target and state (a channel that is
gone, private, banned or invalid; a new state is a new alert).
"""

from __future__ import annotations

from crawler.scheduling.tasks import TaskSpec
from foundation.errors import TgwatchError
from foundation.links import normalize
from foundation.logs import get_logger
from foundation.models import Alert, AlertKind, utcnow
from storage.client import Store
from storage.repos.alerts import AlertRepo

log = get_logger(__name__)

#: run statuses (MTProto channel states) that mean the target itself is the problem
TARGET_STATES = frozenset({"not_found", "private", "banned", "invalid", "unreachable"})


def _channels(target: str) -> list[str]:
    link = normalize(target)
    return [link.username.lower()] if link is not None and link.username else []


async def raise_failure(store: Store, spec: TaskSpec, status: str, *, reason: str = "") -> None:
    """Raise the alert a run's ``status`` calls for ("failed", "dead" or a target state); never raises."""
    now = utcnow()
    if status in TARGET_STATES:
        key, kind = f"target-failure/{spec.target}/{status}", AlertKind.TARGET_FAILURE
        summary = f"target {spec.name} is {status.replace('_', ' ')}"
    elif status in ("failed", "dead"):
        key, kind = f"crawl-failure/{spec.target}/{now:%Y-%m-%d}", AlertKind.CRAWL_FAILURE
        summary = f"crawl of {spec.name} failed" + (" after every attempt" if status == "dead" else "")
    else:
        return
    alert = Alert(
        key=key, kind=kind, summary=summary, channels=_channels(spec.target), raised_at=now,
        details={"target": spec.target, "name": spec.name, "task": spec.task_id, "status": status,
                 "reason": reason[:500]},
    )  # fmt: skip
    try:
        await AlertRepo(store).raise_alert(alert)
    except TgwatchError as exc:
        log.warning("failure alert not raised", task=spec.task_id, error=exc.message)

"""Frozen accounts (Telegram, 2025): ``help.getAppConfig`` tells them, most methods refuse them.

A frozen account still logs in. Telegram lets it call a short list of methods (its app config,
configuration, its own user, updates state, log-out) and answers everything else with
``FROZEN_METHOD_INVALID`` (or, for peers it no longer participates in, ``FROZEN_PARTICIPANT_MISSING``).
The app config carries ``freeze_since_date``, ``freeze_until_date`` and ``freeze_appeal_url``.

    freeze(world, account)                     # every other method: FROZEN_METHOD_INVALID
    freeze(world, account, error="FROZEN_PARTICIPANT_MISSING")
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from telethon.tl import functions, types
from telethon.tl.types import help as t_help

from .dispatch import handles
from .faults import FaultRule
from .model import FakeUser
from .world import FakeTelegram

#: what a frozen account may still call
ALLOWED_WHEN_FROZEN: tuple[type, ...] = (
    functions.help.GetAppConfigRequest,
    functions.help.GetConfigRequest,
    functions.users.GetUsersRequest,
    functions.updates.GetStateRequest,
    functions.updates.GetDifferenceRequest,
    functions.auth.LogOutRequest,
)


@dataclass
class Freeze:
    since: int
    until: int
    rule: FaultRule


_FROZEN: weakref.WeakKeyDictionary[FakeTelegram, dict[int, Freeze]] = weakref.WeakKeyDictionary()


def freeze(world: FakeTelegram, account: FakeUser, *, error: str = "FROZEN_METHOD_INVALID", days: int = 30) -> Freeze:
    """Telegram freezes ``account`` now: only :data:`ALLOWED_WHEN_FROZEN` still works."""
    rule = world.faults.add(
        error, account=account, predicate=lambda r: not isinstance(r, ALLOWED_WHEN_FROZEN), times=None
    )
    state = Freeze(since=world.now(), until=world.now() + days * 86400, rule=rule)
    _FROZEN.setdefault(world, {})[account.id] = state
    return state


def unfreeze(world: FakeTelegram, account: FakeUser) -> None:
    """An appeal succeeded."""
    state = _FROZEN.get(world, {}).pop(account.id, None)
    if state is not None and state.rule in world.faults.rules:
        world.faults.rules.remove(state.rule)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        return types.JsonString(value)
    return types.JsonNumber(float(value))


@handles(functions.help.GetAppConfigRequest)
def _get_app_config(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    fields: dict[str, Any] = {"stories_all_hidden": 0}
    state = _FROZEN.get(world, {}).get(viewer.id)
    if state is not None:
        fields.update(
            freeze_since_date=state.since,
            freeze_until_date=state.until,
            freeze_appeal_url="https://t.me/spambot",
        )
    values = [types.JsonObjectValue(key=k, value=_json(v)) for k, v in fields.items()]
    return t_help.AppConfig(hash=1, config=types.JsonObject(value=values))

"""Which target groups a channel belongs to, for notification rules filtered by ``--group``.

Why in the shell: groups belong to scheduling (the ``targets`` collection and ``[[targets]]`` in the
settings file), and notifications must not import the scheduler; the shell hands this resolver to
the dispatcher. Channels are matched by username (``https://t.me/<channel key>``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from config import Settings
from foundation.errors import ConfigError
from foundation.links import normalize
from storage.client import Store
from storage.repos.targets import TargetRepo, canonical_target


def _channel_key(target: str) -> str | None:
    link = normalize(target)
    return link.username.lower() if link is not None and link.username else None


def target_groups(store: Store, settings: Settings) -> Callable[[], Awaitable[dict[str, set[str]]]]:
    """A resolver returning ``{channel key: {group, ...}}`` from stored and configured targets."""

    async def groups() -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for doc in await TargetRepo(store).list():
            key = _channel_key(str(doc["_id"]))
            if key and doc.get("group"):
                out.setdefault(key, set()).add(str(doc["group"]).lower())
        for spec in settings.targets:
            if spec.group is None:
                continue
            try:
                key = _channel_key(canonical_target(spec.name)[0])
            except ConfigError:
                continue
            if key:
                out.setdefault(key, set()).add(spec.group.lower())
        return out

    return groups

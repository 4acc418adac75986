"""Snowball: rooms that stored messages link to, mention, forward from or button to become candidates.

An ingest stage after ``persist`` (so it only sees what is safely stored) and not essential (a
discovery hiccup must never fail a crawl's batch). Each candidate keeps the message it came from
(``message_key``) and a depth: the source channel's depth + 1, where a channel's depth is that of
its own candidate (a channel staff added directly, a seed, has depth 0). Limits from
``DiscoverySettings``: deeper than ``max_depth`` is not followed, at most ``max_links_per_message``
per message and ``max_new_per_batch`` new candidates per batch; what a limit cut is counted in
``SnowballStage.stats`` and logged, never silently lost from the messages themselves.

Bots. A bot named in a button (a deep link ``t.me/NAMEbot?start=…``), a link or a mention is also
*proposed* as a web target (``storage.repos.targets.bot_proposal``: which channel, message and button
named it), whatever source stored the message (web crawls, scheduled MTProto runs, a manual
backfill, the live watcher): a monitor or admin approves or rejects it (``tgwatch targets
approve|reject``, the console's targets page). A bot that is a target already, or was proposed or
rejected before, is left alone; at most ``MAX_PROPOSALS_PER_RUN`` per run (per batch without a run)
are proposed, the rest are counted and recorded as a ``bot_proposals_capped`` error.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from crawler.discovery.models import Sighting, SourceKind, room_link
from crawler.discovery.service import DiscoveryService
from crawler.discovery.targets import existing_targets
from crawler.ingest import Batch
from foundation.links import TgLink
from foundation.logs import get_logger
from foundation.models import Message
from storage.repos.media import MediaRepo
from storage.repos.targets import MAX_PROPOSALS_PER_RUN, TargetRepo, bot_proposal

log = get_logger(__name__)

_NUMERIC_MENTION = re.compile(r"id\d+")  # MTProto mentions of users without a username
_BOT_NAME = re.compile(r"[a-z][a-z0-9_]{1,30}bot")  # bot usernames end in "bot" (Telegram's rule)
_RUNS_KEPT = 1000  # per-run proposal counts kept (a long-lived pipeline sees many runs)


@dataclass
class SnowballStats:
    messages: int = 0
    sightings: int = 0
    new: int = 0
    skipped_depth: int = 0
    skipped_volume: int = 0
    skipped_per_message: int = 0
    skipped_targets: int = 0
    bots_proposed: int = 0
    bots_capped: int = 0
    by_batch: list[dict[str, int]] = field(default_factory=list)


def message_rooms(msg: Message) -> list[tuple[TgLink, str]]:
    """Every room a message points at, in order, without duplicates: (link, how it was found)."""
    found: list[tuple[TgLink, str]] = []
    for url in msg.links:
        room = room_link(url)
        if room is not None:
            found.append((room, "link"))
    for name in msg.mentions:
        name = name.lstrip("@")
        if _NUMERIC_MENTION.fullmatch(name):
            continue
        room = room_link("@" + name)
        if room is not None:
            found.append((room, "mention"))
    for row in msg.buttons:
        for button in row:  # inline keyboard links; a bot's deep link (t.me/NAMEbot?start=…) names the bot
            room = room_link(button.url) if button.url else None
            if room is not None:
                found.append((room, "button"))
    fwd = msg.forwarded_from
    if fwd is not None:
        room = room_link(fwd.link) if fwd.link else None
        if room is None and fwd.username:
            room = room_link("@" + fwd.username)
        if room is not None:
            found.append((room, "forwarded_from"))
    seen: set[str] = set()
    unique = []
    for room, how in found:
        if room.canonical not in seen:
            seen.add(room.canonical)
            unique.append((room, how))
    return unique


def _button_context(msg: Message, room: TgLink, how: str) -> dict[str, str]:
    """Provenance of a button sighting: the button's text and its full URL (the deep link's payload)."""
    if how != "button":
        return {}
    for row in msg.buttons:
        for button in row:
            if button.url and (found := room_link(button.url)) is not None and found.canonical == room.canonical:
                return {"button_text": button.text[:200], "button_url": button.url[:500]}
    return {}


def _changed_keys(batch: Batch) -> set[str]:
    """Messages new or changed in this batch: re-crawled unchanged ones add nothing to discovery."""
    return set(batch.writes.new_ids) | {str(v["message"]) for v in batch.writes.versions}


class SnowballStage:
    name = "snowball"
    essential = False

    def __init__(self, service: DiscoveryService, *, propose_bots: bool = True) -> None:
        self.service = service
        self.propose_bots = propose_bots  # ``target_policy.track_bots``
        self.settings = service.settings
        self.stats = SnowballStats()
        self._proposed_in_run: dict[str, int] = {}

    async def _source_depths(self, messages: list[Message]) -> dict[str, int]:
        """channel key → depth, from the candidate of the channel's own link (none: a seed, depth 0)."""
        links = {m.channel_key or "": f"https://t.me/{m.ref.username}" for m in messages if m.ref.username}
        docs = await self.service.repo.existing(links.values())
        return {key: int(docs[link].get("depth", 0)) for key, link in links.items() if link in docs}

    async def __call__(self, batch: Batch) -> None:
        changed = _changed_keys(batch)
        messages = [m for m in batch.messages if m.channel_key is not None and m.key in changed]
        if not messages:
            return
        depths = await self._source_depths(messages)
        read = await MediaRepo(self.service.store).texts(
            sorted({m.sha256 for msg in messages for m in msg.media if m.sha256})
        )  # text read in the messages' pictures (OCR) counts as context for scoring
        limits = self.settings
        stats = Counter[str]()
        if self.propose_bots:
            await self._propose_bots(batch, messages, stats)
        planned: list[Sighting] = []
        for msg in messages:
            stats["messages"] += 1
            own = f"https://t.me/{msg.ref.username}" if msg.ref.username else None
            depth = depths.get(msg.channel_key or "", 0) + 1
            rooms = [(room, how) for room, how in message_rooms(msg) if room.canonical != own]
            if len(rooms) > limits.max_links_per_message:
                stats["skipped_per_message"] += len(rooms) - limits.max_links_per_message
                rooms = rooms[: limits.max_links_per_message]
            if depth > limits.max_depth:
                stats["skipped_depth"] += len(rooms)
                continue
            for room, how in rooms:
                planned.append(
                    Sighting.of(
                        room,
                        SourceKind.SNOWBALL,
                        msg.channel_key or "",
                        batch.received_at,
                        message_key=msg.key,
                        page_url=msg.permalink,
                        context={**_context(msg, how, read), **_button_context(msg, room, how)},
                        depth=depth,
                        priority=limits.snowball_priority,
                    )
                )
        links = list(dict.fromkeys(s.link for s in planned))
        targets = await existing_targets(self.service.store, links)
        known = set(await self.service.repo.existing(links))
        allowed_new: set[str] = set()
        kept: list[Sighting] = []
        for sighting in planned:
            if sighting.link in targets and sighting.link not in known:
                stats["skipped_targets"] += 1  # a seed staff already crawl: not a discovery
                continue
            if sighting.link not in known and sighting.link not in allowed_new:
                if len(allowed_new) >= limits.max_new_per_batch:
                    stats["skipped_volume"] += 1
                    continue
                allowed_new.add(sighting.link)
            kept.append(sighting)
        if kept:
            result = await self.service.record(kept)
            stats["new"] += result.new
            stats["sightings"] += len(kept)
        self._account(stats)

    async def _propose_bots(self, batch: Batch, messages: list[Message], stats: Counter[str]) -> None:
        """Bots named in these messages become proposed targets (first sighting's provenance)."""
        found: dict[str, tuple[Message, TgLink, str]] = {}
        for msg in messages:
            for room, how in message_rooms(msg):
                name = (room.username or "").lower()
                if _BOT_NAME.fullmatch(name) and room.canonical not in found:
                    found[room.canonical] = (msg, room, how)
        if not found:
            return
        repo = TargetRepo(self.service.store)
        known = await repo.existing(list(found))
        fresh = [link for link in found if link not in known]
        run = batch.run_id or ""
        room_left = MAX_PROPOSALS_PER_RUN - self._proposed_in_run.get(run, 0) if run else MAX_PROPOSALS_PER_RUN
        for link in fresh[: max(room_left, 0)]:
            msg, room, how = found[link]
            button = _button_context(msg, room, how)
            doc = bot_proposal(
                str(room.username), by="discovery", run_id=batch.run_id, found_in=msg.channel_key, message=msg.key,
                how=how, button_text=button.get("button_text"), url=button.get("button_url"), permalink=msg.permalink,
            )  # fmt: skip
            if await repo.propose(doc):
                stats["bots_proposed"] += 1
        if run:
            if len(self._proposed_in_run) >= _RUNS_KEPT and run not in self._proposed_in_run:
                self._proposed_in_run.clear()
            self._proposed_in_run[run] = self._proposed_in_run.get(run, 0) + min(len(fresh), max(room_left, 0))
        left = fresh[max(room_left, 0) :]
        if left:
            stats["bots_capped"] += len(left)
            batch.record_error(
                {"kind": "bot_proposals_capped", "message": f"{len(left)} bots over the cap of "
                 f"{MAX_PROPOSALS_PER_RUN} proposals per run were not proposed", "sample": left[:20]},
                record=messages[0].channel_key,
            )  # fmt: skip

    def _account(self, stats: Counter[str]) -> None:
        for name, value in stats.items():
            setattr(self.stats, name, getattr(self.stats, name) + value)
        self.stats.by_batch.append(dict(stats))
        if stats["skipped_depth"] or stats["skipped_volume"] or stats["skipped_per_message"]:
            log.info("snowball limits applied", **dict(stats))


def _context(msg: Message, how: str, read: dict[str, str]) -> dict[str, str]:
    context = {"found_as": how, "text": msg.text[:500]}
    media_text = " ".join(read[m.sha256] for m in msg.media if m.sha256 in read)
    if media_text:
        context["media_text"] = media_text[:500]
    return context

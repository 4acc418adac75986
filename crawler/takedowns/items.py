"""Build reported items from what tgwatch stored: messages, channels and the media an alert names.

Only stored things can be reported: every item carries the evidence behind it (the ledger seqs of
its captures), its public link and its media digests, so a report never names something tgwatch
cannot prove it saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from crawler.evidence.ledger import Ledger
from crawler.takedowns.models import ItemKind, ItemMedia, TakedownItem
from foundation.errors import NotFound
from foundation.models import ChannelRef, Source, from_mongo_dt
from storage.client import Doc, Store
from storage.repos.channels import ChannelRepo
from storage.repos.media import MediaRepo
from storage.repos.messages import MessageRepo

PUBLIC_BASE = "https://t.me"
#: channel captures named on a channel item (the newest ones; a busy channel has thousands)
CHANNEL_EVIDENCE = 5


class ItemBuilder:
    def __init__(self, store: Store, ledger: Ledger) -> None:
        self._ledger = ledger
        self._channels = ChannelRepo(store)
        self._messages = MessageRepo(store)
        self._media_repo = MediaRepo(store)

    async def channel_key(self, name: str) -> str:
        """A channel key, ``@name``, a t.me link or a username → the stored channel's key."""
        text = name.strip().removeprefix("@")
        for prefix in ("https://", "http://"):
            text = text.removeprefix(prefix)
        for prefix in ("t.me/s/", "t.me/", "telegram.me/"):
            text = text.removeprefix(prefix)
        text = text.strip("/").lower()
        if not text:
            raise NotFound(f"not a channel name: {name!r}", code="takedowns.bad_channel", params={"name": name[:100]})
        if await self._channels.get(text) is not None:
            return text
        key = await self._channels.resolve(ChannelRef(username=text)) if text.replace("_", "").isalnum() else None
        if key is None:
            raise NotFound(f"no stored channel {name!r}: only collected channels can be reported",
                           code="takedowns.channel_not_stored", params={"name": name[:100]})  # fmt: skip
        return key

    async def message_key(self, ref: str) -> str:
        """``CHANNEL/ID`` (key, username or t.me link) → ``<channel_key>/<msg_id>``."""
        head, sep, tail = ref.strip().rstrip("/").rpartition("/")
        if not sep or not tail.isdigit() or not tail.isascii():
            raise NotFound(f"not a message reference (CHANNEL/ID): {ref!r}", code="takedowns.bad_message_ref",
                           params={"ref": ref[:100]})  # fmt: skip
        return f"{await self.channel_key(head)}/{int(tail)}"

    async def message_items(self, keys: Sequence[str], at: datetime) -> list[TakedownItem]:
        docs = await self._messages.full(list(dict.fromkeys(keys)))
        missing = [k for k in keys if k not in docs]
        if missing:
            raise NotFound(f"messages not stored: {', '.join(missing[:10])}", code="takedowns.messages_not_stored",
                           params={"keys": ", ".join(missing[:10])})  # fmt: skip
        channels = {k: await self._channels.get(k) for k in {d["channel"] for d in docs.values()}}
        evidence = await self._message_evidence(list(docs.values()))
        media = await self._media({s for d in docs.values() for s in d.get("media_digests") or [] if s})
        out = []
        for key in dict.fromkeys(keys):
            doc = docs[key]
            channel = channels.get(doc["channel"]) or {}
            username = _username(doc, channel)
            out.append(
                TakedownItem(
                    item_id=f"message:{key}",
                    kind=ItemKind.MESSAGE,
                    channel=doc["channel"],
                    username=username,
                    tg_id=channel.get("tg_id"),
                    msg_id=int(doc["msg_id"]),
                    link=f"{PUBLIC_BASE}/{username}/{doc['msg_id']}" if username else None,
                    source=Source(doc.get("source", "web")),
                    posted_at=from_mongo_dt(doc.get("date")),
                    first_seen_at=from_mongo_dt(doc.get("first_seen_at")),
                    media=[media[s] for s in doc.get("media_digests") or [] if s in media],
                    evidence=evidence.get(key, []),
                    added_at=at,
                )
            )
        return out

    async def channel_item(self, key: str, at: datetime) -> TakedownItem:
        channel = await self._channels.get(key)
        if channel is None:
            raise NotFound(f"no stored channel {key!r}", code="takedowns.channel_not_stored", params={"name": key})
        username = channel.get("username") or next(iter(channel.get("usernames") or []), None)
        latest = channel.get("latest") or {}
        seqs = await self._ledger.latest_seqs(f"channel:{key}", kind="capture", limit=CHANNEL_EVIDENCE)
        return TakedownItem(
            item_id=f"channel:{key}",
            kind=ItemKind.CHANNEL,
            channel=key,
            username=username,
            tg_id=channel.get("tg_id"),
            link=f"{PUBLIC_BASE}/{username}" if username else None,
            source=Source(latest.get("source", "web")),
            first_seen_at=from_mongo_dt(latest.get("seen_at")),
            evidence=seqs,
            added_at=at,
        )

    async def _message_evidence(self, docs: list[Doc]) -> dict[str, list[int]]:
        wanted = [f"{d['_id']}/v{v}" for d in docs for v in range(1, int(d.get("version", 1)) + 1)]
        if not wanted:
            return {}
        found = await self._ledger.captures_of(wanted)
        out: dict[str, list[int]] = {}
        for capture_of, seq in found:
            out.setdefault(capture_of.rsplit("/v", 1)[0], []).append(seq)
        return {k: sorted(v) for k, v in out.items()}

    async def _media(self, digests: set[str]) -> dict[str, ItemMedia]:
        if not digests:
            return {}
        docs = await self._media_repo.hashes(sorted(digests))
        found = {
            d["_id"]: ItemMedia(
                sha256=d["_id"], md5=d.get("md5"), pdq=d.get("pdq") if d.get("pdq_usable") else None,
                kind=d.get("media_kind"),
            )
            for d in docs
        }  # fmt: skip
        return {s: found.get(s) or ItemMedia(sha256=s) for s in digests}


def _username(doc: Doc, channel: Doc) -> str | None:
    ref = doc.get("ref") or {}
    return ref.get("username") or channel.get("username") or next(iter(channel.get("usernames") or []), None)

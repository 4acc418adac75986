"""The ``targets`` collection: channels to crawl on a schedule, added by staff or by discovery.

Only :class:`TargetRepo` touches it: the scheduler (``crawler.scheduling``, the CLI) and discovery
(``crawler.discovery.targets.create_target``, which adds approved candidates) both call it, which is
why it lives in ``storage`` (a feature may not import the scheduler). Document shape::

    {_id: canonical link, kind: "username"|"invite", method: "web"|"mtproto", source, created_at,
     paused, name?, every?, cron?, jitter?, group?, priority?,
     method_changes?: [{from, to, at, reason, state, run_id, by}],   # switches tgwatch made itself
     unreachable?: {reason, state, at, run_id}}                      # no usable method, and why

A *proposed* target (``status: "proposed"``, a bot found in a button, link or mention, or named to
``tgwatch bot``) is not crawled until a monitor or admin approves it; a rejected one
(``status: "rejected"``) stays, so the same bot is never proposed again. ``proposed`` holds the
provenance (by, run, channel, message, button) and ``review`` the decision (by, at, decision, reason).
``list`` returns the targets that are crawled; ``proposals`` the others.

Schedule fields are optional: a target without them takes its group's, then the default group's.
Documents holding a datetime are written whole (insert/replace): the embedded server turns a
``$set`` datetime into a string; ``paused`` is a plain bool and may be ``$set``.
"""

from __future__ import annotations

import builtins
from typing import Any

from foundation.errors import ConfigError, NotFound
from foundation.links import LinkKind, normalize
from foundation.models import utcnow
from storage.client import Doc, Store, translate_errors
from storage.owners import insert_once

COLLECTION = "targets"
SCHEDULE_FIELDS = ("every", "cron", "jitter", "group", "priority")
PROPOSED = "proposed"
REJECTED = "rejected"
#: statuses of a target that is not crawled: waiting for review, or refused
REVIEW_STATES = (PROPOSED, REJECTED)
#: bots proposed per run at most (per batch without a run): a channel stuffing its buttons with bot
#: links cannot flood the review list; the rest are counted and recorded (``bot_proposals_capped``)
MAX_PROPOSALS_PER_RUN = 20


def bot_proposal(
    name: str,
    *,
    by: str,
    run_id: str | None = None,
    found_in: str | None = None,
    message: str | None = None,
    how: str | None = None,
    button_text: str | None = None,
    url: str | None = None,
    permalink: str | None = None,
) -> Doc:
    """The document of a bot proposed as a web target (its t.me page carries "monthly users").

    ``by`` names the path that found it (``discovery``, ``bot_command`` …), ``found_in`` the channel
    key and ``message`` the message key where it was named, ``how`` button/link/mention."""
    at = utcnow()
    provenance: Doc = {"by": by, "run_id": run_id, "at": at, "channel": found_in, "message": message, "how": how,
                       "button_text": button_text, "url": url, "permalink": permalink}  # fmt: skip
    return {
        "_id": f"https://t.me/{name.lower()}",
        "kind": "username",
        "method": "web",
        "source": "bot",
        "status": PROPOSED,
        "paused": False,
        "name": name.lower(),
        "created_at": at,
        "found_in": found_in,
        "proposed": {k: v for k, v in provenance.items() if v is not None},
    }


def canonical_target(name: str) -> tuple[str, str]:
    """``NAME``, ``@NAME`` or a t.me link → (canonical link, kind). Raises ``ConfigError``."""
    text = name.strip()
    link = normalize(text if ("/" in text or text.startswith("@") or ":" in text) else "@" + text)
    if link is None or link.kind not in (LinkKind.USERNAME, LinkKind.INVITE):
        raise ConfigError(f"not a channel username or t.me channel/invite link: {name!r}", code="targets.bad_name",
                          params={"name": name})  # fmt: skip
    return link.canonical, link.kind.value


class TargetRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store[COLLECTION]

    async def add(
        self,
        name: str,
        *,
        method: str,
        source: str = "cli",
        paused: bool = False,
        **schedule: Any,
    ) -> Doc:
        """Add or replace a target (its ``created_at`` survives a replace). Returns the document."""
        key, kind = canonical_target(name)
        if kind == "invite" and method == "web":
            raise ConfigError(f"{name!r} is an invite link: it has no web preview, use --method mtproto",
                              code="targets.invite_needs_mtproto", params={"name": name})  # fmt: skip
        doc: Doc = {
            "_id": key,
            "kind": kind,
            "method": method,
            "source": source,
            "created_at": utcnow(),
            "paused": paused,
            "name": name.strip(),
        }
        doc.update({k: v for k, v in schedule.items() if k in SCHEDULE_FIELDS and v is not None})
        if not await insert_once(self._coll, doc, "add target"):
            with translate_errors("add target"):
                old = await self._coll.find_one({"_id": key}, {"created_at": 1})
                if old is not None and old.get("created_at") is not None:
                    doc["created_at"] = old["created_at"]
                await self._coll.replace_one({"_id": key}, doc)
        return doc

    async def get(self, name: str) -> Doc | None:
        key, _ = canonical_target(name)
        with translate_errors("get target"):
            return await self._coll.find_one({"_id": key})

    async def list(self) -> list[Doc]:
        """The targets that are crawled (proposed and rejected ones are not: see ``proposals``)."""
        with translate_errors("list targets"):
            docs = await self._coll.find().sort("_id", 1).to_list(None)
        return [d for d in docs if d.get("status") not in REVIEW_STATES]

    async def proposals(self, statuses: tuple[str, ...] = (PROPOSED,)) -> builtins.list[Doc]:
        """Targets waiting for review (or, with ``REJECTED`` in ``statuses``, refused), oldest first."""
        with translate_errors("list proposed targets"):
            docs = await self._coll.find({"status": {"$in": list(statuses)}}).to_list(None)
        return sorted(docs, key=lambda d: (str(d.get("created_at") or ""), str(d["_id"])))

    async def propose(self, doc: Doc) -> bool:
        """Insert a proposed target (``doc`` complete, ``status: proposed``); False when its key is a
        target already, whatever its status (a rejected bot is never proposed again)."""
        assert doc.get("status") == PROPOSED
        return await insert_once(self._coll, doc, "propose target")

    async def review(self, key: str, *, approve: bool, decision: Doc) -> Doc:
        """Approve (the target is crawled from now on) or reject a proposed target; a rejected one may
        still be approved later. Raises ``NotFound``/``ConfigError``; read + replace guarded by status."""
        with translate_errors("review target"):
            doc = await self._coll.find_one({"_id": key})
            if doc is None:
                raise NotFound(f"no target {key}", code="targets.unknown", params={"name": key})
            status = doc.get("status")
            allowed = REVIEW_STATES if approve else (PROPOSED,)
            if status not in allowed:
                raise ConfigError(f"{key} is not a {' or '.join(allowed)} target (status {status or 'active'})",
                                  code="targets.not_reviewable", params={"name": key})  # fmt: skip
            new = {k: v for k, v in doc.items() if k != "status"}
            if not approve:
                new["status"] = REJECTED
            new["review"] = decision
            res = await self._coll.replace_one({"_id": key, "status": status}, new)
        if not res.matched_count:
            raise ConfigError(f"{key} was reviewed meanwhile", code="targets.reviewed_meanwhile", params={"name": key})
        return new

    async def remove(self, name: str) -> bool:
        key, _ = canonical_target(name)
        with translate_errors("remove target"):
            res = await self._coll.delete_one({"_id": key})
        return bool(res.deleted_count)

    async def set_paused(self, name: str, paused: bool = True) -> bool:
        """Pause or resume; False when there is no such target in the database."""
        key, _ = canonical_target(name)
        with translate_errors("pause target"):
            res = await self._coll.update_one({"_id": key}, {"$set": {"paused": paused}})
        return bool(res.matched_count)

    async def insert_new(self, doc: Doc) -> Doc:
        """Insert a complete target document, or return the stored one when its key exists."""
        if await insert_once(self._coll, doc, "create target"):
            return doc
        with translate_errors("create target"):
            existing = await self._coll.find_one({"_id": doc["_id"]})
        return existing or doc

    async def get_key(self, key: str) -> Doc | None:
        """By canonical link (``get`` takes any name form)."""
        with translate_errors("get target"):
            return await self._coll.find_one({"_id": key})

    async def existing(self, keys: builtins.list[str]) -> set[str]:
        """Which of these canonical links are targets already."""
        if not keys:
            return set()
        with translate_errors("read targets"):
            return {str(d["_id"]) async for d in self._coll.find({"_id": {"$in": keys}}, {"_id": 1})}

    async def clear_method(self, name: str) -> None:
        """Drop the stored method, so a database overlay of a configured target keeps the file's."""
        key, _ = canonical_target(name)
        with translate_errors("update target"):
            await self._coll.update_one({"_id": key}, {"$unset": {"method": ""}})

    async def switch_method(self, key: str, method: str, change: Doc) -> Doc:
        """Change a target's method on tgwatch's own decision (a crawl found no web preview).

        The change is appended to the document's ``method_changes`` history and any ``unreachable``
        mark is dropped; a configured target without a document gets a database overlay (source
        ``override``) holding only what changed. Read + replace: ``change`` carries datetimes.
        """
        with translate_errors("update target"):
            doc = await self._coll.find_one({"_id": key})
            if doc is None:
                _, kind = canonical_target(key)
                doc = {"_id": key, "kind": kind, "source": "override", "created_at": utcnow()}
                exists = False
            else:
                exists = True
            doc["method"] = method
            doc["method_changes"] = [*doc.get("method_changes", []), change]
            doc.pop("unreachable", None)
            if exists:
                await self._coll.replace_one({"_id": key}, doc)
        if not exists:
            return await self.insert_new(doc)
        return doc

    async def mark_unreachable(self, key: str, mark: Doc | None) -> None:
        """Say why no method tgwatch may use can read a target (``mark``: reason, state, at, run_id),
        or clear the mark (None) once one can again. A configured target without a document gets an
        overlay (source ``override``) holding only the mark."""
        with translate_errors("update target"):
            doc = await self._coll.find_one({"_id": key})
            if doc is None:
                if mark is None:
                    return
                _, kind = canonical_target(key)
                await self.insert_new({"_id": key, "kind": kind, "source": "override", "created_at": utcnow(),
                                       "unreachable": mark})  # fmt: skip
                return
            if mark is None and "unreachable" not in doc:
                return
            if mark is None:
                doc.pop("unreachable", None)
            else:
                doc["unreachable"] = mark
            await self._coll.replace_one({"_id": key}, doc)

"""The single door: every source hands its records to ``Ingest.submit``.

Ingest is a chain of small stages run in order over one batch (structlog's processor chain is the
model). Ingest owns ``normalize``, ``version`` and ``persist``; the whole chain, with the feature
stages between and after them, is declared in one place, ``crawler.pipeline.STAGES``, and laid out
by ``Ingest.assemble``. A stage that is not ``essential`` records its failure and the batch goes on;
an essential stage's failure aborts the batch *before* its checkpoint is saved, so the batch is
simply submitted again (every write is keyed by natural ``_id`` and therefore idempotent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from foundation.contracts import IngestRecord as IngestRecord
from foundation.contracts import IngestResult as IngestResult
from foundation.errors import StoreError, TgwatchError
from foundation.logs import get_logger
from foundation.models import Channel, ChannelRef, Checkpoint, Deletion, Message, WebPage, utcnow
from storage.client import Doc, Store
from storage.repos import ChannelRepo, CheckpointRepo, ErrorRepo, MessageRepo
from storage.repos.audience import AudienceRepo
from storage.repos.messages import MessageWrites
from storage.repos.pages import PageRepo

log = get_logger(__name__)


@dataclass
class Batch:
    """One submission travelling through the stages. Stages replace records, never drop them."""

    messages: list[Message]
    channels: list[Channel]
    deletions: list[Deletion]
    received_at: datetime
    run_id: str | None = None
    channel_keys: dict[ChannelRef, str] = field(default_factory=dict)
    writes: MessageWrites = field(default_factory=MessageWrites)
    deleted_keys: list[str] = field(default_factory=list)
    result: IngestResult = field(default_factory=IngestResult)
    errors: list[tuple[TgwatchError | dict[str, object], str | None]] = field(default_factory=list)
    #: alerts newly raised while this batch was processed (the takedown policy stage acts on them)
    alerts: list[Any] = field(default_factory=list)
    #: the whole pages the batch's records were parsed from (web sources; stored by ``persist``)
    pages: list[WebPage] = field(default_factory=list)

    def record_error(self, error: TgwatchError | dict[str, object], record: str | None = None) -> None:
        self.errors.append((error, record))
        self.result.errors += 1


class Stage(Protocol):
    name: str
    essential: bool

    async def __call__(self, batch: Batch) -> None: ...


class NormalizeStage:
    """Resolve every channel reference to its stable key and stamp it on the messages."""

    name = "normalize"
    essential = True

    def __init__(self, channels: ChannelRepo) -> None:
        self._channels = channels
        self._cache: dict[ChannelRef, str] = {}

    async def _key(self, ref: ChannelRef) -> str:
        key = self._cache.get(ref)
        if key is None:
            key = await self._channels.ensure(ref)
            self._cache[ref] = key
        return key

    async def __call__(self, batch: Batch) -> None:
        refs = [r.ref for r in batch.channels] + [m.ref for m in batch.messages] + [d.ref for d in batch.deletions]
        refs += [p.ref for p in batch.pages]
        for ref in refs:
            batch.channel_keys[ref] = await self._key(ref)
        kept: list[Message] = []
        for msg in batch.messages:
            if msg.msg_id <= 0:
                batch.record_error({"kind": "invalid_record", "message": f"message id {msg.msg_id} <= 0"})
                continue
            kept.append(msg.model_copy(update={"channel_key": batch.channel_keys[msg.ref]}))
        batch.messages = kept
        batch.result.media_refs += sum(len(m.media) for m in kept)


class VersionStage:
    """Decide, per message, between new, new version, and unchanged (only counters refreshed)."""

    name = "version"
    essential = True

    def __init__(self, messages: MessageRepo) -> None:
        self._messages = messages

    async def __call__(self, batch: Batch) -> None:
        current = await self._messages.current(m.key for m in batch.messages)
        now = batch.received_at
        superseded: list[str] = []
        for msg in batch.messages:
            doc = msg.to_doc()
            existing = current.get(msg.key)
            deleted_at = existing.get("deleted_at") if existing else None
            doc.update(
                first_seen_at=existing.get("first_seen_at", now) if existing else now,
                last_seen_at=now,
                deleted_at=deleted_at,
                deleted=deleted_at is not None,
            )
            if existing is not None and not _changed(existing, doc):
                # Same content: refresh counters (views …) in place, keep the version and its raw capture.
                doc.update(version=existing.get("version", 1), raw_sha256=existing.get("raw_sha256"))
                _keep_known_digests(existing, doc)
                batch.writes.current[msg.key] = doc
                batch.result.unchanged += 1
                continue
            if existing is None:
                doc["version"] = 1
                batch.writes.new_ids.add(msg.key)
                batch.result.new += 1
            else:
                doc["version"] = int(existing.get("version", 1)) + 1
                if msg.key in batch.writes.current:  # an earlier copy in this very batch is superseded
                    batch.writes.versions.append(_version_doc(batch.writes.current[msg.key], now))
                else:
                    superseded.append(msg.key)
                batch.result.updated += 1
            batch.writes.current[msg.key] = doc
            current[msg.key] = doc  # a later copy in the same batch compares against this one
            if msg.raw is not None:
                batch.writes.raw.append({"_id": msg.raw.sha256, **msg.raw.model_dump(mode="python")})
        # The stored documents being superseded become versions, written before they are replaced.
        for old in (await self._messages.full(superseded)).values():
            batch.writes.versions.append(_version_doc(old, now))


def _keep_known_digests(existing: Doc, doc: Doc) -> None:
    """A crawl that could not fetch the media must not forget digests an earlier crawl computed."""
    known = existing.get("media_digests")
    if doc.get("media_digests") is None and known and len(known) == len(doc["media"]):
        doc["media_digests"] = known
        doc["media"] = [{**m, "sha256": m.get("sha256") or d} for m, d in zip(doc["media"], known, strict=True)]


def _version_doc(doc: Doc, archived_at: datetime) -> Doc:
    key = doc["_id"]
    return {**doc, "_id": f"{key}/v{doc.get('version', 1)}", "message": key, "archived_at": archived_at}


def _changed(existing: Doc, new: Doc) -> bool:
    if existing.get("content_hash") != new["content_hash"]:
        return True
    old_digests, new_digests = existing.get("media_digests"), new.get("media_digests")
    return old_digests is not None and new_digests is not None and old_digests != new_digests


class PersistStage:
    """Write the batch: raw captures, versions, current messages, media sightings, channel
    snapshots, deletions."""

    name = "persist"
    essential = True

    def __init__(
        self, messages: MessageRepo, channels: ChannelRepo, audience: AudienceRepo | None = None,
        pages: PageRepo | None = None,
    ) -> None:  # fmt: skip
        self._messages = messages
        self._channels = channels
        self._audience = audience
        self._pages = pages

    async def __call__(self, batch: Batch) -> None:
        if self._pages is not None and batch.pages:
            await self._pages.put(batch.pages)
        await self._messages.write(batch.writes)
        await self._messages.add_sightings(batch.messages, batch.received_at)
        for channel in batch.channels:
            await self._channels.record_snapshot(batch.channel_keys[channel.ref], channel)
            if self._audience is not None:  # the growth series (issue 19): one point per snapshot
                await self._audience.record(
                    batch.channel_keys[channel.ref],
                    source=channel.source.value,
                    at=channel.seen_at,
                    kind=channel.kind,
                    figures=channel.counters.model_dump(),
                )
            batch.result.channels += 1
        for deletion in batch.deletions:
            key = batch.channel_keys[deletion.ref]
            keys = [f"{key}/{i}" for i in deletion.msg_ids]
            batch.result.deleted += await self._messages.mark_deleted(keys, deletion.seen_at)
            batch.deleted_keys.extend(keys)


class Ingest:
    """Compose the stages over one store. Build once per process (or per run) and reuse."""

    def __init__(self, store: Store, *, store_retry_seconds: float = 60.0) -> None:
        # The repositories are ingest's own: sources and features reach the store through the methods
        # below (``foundation.contracts.IngestDoor``), never through these.
        self._channels = ChannelRepo(store)
        self._messages = MessageRepo(store)
        self._checkpoints = CheckpointRepo(store)
        self._errors = ErrorRepo(store)
        self.stages: list[Stage] = [
            NormalizeStage(self._channels),
            VersionStage(self._messages),
            PersistStage(self._messages, self._channels, AudienceRepo(store), PageRepo(store)),
        ]
        self._store_retry_seconds = store_retry_seconds

    def assemble(self, order: Sequence[tuple[str, bool]], extra: Sequence[Stage]) -> None:
        """Lay out the chain as ``order`` declares it (``crawler.pipeline.STAGES``): ingest's own
        stages plus ``extra``, each where its name stands. A declared stage that is not given is
        skipped (no media fetching, no media stage); a stage the order does not name, or whose
        ``essential`` flag differs from the declaration, is a wiring mistake and raises."""
        by_name = {s.name: s for s in [*self.stages, *extra]}
        declared = dict(order)
        for name, stage in by_name.items():
            if name not in declared:
                raise ValueError(f"stage {name!r} is not in the declared order {[n for n, _ in order]}")
            if stage.essential != declared[name]:
                raise ValueError(f"stage {name!r} is declared essential={declared[name]}")
        self.stages = [by_name[name] for name, _ in order if name in by_name]

    def add_stage(self, stage: Stage, *, before: str | None = None, after: str | None = None) -> None:
        """Insert one stage at a named seam (``before="version"``, ``after="persist"`` …): for tests
        that need a single stage; processes lay out the whole chain with ``assemble``."""
        names = [s.name for s in self.stages]
        anchor = before or after
        if anchor is None:
            self.stages.append(stage)
            return
        if anchor not in names:
            raise ValueError(f"no stage named {anchor!r}; stages are {names}")
        index = names.index(anchor) + (1 if after else 0)
        self.stages.insert(index, stage)

    async def checkpoint(self, stream: str) -> Checkpoint | None:
        return await self._checkpoints.get(stream)

    async def resolve_channel(self, ref: ChannelRef) -> str | None:
        """The stable key of a channel ingest has seen under ``ref`` (any alias), or None."""
        return await self._channels.resolve(ref)

    async def record_error(
        self, error: TgwatchError | dict[str, object], *, run_id: str | None = None, record: str | None = None
    ) -> None:
        """Keep an error a source met outside a batch (a refused join, a failed live batch)."""
        await self._errors.record(error, run_id=run_id, record=record)

    async def submit(
        self,
        records: Sequence[IngestRecord],
        *,
        checkpoint: Checkpoint | None = None,
        run_id: str | None = None,
    ) -> IngestResult:
        """Store a batch, then its checkpoint. Retries the whole batch through a store outage."""
        delay, deadline = 0.5, asyncio.get_running_loop().time() + self._store_retry_seconds
        while True:
            try:
                return await self._submit_once(records, checkpoint, run_id)
            except StoreError as exc:
                if asyncio.get_running_loop().time() + delay > deadline:
                    raise
                log.warning("store unavailable, retrying batch", error=str(exc), delay=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _submit_once(
        self, records: Sequence[IngestRecord], checkpoint: Checkpoint | None, run_id: str | None
    ) -> IngestResult:
        batch = Batch(
            messages=[r for r in records if isinstance(r, Message)],
            channels=[r for r in records if isinstance(r, Channel)],
            deletions=[r for r in records if isinstance(r, Deletion)],
            received_at=utcnow(),
            run_id=run_id,
            pages=[r for r in records if isinstance(r, WebPage)],
        )
        for stage in self.stages:
            try:
                await stage(batch)
            except StoreError:
                raise
            except Exception as exc:
                if stage.essential:
                    raise
                log.error("ingest stage failed", stage=stage.name, error=repr(exc))
                if isinstance(exc, TgwatchError):
                    batch.record_error(exc)
                else:
                    batch.record_error({"kind": "stage_failed", "stage": stage.name, "message": repr(exc)})
        for error, record in batch.errors:
            await self._errors.record(error, run_id=run_id, record=record)
        if checkpoint is not None:
            await self._checkpoints.save(checkpoint)
        return batch.result

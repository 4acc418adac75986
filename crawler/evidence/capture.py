"""The ingest stage that writes ``capture`` entries: every source path reaches the ledger through it.

Installed after ``persist`` by :func:`install` (the lead calls it where the ``Ingest`` is built), so an
entry is only written for what was really stored, and an essential-stage failure (which makes the
source resubmit the batch) never leaves a capture entry for data that is not there.

What one batch produces (one ``append_many``: one lease, one insert):

- ``item: message`` for each message version that has no capture entry yet (a re-observation of
  unchanged content is not a new capture; it only moves ``last_seen_at``; a batch replayed after a
  failure gets the entries it missed, never twice). It carries the record digest
  (``record_sha256``: SHA-256 of the canonical JSON of the stored message document, whose exact
  bytes are kept in ``evidence_records`` for the exporter), the content hash, the raw-capture digest
  and kind, the source URL or TL request, the capture time, every media digest;
- ``item: media`` for each media item of those messages whose digest is known;
- ``item: channel_snapshot`` for each channel header seen (record digest + raw digest);
- ``item: deletion`` for each deletion observed;
- ``item: page`` for each whole page the batch was parsed from (web sources): the body's digest (the
  body itself is in ``web_pages``), the request, and the status line and headers as sent.

Each names the collecting worker and account, the run, and the authorization (and its case) that
covers the channel when one is active: that is how items collected under a case's authorization
belong to the case without anyone attaching them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from typing import Any

from crawler.evidence.entries import (
    capture_deletion_entry,
    capture_media_entry,
    capture_message_entry,
    capture_page_entry,
    capture_snapshot_entry,
    jsonable,
    record_bytes,
)
from crawler.evidence.ledger import Ledger
from crawler.ingest import Batch, Ingest
from foundation.models import Channel, RawCapture, WebPage
from storage.client import Doc, Store, insert_new, translate_errors
from storage.repos.authorizations import AuthorizationRepo, channel_scope


class RecordStore:
    """``evidence_records``: the exact bytes of each captured record (and of channel-header raw
    captures, which ``persist`` keeps only as a digest), by their SHA-256."""

    def __init__(self, store: Store) -> None:
        self._coll = store["evidence_records"]

    async def put(self, records: Iterable[tuple[str, bytes]]) -> None:
        docs = {sha: {"_id": sha, "content": data.decode("utf-8")} for sha, data in records}
        if not docs:
            return
        # content-addressed: already there means identical
        await insert_new(self._coll, list(docs.values()), "store evidence records")

    async def get(self, shas: Sequence[str]) -> dict[str, bytes]:
        with translate_errors("read evidence records"):
            return {d["_id"]: d["content"].encode("utf-8") async for d in self._coll.find({"_id": {"$in": list(shas)}})}


def _raw_fields(raw: RawCapture | None) -> dict[str, Any]:
    if raw is None:
        return {"raw_sha256": None}
    return {
        "raw_sha256": raw.sha256,
        "raw_kind": raw.kind,
        "source_url": raw.url,
        "tl_request": raw.request,
        "captured_at": raw.fetched_at,
    }


class CaptureStage:
    """``capture`` ledger entries for what ``persist`` just stored (see the module docstring)."""

    name = "ledger"
    #: a batch whose capture entries could not be written is not checkpointed: the source submits it
    #: again, and the replay writes exactly the entries that are missing (see ``_already_captured``)
    essential = True

    def __init__(self, ledger: Ledger, *, worker: str | None = None, account: str | None = None) -> None:
        self.ledger = ledger
        self.records = RecordStore(ledger.store)
        self._auth = AuthorizationRepo(ledger.store)
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.account = account

    async def _grants(self, batch: Batch) -> dict[str, Doc]:
        """channel key → an active authorization whose scope names the channel (key or username)."""
        names: dict[str, str] = {}
        for ref, key in batch.channel_keys.items():
            names[channel_scope(key)] = key
            if ref.username:
                names[channel_scope(ref.username)] = key
        if not names:
            return {}
        out: dict[str, Doc] = {}
        for grant in await self._auth.active_for_scopes(list(names)):
            for scope in grant.get("scope", []):
                if scope in names:
                    out.setdefault(names[scope], grant)
        return out

    async def _already_captured(self, batch: Batch) -> set[str]:
        """Which ``<key>/v<version>`` of this batch already have a capture entry.

        Deciding from the ledger rather than from "new or changed in this batch" keeps the stage
        idempotent *and* complete: a batch replayed after a store outage finds its messages already
        persisted (so "unchanged"), and still gets the capture entries the failed attempt never wrote.
        """
        wanted = [f"{k}/v{d.get('version', 1)}" for k, d in batch.writes.current.items()]
        if not wanted:
            return set()
        return {capture_of for capture_of, _ in await self.ledger.captures_of(wanted)}

    def _who(self, grant: Doc | None, run_id: str | None) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "account": self.account,
            "run_id": run_id,
            "authorization": grant["_id"] if grant else None,
            "cases": [grant["case_id"]] if grant and grant.get("case_id") else [],
        }

    async def __call__(self, batch: Batch) -> None:
        grants = await self._grants(batch)
        captured = await self._already_captured(batch)
        raw_by_key = {m.key: m.raw for m in batch.messages if m.channel_key is not None}
        entries: list[dict[str, Any]] = []
        records: list[tuple[str, bytes]] = []
        for key, doc in batch.writes.current.items():
            capture_of = f"{key}/v{doc.get('version', 1)}"
            if capture_of in captured:
                continue
            channel = str(doc.get("channel"))
            grant = grants.get(channel)
            data, record_sha = record_bytes(doc)
            records.append((record_sha, data))
            media = [
                {"kind": jsonable(m.get("kind")), "sha256": m.get("sha256"), "url": m.get("url")}
                for m in doc.get("media") or []
            ]
            who = self._who(grant, batch.run_id)
            entries.append(
                capture_message_entry(
                    message=key,
                    capture_of=capture_of,
                    channel=channel,
                    version=doc.get("version"),
                    source=jsonable(doc.get("source")),
                    permalink=doc.get("permalink"),
                    record_sha256=record_sha,
                    content_hash=doc.get("content_hash"),
                    media=media,
                    received_at=batch.received_at,
                    raw=_raw_fields(raw_by_key.get(key)),
                    who=who,
                )
            )
            for m in media:
                if m["sha256"]:
                    entries.append(
                        capture_media_entry(
                            sha256=m["sha256"],
                            media_kind=m["kind"],
                            url=m["url"],
                            message=key,
                            channel=channel,
                            received_at=batch.received_at,
                            who=who,
                        )
                    )
        for snapshot in batch.channels:
            entries.append(self._snapshot(snapshot, batch, grants, records))
        for page in batch.pages:
            channel = batch.channel_keys[page.ref]
            entries.append(_page_entry(page, channel, self._who(grants.get(channel), batch.run_id)))
        for deletion in batch.deletions:
            channel = batch.channel_keys[deletion.ref]
            entries.append(
                capture_deletion_entry(
                    channel=channel,
                    msg_ids=deletion.msg_ids,
                    source=deletion.source.value,
                    captured_at=deletion.seen_at,
                    who=self._who(grants.get(channel), batch.run_id),
                )
            )
        if not entries:
            return
        await self.records.put(records)
        await self.ledger.append_many(entries)

    def _snapshot(
        self, channel: Channel, batch: Batch, grants: dict[str, Doc], records: list[tuple[str, bytes]]
    ) -> dict[str, Any]:
        key = batch.channel_keys[channel.ref]
        record = channel.model_dump(mode="json", exclude={"raw"})
        record["channel_key"] = key
        data, record_sha = record_bytes(record)
        records.append((record_sha, data))
        if channel.raw is not None:  # persist keeps only the digest of a header's raw capture
            records.append((channel.raw.sha256, channel.raw.content.encode("utf-8")))
        return capture_snapshot_entry(
            channel=key,
            state=channel.state.value,
            source=channel.source.value,
            record_sha256=record_sha,
            seen_at=channel.seen_at,
            raw=_raw_fields(channel.raw),
            who=self._who(grants.get(key), batch.run_id),
        )


def _page_entry(page: WebPage, channel: str, who: dict[str, Any]) -> dict[str, Any]:
    request = {"method": page.method, "url": page.url, "headers": [list(h) for h in page.request_headers]}
    response = {
        "protocol": page.protocol,
        "status": page.status,
        "reason": page.reason,
        "headers": [list(h) for h in page.headers],
    }
    return capture_page_entry(
        channel=channel,
        url=page.url,
        page_sha256=page.sha256,
        page_bytes=len(page.body),
        captured_at=page.fetched_at,
        request=request,
        response=response,
        withheld_headers=page.withheld,
        who=who,
    )


def install(ingest: Ingest, ledger: Ledger, *, worker: str | None = None, account: str | None = None) -> CaptureStage:
    """Add the capture stage after ``persist`` (idempotent per ingest)."""
    for stage in ingest.stages:
        if isinstance(stage, CaptureStage):
            return stage
    stage = CaptureStage(ledger, worker=worker, account=account)
    ingest.add_stage(stage, after="persist")
    return stage

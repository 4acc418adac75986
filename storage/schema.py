"""Every collection tgwatch uses, its ``_id`` rule and its indexes: the one place to look.

``apply(db)`` creates what is missing and is idempotent (``tgwatch init`` and every process start
call it). Only standard MongoDB index features are used, so the same declarations run on a MongoDB 7
replica set and on the embedded nx-27017 server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase


@dataclass(frozen=True)
class Index:
    keys: list[tuple[str, int]]
    name: str
    unique: bool = False
    sparse: bool = False

    def model(self) -> IndexModel:
        opts: dict[str, Any] = {"name": self.name}
        if self.unique:
            opts["unique"] = True
        if self.sparse:
            opts["sparse"] = True
        return IndexModel(self.keys, **opts)


@dataclass(frozen=True)
class Collection:
    name: str
    id_rule: str
    indexes: list[Index] = field(default_factory=list)
    # "module:Class" of the one class that touches this collection; everyone else calls its methods
    # (tests/test_architecture.py holds the tree to it)
    owner: str = ""
    # "module:Class" of the record type a document is read into or written from, where there is one
    doc: str = ""


COLLECTIONS: tuple[Collection, ...] = (
    Collection(
        "channels",
        "channel_key: 'id<N>' when the numeric id is known at first sighting, else the lower-cased username;"
        " never changes afterwards",
        [Index([("usernames", ASCENDING)], "usernames"), Index([("tg_id", ASCENDING)], "tg_id", sparse=True)],
        owner="storage.repos.channels:ChannelRepo",
    ),
    Collection(
        "channel_aliases",
        "'u:<username>' or 'id:<N>' → {key}; every name a channel has ever had resolves to its key",
        [Index([("key", ASCENDING)], "key")],
        owner="storage.repos.channels:ChannelRepo",
    ),
    Collection(
        "channel_snapshots",
        "'<channel_key>/<seen_at ISO>' header snapshots (title, counters …) over time",
        [Index([("channel", ASCENDING), ("seen_at", DESCENDING)], "channel_seen")],
        owner="storage.repos.channels:ChannelRepo",
    ),
    Collection(
        "messages",
        "'<channel_key>/<msg_id>': the current version of each message",
        [
            Index([("channel", ASCENDING), ("msg_id", DESCENDING)], "channel_msg"),
            # newest-first order and date ranges use the epoch field; media are found through
            # `sightings`, so no index on `media.sha256` (every index slows every insert)
            Index([("date_ts", DESCENDING)], "date_ts"),
            Index([("deleted", ASCENDING)], "deleted"),
            Index([("grouped_id", ASCENDING)], "grouped_id", sparse=True),
        ],
        owner="storage.repos.messages:MessageRepo",
        doc="foundation.models:Message",
    ),
    Collection(
        "message_versions",
        "'<channel_key>/<msg_id>/v<n>': every superseded version, kept forever",
        [Index([("message", ASCENDING), ("version", ASCENDING)], "message_version")],
        owner="storage.repos.messages:MessageRepo",
        doc="foundation.models:Message",
    ),
    Collection(
        "raw_captures",
        "sha256 of the raw capture (HTML fragment or TL JSON): content-addressed evidence",
        [],
        owner="storage.repos.messages:MessageRepo",
    ),
    Collection(
        "media",
        "sha256 of the bytes: each distinct media hashed once",
        [Index([("md5", ASCENDING)], "md5", sparse=True), Index([("pdq", ASCENDING)], "pdq", sparse=True)],
        owner="storage.repos.media:MediaRepo",
    ),
    Collection(
        "sightings",
        "'<sha256>/<channel_key>/<msg_id>': where and when a media item was seen",
        [Index([("sha256", ASCENDING)], "sha256"), Index([("channel", ASCENDING)], "channel")],
        owner="storage.repos.media:MediaRepo",
    ),
    Collection(
        "checkpoints",
        "stream name, e.g. 'web:<channel_key>' or 'mtproto:<channel_key>'",
        [],
        owner="storage.repos.checkpoints:CheckpointRepo",
        doc="foundation.models:Checkpoint",
    ),
    Collection(
        "runs",
        "run id (uuid4 hex): one document per crawl/backfill/watch run",
        [Index([("started_at", DESCENDING)], "started_at"), Index([("target", ASCENDING)], "target")],
        owner="storage.repos.runs:RunRepo",
    ),
    Collection(
        "detection_jobs",
        "'<media sha256>/<detector>': one detection job per media and detector (storage.workqueue)",
        [
            Index([("state", ASCENDING), ("priority", DESCENDING), ("available_at", ASCENDING)], "ready_order"),
            Index([("state", ASCENDING), ("lease_until", ASCENDING)], "lease_expiry"),
        ],
        owner="storage.workqueue:WorkQueue",
    ),
    Collection(
        "crawl_tasks",
        "'<target>/<due epoch>': one crawl task per target per due time (storage.workqueue); done tasks are"
        " pruned after a week by the scheduler (each run keeps its record in `runs`)",
        [
            Index([("state", ASCENDING), ("priority", DESCENDING), ("available_at", ASCENDING)], "ready_order"),
            Index([("state", ASCENDING), ("lease_until", ASCENDING)], "lease_expiry"),
            Index([("state", ASCENDING), ("done_at", ASCENDING)], "done_age"),
            Index([("payload.target", ASCENDING), ("state", ASCENDING)], "target_state"),
        ],
        owner="storage.workqueue:WorkQueue",
    ),
    Collection(
        "hash_lists",
        "list name given at import: format, enabled flag, counts per signal type, version (bumped on change)",
        [],
        owner="storage.repos.hashlists:HashListRepo",
    ),
    Collection(
        "hash_entries",
        "'<list>/<signal type>/<value>': one known hash of one list",
        [
            Index([("signal_type", ASCENDING), ("value", ASCENDING)], "type_value"),
            Index([("list", ASCENDING), ("signal_type", ASCENDING)], "list_type"),
        ],
        owner="storage.repos.hashlists:HashListRepo",
    ),
    Collection(
        "hash_entry_hits",
        "'<entry id>|<sha256>': one media item a list entry matched, with when (runaway-entry quarantine)",
        [Index([("entry", ASCENDING), ("at", ASCENDING)], "entry_at")],
        owner="storage.repos.hashlists:HashListRepo",
    ),
    Collection(
        "verdicts",
        "'<job id>/<lease token>': one verdict per settled lease; never overwritten, a newer one supersedes",
        [Index([("sha256", ASCENDING), ("decided_at", DESCENDING)], "sha256_decided")],
        owner="storage.repos.verdicts:VerdictRepo",
        doc="foundation.models:Verdict",
    ),
    Collection(
        "alerts",
        "natural key of what raised it ('match/<list>/<sha256>', 'detection/<sha256>/<detector>' …)",
        [
            Index([("status", ASCENDING), ("raised_at", DESCENDING)], "status_raised"),
            Index([("sha256", ASCENDING)], "sha256"),
        ],
        owner="storage.repos.alerts:AlertRepo",
        doc="foundation.models:Alert",
    ),
    Collection(
        "audit",
        "uuid4 hex: one entry per read of collected evidence (actor, role, action, filter, result count)",
        [Index([("at", DESCENDING)], "at"), Index([("actor", ASCENDING), ("at", DESCENDING)], "actor_at")],
        owner="crawler.audit:AuditLog",
    ),
    Collection(
        "tokens",
        "HMAC-SHA256(server key file, API token) (the token itself is never stored; rows without scheme are"
        " legacy SHA-256 and authenticate nobody); token_id is the public handle",
        [Index([("token_id", ASCENDING)], "token_id", unique=True), Index([("name", ASCENDING)], "name")],
        owner="crawler.tokens:TokenRepo",
    ),
    Collection(
        "errors",
        "uuid4 hex: every recorded error (kind, message, url, run, record)",
        [Index([("run_id", ASCENDING)], "run_id"), Index([("at", DESCENDING)], "at")],
        owner="storage.repos.errors:ErrorRepo",
    ),
    Collection(
        "accounts",
        "account name chosen by the operator: one Telegram account of the pool; phone and session"
        " stored only encrypted (AES-GCM), flood_until as epoch seconds",
        [Index([("state", ASCENDING)], "state")],
        owner="storage.repos.accounts:AccountRepo",
    ),
    Collection(
        "authorizations",
        "uuid4 hex: a legal authorization (case, warrant, approver, scope, accounts, valid_until)"
        " that gates private joins",
        [Index([("scope", ASCENDING)], "scope"), Index([("case_id", ASCENDING)], "case_id")],
        owner="storage.repos.authorizations:AuthorizationRepo",
    ),
    Collection(
        "candidates",
        "canonical Telegram link (foundation.links.normalize: https://t.me/NAME or https://t.me/+HASH):"
        " one discovery candidate with its provenance, triage result and review status",
        [
            Index([("status", ASCENDING), ("priority", DESCENDING), ("first_seen_ts", ASCENDING)], "status_priority"),
            Index([("score", DESCENDING)], "score"),
        ],
        owner="crawler.discovery.repo:CandidateRepo",
    ),
    # -- evidence ledger (crawler/evidence) -------------------------------------------------------
    Collection(
        "ledger",
        "seq (int, 0-based, gapless = RFC 9162 leaf index): append-only evidence entries; payload is"
        " RFC 8785 canonical JSON, leaf_hash = SHA-256(0x00 || payload); cases/subjects/kind/at copy"
        " payload members for queries; seq is repeated as a field because the embedded server sorts _id as text",
        [
            Index([("seq", ASCENDING)], "seq", unique=True),
            Index([("cases", ASCENDING)], "cases"),
            Index([("subjects", ASCENDING)], "subjects"),
            Index([("kind", ASCENDING)], "kind"),
            Index([("capture_of", ASCENDING)], "capture_of", sparse=True),
        ],
        owner="crawler.evidence.ledger:Ledger",
    ),
    Collection(
        "ledger_nodes",
        "'<level>/<index>' (level >= 1): RFC 9162 complete-subtree hashes; level 0 is ledger.leaf_hash",
        [],
        owner="crawler.evidence.ledger:MongoNodeStore",
    ),
    Collection(
        "ledger_heads",
        "tree size (int): signed tree heads (Ed25519) with their optional RFC 3161 token or TSA failure",
        [Index([("size", ASCENDING)], "size")],
        owner="crawler.evidence.ledger:Ledger",
    ),
    Collection(
        "ledger_writer",
        "'writer': the single-writer lease (holder, until) and nodes_size",
        [],
        owner="crawler.evidence.ledger:Ledger",
    ),
    Collection(
        "evidence_records",
        "sha256 of the record's canonical JSON: the exact record bytes a capture entry binds",
        [],
        owner="crawler.evidence.capture:RecordStore",
    ),
    Collection(
        "case_items",
        "'<case>/<subject>': an item an investigator attached to a case (subject 'channel:<key>' or"
        " 'message:<channel_key>/<id>'), with the ledger seq of the attachment",
        [Index([("case", ASCENDING)], "case")],
        owner="crawler.evidence.cases:Cases",
    ),
    Collection(
        "targets",
        "canonical t.me link of the channel (foundation.links.normalize): one scheduled target; added by"
        " `tgwatch targets add` or by approving a discovered candidate; schedule fields optional",
        [Index([("group", ASCENDING)], "group", sparse=True), Index([("source", ASCENDING)], "source")],
        owner="storage.repos.targets:TargetRepo",
    ),
    Collection(
        "takedowns",
        "'TD-<n>' (n from counters/'takedowns'): one request to a platform with its items and their"
        " removal state; replaced whole under a short per-document lock (never `$set`: it holds datetimes)",
        [
            Index([("open", ASCENDING), ("next_check_ts", ASCENDING)], "open_due"),
            Index([("status", ASCENDING), ("created_ts", DESCENDING)], "status_created"),
            Index([("created_ts", DESCENDING)], "created"),
            Index([("digests", ASCENDING)], "digests"),
            Index([("item_ids", ASCENDING)], "item_ids"),
        ],
        owner="storage.repos.takedowns:TakedownRepo",
        doc="crawler.takedowns.models:TakedownRequest",
    ),
    Collection(
        "takedown_checks",
        "'<request>/<item_id>/<n>': the n-th re-check of one reported item (status, reason, page or TL"
        " request, time); insert-only",
        [Index([("request", ASCENDING), ("checked_at", DESCENDING)], "request_checked")],
        owner="storage.repos.takedowns:TakedownRepo",
    ),
    Collection(
        "counters",
        "counter name (e.g. 'takedowns'): {n} incremented atomically for readable ids",
        [],
        owner="storage.repos.takedowns:TakedownRepo",
    ),
    Collection(
        "sessions",
        "HMAC-SHA256(server secret, console session id): token (keyed digest of the token that signed"
        " in), created and seen (epoch seconds) for idle and absolute expiry; deleted at sign-out",
        [Index([("token", ASCENDING)], "token")],
        owner="storage.repos.sessions:SessionRepo",
    ),
    Collection(
        "case_members",
        "'<case>/<token name>': a token name that belongs to a case (investigators see, search and export"
        " only their cases), with who added it and the ledger seq of the change",
        [Index([("case", ASCENDING)], "case"), Index([("member", ASCENDING)], "member")],
        owner="storage.repos.case_members:CaseMemberRepo",
    ),
    # -- notifications (crawler/notify) -----------------------------------------------------------
    Collection(
        "alert_outbox",
        "alert key: an alert raised but not yet turned into deliveries (owner storage.repos.alerts:AlertRepo);"
        " removed once every matching rule's delivery is enqueued",
        [],
        owner="storage.repos.alerts:AlertRepo",
    ),
    Collection(
        "notify_rules",
        "rule name: which alerts go to which sink (owner storage.repos.notify:NotifyRuleRepo)",
        [],
        owner="storage.repos.notify:NotifyRuleRepo",
    ),
    Collection(
        "notify_deliveries",
        "'<alert key>/<rule name>': one delivery per alert per rule (storage.workqueue); never pruned, so a"
        " restart or a second dispatcher cannot send it twice",
        [
            Index([("state", ASCENDING), ("priority", DESCENDING), ("available_at", ASCENDING)], "ready_order"),
            Index([("state", ASCENDING), ("lease_until", ASCENDING)], "lease_expiry"),
        ],
        owner="storage.workqueue:WorkQueue",
    ),
    Collection(
        "notify_log",
        "uuid4 hex: every sending attempt and its outcome (sent, failed, dead, batched) with the SHA-256 of"
        " what left (owner storage.repos.notify:NotifyLogRepo)",
        [Index([("rule", ASCENDING), ("at_ts", DESCENDING)], "rule_at"), Index([("at_ts", DESCENDING)], "at")],
        owner="storage.repos.notify:NotifyLogRepo",
    ),
    Collection(
        "notify_rate",
        "rule name: epoch seconds of the messages sent in the current rate window (owner"
        " storage.repos.notify:NotifyRateRepo)",
        [],
        owner="storage.repos.notify:NotifyRateRepo",
    ),
    # -- growth over time (issue 19 item 5) -------------------------------------------------------
    Collection(
        "audience",
        "'<entity>|<source>|<at ISO>': one audience point (subscribers, members, online, monthly_users) of a"
        " channel snapshot or a triage result; entity is the channel key or the discovered username",
        [Index([("entity", ASCENDING), ("at_ts", ASCENDING)], "entity_at"), Index([("at_ts", ASCENDING)], "at")],
        owner="storage.repos.audience:AudienceRepo",
    ),
    # -- consent-based watchlist (crawler/watchlist) ------------------------------------------------
    Collection(
        "watchlist",
        "person reference: one consenting person's enrollment (consent record, case, expiry) and, while"
        " active, the AES-GCM-sealed face embeddings (never photos); a withdrawal erases the sealed field",
        [Index([("state", ASCENDING)], "state"), Index([("case", ASCENDING)], "case")],
        owner="storage.repos.watchlist:WatchlistRepo",
    ),
    # -- whole web pages behind the web captures (crawler/captures) ----------------------------------
    Collection(
        "web_pages",
        "sha256 of the page body: each distinct body stored once, zlib-compressed; the status line and"
        " headers of each fetch are in its ledger entry (item: page)",
        [],
        owner="storage.repos.pages:PageRepo",
    ),
)

BY_NAME = {c.name: c for c in COLLECTIONS}


async def apply(db: AsyncDatabase[dict[str, Any]]) -> dict[str, list[str]]:
    """Create missing collections and indexes; return what each collection has afterwards."""
    existing = set(await db.list_collection_names())
    result: dict[str, list[str]] = {}
    for coll in COLLECTIONS:
        if coll.name not in existing:
            await db.create_collection(coll.name)
        if coll.indexes:
            await db[coll.name].create_indexes([ix.model() for ix in coll.indexes])
        info = await db[coll.name].index_information()
        result[coll.name] = sorted(info)
    return result

"""Every ledger entry kind has its builder in ``crawler.evidence.entries``; the payloads they build are
the very bytes the call sites wrote as dict literals before (frozen here), so no entry changes shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crawler.evidence import entries as e
from crawler.evidence.canonical import canonicalize

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WHO = {"worker": "w1", "account": None, "run_id": "r1", "authorization": None, "cases": []}
RAW = {
    "raw_sha256": "ab" * 32,
    "raw_kind": "html",
    "source_url": "http://127.0.0.1/s/x",
    "tl_request": None,
    "captured_at": AT,
}


def same(built: dict[str, Any], literal: dict[str, Any]) -> None:
    assert canonicalize(e.jsonable(built)) == canonicalize(e.jsonable(literal))
    assert built["kind"] in e.KINDS


def test_capture_builders() -> None:
    media = [{"kind": "photo", "sha256": "cd" * 32, "url": "http://127.0.0.1/m.jpg"}]
    same(
        e.capture_message_entry(
            message="x/1",
            capture_of="x/1/v1",
            channel="x",
            version=1,
            source="web",
            permalink=None,
            record_sha256="ef" * 32,
            content_hash="c1",
            media=media,
            received_at=AT,
            raw=RAW,
            who=WHO,
        ),
        {
            "kind": "capture",
            "item": "message",
            "message": "x/1",
            "capture_of": "x/1/v1",
            "channel": "x",
            "version": 1,
            "source": "web",
            "permalink": None,
            "record_sha256": "ef" * 32,
            "content_hash": "c1",
            "media": media,
            "received_at": AT,
            **RAW,
            **WHO,
            "subjects": ["message:x/1", "channel:x"],
        },
    )
    same(
        e.capture_media_entry(
            sha256="cd" * 32, media_kind="photo", url="u", message="x/1", channel="x", received_at=AT, who=WHO
        ),
        {
            "kind": "capture",
            "item": "media",
            "sha256": "cd" * 32,
            "media_kind": "photo",
            "url": "u",
            "message": "x/1",
            "channel": "x",
            "received_at": AT,
            **WHO,
            "subjects": [f"media:{'cd' * 32}", "message:x/1", "channel:x"],
        },
    )
    same(
        e.capture_snapshot_entry(
            channel="x", state="ok", source="web", record_sha256="ef" * 32, seen_at=AT, raw=RAW, who=WHO
        ),
        {
            "kind": "capture",
            "item": "channel_snapshot",
            "channel": "x",
            "state": "ok",
            "source": "web",
            "record_sha256": "ef" * 32,
            "seen_at": AT,
            **RAW,
            **WHO,
            "subjects": ["channel:x"],
        },
    )
    same(
        e.capture_deletion_entry(channel="x", msg_ids=[4, 5], source="web", captured_at=AT, who=WHO),
        {
            "kind": "capture",
            "item": "deletion",
            "channel": "x",
            "messages": ["x/4", "x/5"],
            "source": "web",
            "captured_at": AT,
            **WHO,
            "subjects": ["channel:x", "message:x/4", "message:x/5"],
        },
    )


def test_authorization_join_refusal_and_case_builders() -> None:
    same(
        e.authorization_grant_entry(
            authorization="A1",
            case="C1",
            warrant="W1",
            approved_by="judge",
            scope=["channel:x"],
            accounts=("acc1",),
            valid_until="2099-01-01T00:00:00Z",
            actor="cli:op",
            note=None,
        ),
        {
            "kind": "authorization",
            "action": "grant",
            "authorization": "A1",
            "case": "C1",
            "warrant": "W1",
            "approved_by": "judge",
            "scope": ["channel:x"],
            "accounts": ["acc1"],
            "valid_until": "2099-01-01T00:00:00Z",
            "actor": "cli:op",
            "note": None,
            "cases": ["C1"],
        },
    )
    same(
        e.authorization_revoke_entry(authorization="A1", case=None, actor="cli:op", reason="done"),
        {
            "kind": "authorization",
            "action": "revoke",
            "authorization": "A1",
            "case": None,
            "actor": "cli:op",
            "reason": "done",
            "cases": [],
        },
    )
    same(
        e.refusal_entry(action="join", target="hash", scope=["invite:h", "channel:x"], accounts=["a"], run_id=None),
        {
            "kind": "refusal",
            "action": "join",
            "target": "hash",
            "scope": ["invite:h", "channel:x"],
            "accounts": ["a"],
            "run_id": None,
            "reason": "no active authorization covers the target for these accounts",
            "subjects": ["channel:x"],
        },
    )
    same(
        e.join_entry(authorization="A1", case="C1", account="a", invite="h", channel=None, joined_at=AT, run_id=None),
        {
            "kind": "join",
            "authorization": "A1",
            "case": "C1",
            "account": "a",
            "invite": "h",
            "channel": None,
            "joined_at": AT,
            "run_id": None,
            "cases": ["C1"],
            "subjects": [],
        },
    )
    same(
        e.case_attach_entry(case="C1", subject="message:x/1", actor="token:ana", note=None),
        {
            "kind": "case",
            "action": "attach",
            "case": "C1",
            "subject": "message:x/1",
            "actor": "token:ana",
            "note": None,
            "cases": ["C1"],
            "subjects": ["message:x/1"],
        },
    )
    same(
        e.case_member_entry(action="member_add", case="C1", member="ana", actor="cli:op"),
        {"kind": "case", "action": "member_add", "case": "C1", "member": "ana", "actor": "cli:op", "cases": ["C1"]},
    )


def test_notification_and_takedown_builders() -> None:
    sent = {"rule": "ops", "sink": "hook", "message": "m", "sha256": "ab" * 32, "alerts": ["k1"], "deliveries": ["d"]}
    same(
        e.notification_entry(sent),
        {**sent, "kind": "notification", "subjects": ["alert:k1"]},
    )
    same(
        e.takedown_entry(
            action="sent",
            request="TD-000001",
            platform="telegram",
            reason="other",
            case=None,
            actor="cli:op",
            at=AT,
            item_subjects=["channel:x"],
            fields={"via": "email:a@b", "x": None},
        ),
        {
            "kind": "takedown",
            "action": "sent",
            "request": "TD-000001",
            "platform": "telegram",
            "reason": "other",
            "case": None,
            "actor": "cli:op",
            "at": AT,
            "via": "email:a@b",
            "cases": [],
            "subjects": ["takedown:TD-000001", "channel:x"],
        },
    )

"""Capture entries through the ingest door, authorizations, cases, audit, export and bundle checks."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from crawler.audit import AuditLog
from crawler.evidence.authorizations import Authorizations
from crawler.evidence.capture import install
from crawler.evidence.cases import Cases
from crawler.evidence.export import DirectoryMediaSource, Exporter
from crawler.evidence.heads import HeadSigner
from crawler.evidence.hooks import audit_hook, verdict_hook
from crawler.evidence.ledger import Ledger
from crawler.evidence.signing import generate_key, load_private_key, load_public_key
from crawler.evidence.verify_bundle import verify_bundle
from crawler.evidence.verify_ledger import verify_ledger_async
from crawler.ingest import Ingest
from foundation.errors import NotAuthorized
from foundation.models import (
    Channel,
    ChannelRef,
    Decision,
    Deletion,
    MediaKind,
    MediaRef,
    Message,
    RawCapture,
    Source,
    Verdict,
    utcnow,
)
from storage.client import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PUBLIC = ChannelRef(username="public_news")
PRIVATE = ChannelRef(username="closed_group")


def synthetic_png(seed: int) -> bytes:
    img = Image.new("RGB", (64, 48), (seed * 40 % 256, 90, 160))
    for x in range(0, 64, 8):
        img.putpixel((x, seed % 48), (255, 255, 255))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def msg(ref: ChannelRef, i: int, text: str, media: bytes | None = None) -> Message:
    html = f"<div class='msg'>{text}</div>"
    refs = (
        [MediaRef(kind=MediaKind.PHOTO, url=f"http://cdn/{i}.png", sha256=hashlib.sha256(media).hexdigest())]
        if media
        else []
    )
    return Message(
        ref=ref,
        msg_id=i,
        source=Source.WEB,
        date=T0 + timedelta(minutes=i),
        text=text,
        html=html,
        media=refs,
        raw=RawCapture.of("html", html, url=f"http://sample/s/{ref.username}/{i}", fetched_at=T0),
    )


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    generate_key(tmp_path / "keys")
    return tmp_path / "keys"


@pytest.fixture
def ledger(store: Store, keys: Path) -> Ledger:
    signer = HeadSigner(load_private_key(keys / "evidence-ed25519.pem"), every_entries=50, every_seconds=3600)
    return Ledger(store, signer=signer)


def payloads(docs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [json.loads(str(d["payload"])) for d in docs]


async def test_capture_entries_come_through_the_ingest_door(ingest: Ingest, ledger: Ledger) -> None:
    install(ingest, ledger, worker="w1", account="acc1")
    install(ingest, ledger)  # idempotent
    assert [s.name for s in ingest.stages].count("ledger") == 1
    png = synthetic_png(1)
    header = Channel(
        ref=PUBLIC,
        source=Source.WEB,
        seen_at=T0,
        title="Public news",
        raw=RawCapture.of("html", "<header>Public news</header>", url="http://sample/public_news", fetched_at=T0),
    )
    await ingest.submit([header, msg(PUBLIC, 1, "first"), msg(PUBLIC, 2, "second", png)], run_id="run-1")
    await ingest.submit([msg(PUBLIC, 1, "first"), msg(PUBLIC, 2, "second", png)])  # unchanged: no new captures
    await ingest.submit([msg(PUBLIC, 1, "first, edited")])  # a new version is a new capture
    await ingest.submit([Deletion(ref=PUBLIC, msg_ids=[2], source=Source.WEB, seen_at=T0)])
    got = payloads(await ledger.entries())
    items = [(p["item"], p.get("message") or p.get("channel")) for p in got]
    assert items == [
        ("message", "public_news/1"),
        ("message", "public_news/2"),
        ("media", "public_news/2"),
        ("channel_snapshot", "public_news"),
        ("message", "public_news/1"),
        ("deletion", "public_news"),
    ]
    first = got[0]
    assert first["raw_sha256"] == msg(PUBLIC, 1, "first").raw.sha256  # type: ignore[union-attr]
    assert (
        first["source_url"] == "http://sample/s/public_news/1" and first["captured_at"] == "2026-03-01T12:00:00.000000Z"
    )
    assert (first["worker"], first["account"], first["run_id"], first["authorization"]) == ("w1", "acc1", "run-1", None)
    assert got[2]["sha256"] == hashlib.sha256(png).hexdigest()
    assert got[4]["version"] == 2 and got[4]["record_sha256"] != first["record_sha256"]


async def test_a_replayed_batch_gets_the_missing_capture_entries_once(ingest: Ingest, ledger: Ledger) -> None:
    batch = [msg(PUBLIC, 1, "one"), msg(PUBLIC, 2, "two")]
    await ingest.submit(batch)  # stored before the ledger stage existed (as if the stage had failed)
    assert await ledger.size() == 0
    install(ingest, ledger)
    await ingest.submit(batch)
    await ingest.submit(batch)
    assert [p["capture_of"] for p in payloads(await ledger.entries())] == ["public_news/1/v1", "public_news/2/v1"]


async def test_authorization_gate_refuses_with_a_ledger_entry_and_grants_cover_captures(
    ingest: Ingest, ledger: Ledger
) -> None:
    auth = Authorizations(ledger)
    with pytest.raises(NotAuthorized):
        await auth.require(["t.me/+AbCdEf123456"], ["acc1"], action="join", target="AbCdEf123456")
    refusal = payloads(await ledger.entries())[-1]
    assert refusal["kind"] == "refusal" and refusal["scope"] == ["invite:AbCdEf123456"]

    until = utcnow() + timedelta(days=30)
    grant_id = await auth.grant(
        case_id="C-7",
        warrant="W-2026-01",
        approved_by="judge A",
        scope=["t.me/+AbCdEf123456", "@Closed_Group"],
        accounts=["acc1"],
        valid_until=until,
        actor="officer",
    )
    grant, account = await auth.require(["invite:AbCdEf123456"], ["acc2", "acc1"], action="join", target="AbCdEf123456")
    assert (grant["_id"], account) == (grant_id, "acc1")
    await auth.record_join(grant, account, invite="AbCdEf123456", channel_key="closed_group")
    with pytest.raises(NotAuthorized):  # another account is not covered
        await auth.require(["channel:closed_group"], ["acc2"], action="read", target="closed_group")

    install(ingest, ledger, account="acc1")
    await ingest.submit([msg(PRIVATE, 5, "inside")])
    capture = payloads(await ledger.entries())[-1]
    assert capture["authorization"] == grant_id and capture["cases"] == ["C-7"]

    assert await auth.revoke(grant_id, actor="officer", reason="case closed")
    with pytest.raises(NotAuthorized):
        await auth.require(["channel:closed_group"], ["acc1"], action="read", target="closed_group")
    kinds = [(p["kind"], p.get("action")) for p in payloads(await ledger.entries())]
    assert kinds == [
        ("refusal", "join"),
        ("authorization", "grant"),
        ("join", None),
        ("refusal", "read"),
        ("capture", None),
        ("authorization", "revoke"),
        ("refusal", "read"),
    ]
    assert [d["_id"] for d in await auth.list(active_only=True)] == []


async def test_every_audited_read_and_verdict_is_a_ledger_entry(store: Store, ledger: Ledger) -> None:
    audit = AuditLog(store, hooks=[audit_hook(ledger)])
    await audit.record_access(
        actor="ana", role="investigator", action="messages.search", filter={"case": "C-1", "q": "x"}, result_count=3
    )
    await verdict_hook(ledger)(
        Verdict(sha256="ab" * 32, detector="default", decision=Decision.NEGATIVE, labels={"x": 0.1}, decided_at=T0),
        "job/1",
    )
    query, verdict = payloads(await ledger.entries())
    assert (query["kind"], query["actor"], query["role"], query["result_count"]) == ("query", "ana", "investigator", 3)
    assert query["filter"] == {"case": "C-1", "q": "x"} and query["cases"] == ["C-1"]
    assert (verdict["kind"], verdict["decision"], verdict["verdict_id"]) == ("verdict", "negative", "job/1")


async def _case_with_media(ingest: Ingest, ledger: Ledger, media_dir: Path) -> tuple[bytes, str]:
    install(ingest, ledger, account="acc1")
    auth = Authorizations(ledger)
    grant_id = await auth.grant(
        case_id="C-9",
        warrant="W-9",
        approved_by="judge B",
        scope=["@closed_group"],
        accounts=["acc1"],
        valid_until=utcnow() + timedelta(days=3),
        actor="officer",
    )
    png = synthetic_png(3)
    media_dir.mkdir()
    (media_dir / hashlib.sha256(png).hexdigest()).write_bytes(png)
    await ingest.submit([msg(PRIVATE, 1, "collected under the warrant", png), msg(PUBLIC, 7, "unrelated")])
    await ingest.submit([msg(PUBLIC, 8, "attached by hand")])
    await Cases(ledger).add("C-9", message="public_news/8", actor="officer")
    return png, grant_id


async def test_export_bundle_verifies_offline_and_tampering_is_caught(
    ingest: Ingest, ledger: Ledger, keys: Path, tmp_path: Path
) -> None:
    png, _ = await _case_with_media(ingest, ledger, tmp_path / "media")
    public = load_public_key((keys / "evidence-ed25519.pub.pem").read_bytes())
    exporter = Exporter(ledger, public, signer=ledger.signer, media=DirectoryMediaSource(tmp_path / "media"))
    out = tmp_path / "out" / "C-9.zip"
    result = await exporter.export("C-9", out, actor="officer", role="investigator")
    check = verify_bundle(out)
    assert check.ok, check.summary()
    assert (result.files, result.withheld) == (check.files, check.withheld) == (5, 0)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        kinds = [
            json.loads(json.loads(line)["payload"])["kind"] for line in zf.read("ledger/entries.jsonl").splitlines()
        ]
        how_to = zf.read("HOW-TO-VERIFY.txt").decode()
    assert f"captures/media/{hashlib.sha256(png).hexdigest()}" in names and "verify_bundle.py" in names
    assert kinds == ["authorization", "capture", "capture", "capture", "case", "export"]  # not the unrelated message
    assert result.key_id in how_to and "published" in how_to

    # the bundled script alone, in an empty directory, with nothing of tgwatch importable
    alone = tmp_path / "alone"
    alone.mkdir()
    with zipfile.ZipFile(out) as zf:
        (alone / "verify_bundle.py").write_bytes(zf.read("verify_bundle.py"))
    run = subprocess.run(
        [sys.executable, "-I", "verify_bundle.py", str(out)], cwd=alone, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr

    # change one byte of a captured file: caught, named, non-zero exit
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.startswith("records/"):
                data = data.replace(b"collected", b"c0llected")
            dst.writestr(info, data)
    bad = verify_bundle(tampered)
    assert not bad.ok and bad.item and bad.item.startswith("records/")
    rerun = subprocess.run([sys.executable, "-I", "verify_bundle.py", str(tampered)], cwd=alone, capture_output=True)
    assert rerun.returncode == 1


async def test_media_is_withheld_for_roles_without_the_right(
    ingest: Ingest, ledger: Ledger, keys: Path, tmp_path: Path
) -> None:
    png, grant_id = await _case_with_media(ingest, ledger, tmp_path / "media")
    public = load_public_key((keys / "evidence-ed25519.pub.pem").read_bytes())
    exporter = Exporter(ledger, public, signer=ledger.signer, media=DirectoryMediaSource(tmp_path / "media"))
    result = await exporter.export("C-9", tmp_path / "a.zip", actor="clerk", role="monitor")
    assert result.withheld == 1 and verify_bundle(tmp_path / "a.zip").ok
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert not any(n.startswith("captures/media/") for n in zf.namelist())
    withheld = [f for f in manifest["files"] if f["path"] is None]
    assert withheld[0]["sha256"] == hashlib.sha256(png).hexdigest() and "role" in withheld[0]["withheld"]

    await Authorizations(ledger).revoke(grant_id, actor="officer")
    result = await exporter.export("C-9", tmp_path / "b.zip", actor="officer", role="investigator")
    assert result.withheld == 1 and verify_bundle(tmp_path / "b.zip").ok


async def test_whole_ledger_verifies_after_the_flow(ingest: Ingest, ledger: Ledger, keys: Path, tmp_path: Path) -> None:
    await _case_with_media(ingest, ledger, tmp_path / "media")
    public = load_public_key((keys / "evidence-ed25519.pub.pem").read_bytes())
    exporter = Exporter(ledger, public, signer=ledger.signer)
    await exporter.export("C-9", tmp_path / "c.zip", actor="officer", role="investigator")
    heads = [{k: h[k] for k in ("size", "root_hash", "timestamp", "signature", "key_id")} for h in await ledger.heads()]
    result = await verify_ledger_async(ledger.iter_entries(), heads, public)
    assert result.ok and result.tree_heads >= 1, result.summary()


async def test_no_private_key_in_the_database_or_the_logs(
    ingest: Ingest, ledger: Ledger, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _case_with_media(ingest, ledger, tmp_path / "media")
    public = load_public_key((keys / "evidence-ed25519.pub.pem").read_bytes())
    await Exporter(ledger, public, signer=ledger.signer).export(
        "C-9", tmp_path / "d.zip", actor="o", role="investigator"
    )
    pem = (keys / "evidence-ed25519.pem").read_text()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    from cryptography.hazmat.primitives import serialization

    raw = load_private_key(keys / "evidence-ed25519.pem").private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    needles = [body, raw.hex(), body[10:40]]
    dump = []
    for name in await ledger.store.db.list_collection_names():
        async for doc in ledger.store.db[name].find({}):
            dump.append(json.dumps(doc, default=str))
    text = "\n".join(dump) + capsys.readouterr().out + capsys.readouterr().err
    with zipfile.ZipFile(tmp_path / "d.zip") as zf:
        text += "".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist())
    assert all(n not in text for n in needles)
    assert "PRIVATE KEY" not in text

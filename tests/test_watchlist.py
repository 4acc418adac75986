"""Consent-based watchlist: enrollment needs consent, a case and an expiry; only sealed embeddings
are stored; withdrawal erases them at once and is recorded; expiry withdraws by itself; the
feature is off unless a key is configured."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

import config
from config import Settings
from crawler.evidence.ledger import Ledger
from crawler.watchlist.sealing import SealBroken, Sealer, WatchlistOff
from crawler.watchlist.service import EnrollmentRefused, UnknownPerson, WatchlistService
from foundation.case_ids import InvalidCaseId
from foundation.models import utcnow
from storage.client import Store

KEY = base64.urlsafe_b64encode(b"k" * 32).decode()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return config.load(data_dir=tmp_path / "data", watchlist={"key": KEY})


@pytest.fixture
def photos() -> Path:
    pytest.importorskip("dlib", reason="the faces extra is not installed: pip install 'tgwatch[faces]'")
    from tests.faces_support import registry_face_photos

    return registry_face_photos()


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    pytest.importorskip("dlib", reason="the faces extra is not installed: pip install 'tgwatch[faces]'")
    from crawler.watchlist.faces import FaceModel

    return FaceModel()


def ledger_payloads(docs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [json.loads(str(d["payload"])) for d in docs]


async def test_the_feature_is_off_without_a_key(store: Store, tmp_path: Path) -> None:
    with pytest.raises(WatchlistOff, match="TGWATCH_WATCHLIST__KEY"):
        WatchlistService(store, config.load(data_dir=tmp_path), Ledger(store))
    with pytest.raises(WatchlistOff):
        WatchlistService(store, config.load(data_dir=tmp_path, watchlist={"key": "too-short"}), Ledger(store))


@pytest.mark.parametrize(
    ("consent", "case", "days", "error"),
    [
        (None, "C1", 30, "consent"),
        ("   ", "C1", 30, "consent"),
        ("DOC-1", None, 30, "case"),
        ("DOC-1", "C1", None, "expires"),
        ("DOC-1", "C1", -1, "not in the future"),
    ],
)
async def test_enrollment_is_refused_without_consent_case_or_future_expiry(
    store: Store, settings: Settings, consent: str | None, case: str | None, days: int | None, error: str
) -> None:
    service = WatchlistService(store, settings, Ledger(store))
    expires = None if days is None else utcnow() + timedelta(days=days)
    with pytest.raises(EnrollmentRefused, match=error):
        # no model is needed: the request is refused before any photo is read
        await service.enroll(
            person="p-1", consent_ref=consent, case=case, photos=[b"x"], expires_at=expires, actor="cli:t",
            model=None,  # type: ignore[arg-type]
        )  # fmt: skip
    with pytest.raises(InvalidCaseId):
        service.check_request(person="p-1", consent_ref="D", case="../x", expires_at=utcnow() + timedelta(days=1))
    with pytest.raises(EnrollmentRefused, match="pseudonymous"):
        service.check_request(person="Jane Doe", consent_ref="D", case="C1", expires_at=utcnow() + timedelta(days=1))
    assert await service.repo.list() == []
    assert await Ledger(store).entries() == []


def test_sealed_embeddings_open_only_for_their_person_and_key() -> None:
    import numpy as np

    vectors = np.random.default_rng(1).random((2, 128), dtype=np.float32)
    sealer = Sealer(b"k" * 32)
    blob = sealer.seal("p-1", vectors)
    assert np.array_equal(sealer.open("p-1", blob), vectors)
    assert vectors.tobytes() not in blob
    with pytest.raises(SealBroken):
        sealer.open("p-2", blob)  # moved onto another person's record
    with pytest.raises(SealBroken):
        Sealer(b"j" * 32).open("p-1", blob)


async def test_enroll_stores_only_sealed_embeddings_and_a_consent_record_then_withdraw_erases(
    store: Store, settings: Settings, photos: Path, model: object
) -> None:
    from tests.faces_support import ENROLLED, OTHER_PERSON

    ledger = Ledger(store)
    service = WatchlistService(store, settings, ledger)
    photo = (photos / ENROLLED).read_bytes()
    doc = await service.enroll(
        person="p-1", consent_ref="DOC-77", case="C1", photos=[photo], expires_at=utcnow() + timedelta(days=90),
        actor="cli:staff", model=model,  # type: ignore[arg-type]
    )  # fmt: skip
    assert doc["state"] == "active" and doc["embeddings"] == 1 and "sealed" not in doc
    raw = await service.repo.raw("p-1")
    assert raw is not None and set(raw) >= {"sealed", "consent_ref", "case", "enrolled_by", "expires_at"}
    stored = json.dumps(raw, default=str)
    assert base64.b64encode(photo[:300]).decode()[:200] not in stored, "the photo is never stored"
    listed = await service.list()
    assert [d["_id"] for d in listed] == ["p-1"] and all("sealed" not in d for d in listed)
    gallery = await service.sealed_gallery()
    assert [g["person"] for g in gallery] == ["p-1"]
    (entry,) = ledger_payloads(await ledger.entries())
    assert entry["kind"] == "watchlist" and entry["action"] == "enroll" and entry["consent_ref"] == "DOC-77"
    assert entry["cases"] == ["C1"] and entry["actor"] == "cli:staff" and entry["embeddings"] == 1
    assert raw["sealed"] not in json.dumps(entry)

    with pytest.raises(EnrollmentRefused, match="already used"):
        await service.enroll(
            person="p-1", consent_ref="DOC-78", case="C1", photos=[photo], expires_at=utcnow() + timedelta(days=9),
            actor="cli:staff", model=model,  # type: ignore[arg-type]
        )  # fmt: skip
    one_face = (photos / OTHER_PERSON).read_bytes()
    with pytest.raises(EnrollmentRefused, match="shows 0 faces"):
        from tests.faces_support import jpeg, scene

        await service.enroll(
            person="p-2", consent_ref="D", case="C1", photos=[one_face, jpeg(scene(3))],
            expires_at=utcnow() + timedelta(days=9), actor="cli:staff", model=model,  # type: ignore[arg-type]
        )  # fmt: skip
    assert await service.repo.raw("p-2") is None, "a refused enrollment leaves nothing"

    ended = await service.withdraw("p-1", actor="cli:staff", reason="she asked")
    assert ended["state"] == "withdrawn" and ended["embeddings_erased"] is True
    after = await service.repo.raw("p-1")
    assert after is not None and "sealed" not in after, "the store holds no embedding afterwards"
    assert await service.sealed_gallery() == []
    assert await service.active("p-1") is None
    payloads = ledger_payloads(await ledger.entries())
    assert [(p["action"], p.get("erased")) for p in payloads] == [("enroll", None), ("withdraw", True)]
    again = await service.withdraw("p-1", actor="cli:staff")
    assert again["state"] == "withdrawn" and len(await ledger.entries()) == 2, "withdrawing twice changes nothing"
    with pytest.raises(UnknownPerson):
        await service.withdraw("nobody", actor="cli:staff")


async def test_expiry_withdraws_by_itself(store: Store, settings: Settings, photos: Path, model: object) -> None:
    from tests.faces_support import ENROLLED

    ledger = Ledger(store)
    service = WatchlistService(store, settings, ledger)
    await service.enroll(
        person="p-9", consent_ref="DOC-9", case="C9", photos=[(photos / ENROLLED).read_bytes()],
        expires_at=utcnow() + timedelta(days=1), actor="cli:staff", model=model,  # type: ignore[arg-type]
    )  # fmt: skip
    assert [g["person"] for g in await service.sealed_gallery()] == ["p-9"]
    raw = await service.repo.raw("p-9")
    assert raw is not None
    past = utcnow() - timedelta(seconds=1)  # the consent's end has come
    await service.repo.replace({**raw, "expires_at": past, "expires_ts": past.timestamp()})
    assert await service.sealed_gallery() == [], "an expired enrollment is never handed out"
    after = await service.repo.raw("p-9")
    assert after is not None and after["state"] == "expired" and "sealed" not in after
    assert ledger_payloads(await ledger.entries())[-1]["action"] == "expire"


def tgwatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crawler", *args], capture_output=True, text=True, env=env, timeout=180,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip


def test_cli_enroll_list_withdraw(embedded_uri: str, tmp_path: Path, photos: Path) -> None:
    from tests.faces_support import ENROLLED

    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(
        TGWATCH_MONGODB_URI=embedded_uri, TGWATCH_DATABASE=f"t_wl_{uuid.uuid4().hex[:8]}",
        TGWATCH_DATA_DIR=str(tmp_path / "d"), TGWATCH_LOG_FORMAT="json",
    )  # fmt: skip
    photo = str(photos / ENROLLED)
    off = tgwatch(env, "watchlist", "enroll", "p-1", "--consent-ref", "D", "--case", "C1", "--photo", photo,
                  "--expires", "2099-01-01")  # fmt: skip
    assert off.returncode != 0 and "watchlist_off" in off.stderr
    env["TGWATCH_WATCHLIST__KEY"] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    no_consent = tgwatch(env, "watchlist", "enroll", "p-1", "--case", "C1", "--photo", photo, "--expires", "2099-01-01")
    assert no_consent.returncode != 0 and "consent" in no_consent.stderr
    no_case = tgwatch(
        env, "watchlist", "enroll", "p-1", "--consent-ref", "D", "--photo", photo, "--expires", "2099-01-01"
    )
    assert no_case.returncode != 0 and "case" in no_case.stderr
    done = tgwatch(env, "watchlist", "enroll", "p-1", "--consent-ref", "DOC-1", "--case", "C1", "--photo", photo,
                   "--expires", "2099-01-01", "--actor", "staff")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "active"
    listed = tgwatch(env, "watchlist", "list")
    assert listed.returncode == 0 and '"p-1"' in listed.stdout and "sealed" not in listed.stdout
    gone = tgwatch(env, "watchlist", "withdraw", "p-1", "--reason", "consent withdrawn")
    assert gone.returncode == 0 and json.loads(gone.stdout)["embeddings_erased"] is True
    assert '"withdrawn"' in tgwatch(env, "watchlist", "list").stdout


async def test_a_case_bundle_carries_match_records_and_never_embeddings(
    store: Store, settings: Settings, photos: Path, model: object, tmp_path: Path
) -> None:
    import zipfile

    from crawler.detection.service import DetectionService, VerdictIn
    from crawler.evidence.export import Exporter
    from crawler.evidence.heads import HeadSigner
    from crawler.evidence.hooks import verdict_hook
    from crawler.evidence.signing import generate_key, load_private_key, load_public_key
    from crawler.evidence.verify_bundle import verify_bundle
    from crawler.watchlist.gate import WatchlistReview
    from tests.faces_support import ENROLLED, jpeg, scene

    generate_key(tmp_path / "keys")
    signer = HeadSigner(load_private_key(tmp_path / "keys" / "evidence-ed25519.pem"), every_entries=50)
    ledger = Ledger(store, signer=signer)
    service = WatchlistService(store, settings, ledger)
    await service.enroll(
        person="p-5", consent_ref="DOC-5", case="C5", photos=[(photos / ENROLLED).read_bytes()],
        expires_at=utcnow() + timedelta(days=9), actor="cli:staff", model=model,  # type: ignore[arg-type]
    )  # fmt: skip
    sealed = (await service.repo.raw("p-5") or {})["sealed"]
    detection = DetectionService(
        store, config.load(data_dir=settings.data_dir, detection={"detectors": ["faces"]}),
        verdict_hook=verdict_hook(ledger), watchlist=WatchlistReview(service),
    )  # fmt: skip
    await detection.enqueue(detection.quarantine.put(jpeg(scene(77), 50)))
    (job,) = await detection.claim("t", detector="faces")
    hit = {"person": "p-5", "distance": 0.31, "box": (10, 20, 110, 120)}
    verdict = await detection.ack(
        job.job_id, job.token, VerdictIn.model_validate({"decision": "watchlist_match", "matches": [hit]})
    )
    assert verdict.matches[0]["case"] == "C5"
    await service.withdraw("p-5", actor="cli:staff")

    out = tmp_path / "C5.zip"
    public = load_public_key((tmp_path / "keys" / "evidence-ed25519.pub.pem").read_bytes())
    await Exporter(ledger, public, signer=signer).export("C5", out, actor="cli:staff", role="investigator")
    assert verify_bundle(out).ok
    with zipfile.ZipFile(out) as zf:
        text = "\n".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist() if not n.endswith(".py"))
    entries = [json.loads(line) for line in text.splitlines() if line.startswith('{"') and "payload" in line]
    payloads = [json.loads(e["payload"]) if isinstance(e.get("payload"), str) else e for e in entries]
    kinds = [(p.get("kind"), p.get("action") or p.get("decision")) for p in payloads]
    assert (
        ("watchlist", "enroll") in kinds
        and ("verdict", "watchlist_match") in kinds
        and ("watchlist", "withdraw") in kinds
    )
    (match,) = next(p for p in payloads if p.get("decision") == "watchlist_match")["matches"]
    assert match["person"] == "p-5" and match["distance"] == 0.31 and match["case"] == "C5"
    assert sealed not in text and sealed[:40] not in text, "no sealed embedding in a bundle"

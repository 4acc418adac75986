"""Enrollment, listing, withdrawal and expiry of consenting persons, and the gallery the detector reads.

The rails (docs/watchlist.md): nobody is enrolled without a consent reference, a case and an
expiry; only embeddings are kept (sealed; the photos are read once and dropped); every enrollment
and its end is a ledger entry; a withdrawal erases the embeddings at once and records that it did;
an expired enrollment is withdrawn the next time anything reads the watchlist (listing, the
gallery, a match), so an expiry needs no scheduler to take effect.
"""

from __future__ import annotations

import base64
import builtins
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from config import Settings
from crawler.evidence.entries import watchlist_entry
from crawler.watchlist.faces import MODEL_VERSION, FaceModel
from crawler.watchlist.sealing import Sealer, watchlist_key
from foundation.case_ids import validate_case_id
from foundation.errors import MediaError, TgwatchError
from foundation.models import utcnow
from storage.client import Doc, Store
from storage.repos.alerts import AlertRepo
from storage.repos.verdicts import VerdictRepo
from storage.repos.watchlist import SEALED, WatchlistRepo

PERSON_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
EXPIRY_ACTOR = "system:expiry"


class Appender(Protocol):
    async def append(self, entry: Mapping[str, Any]) -> int: ...


class EnrollmentRefused(TgwatchError):
    kind = "enrollment_refused"


class UnknownPerson(TgwatchError):
    kind = "unknown_person"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class WatchlistService:
    def __init__(self, store: Store, settings: Settings, ledger: Appender) -> None:
        self.settings = settings.watchlist
        self._sealer = Sealer(watchlist_key(settings))  # WatchlistOff when not configured
        self.repo = WatchlistRepo(store)
        self.repo_store = store
        self._ledger = ledger

    # -- enrollment ------------------------------------------------------------------------------
    @staticmethod
    def check_request(*, person: str, consent_ref: str | None, case: str | None, expires_at: datetime | None) -> None:
        """Refuse an enrollment before any photo is read: consent, case and expiry are required."""
        if not consent_ref or not consent_ref.strip():
            raise EnrollmentRefused("enrollment needs --consent-ref: the reference of the person's signed consent")
        if len(consent_ref) > 300:
            raise EnrollmentRefused("--consent-ref is at most 300 characters (a document reference, not the document)")
        if not case:
            raise EnrollmentRefused("enrollment needs --case: matches are shown only to the case's members")
        validate_case_id(case)
        if PERSON_RE.fullmatch(person) is None:
            raise EnrollmentRefused(
                f"invalid person reference {person[:40]!r}: 1-64 ASCII letters, digits, '.', '_' or '-'"
                " (a pseudonymous reference, never a name)"
            )
        if expires_at is None:
            raise EnrollmentRefused("enrollment needs --expires: consent is given for a limited time")
        if _utc(expires_at) <= utcnow():
            raise EnrollmentRefused(f"--expires {expires_at.isoformat()} is not in the future")

    async def enroll(
        self,
        *,
        person: str,
        consent_ref: str | None,
        case: str | None,
        photos: Sequence[bytes],
        expires_at: datetime | None,
        actor: str,
        model: FaceModel,
    ) -> Doc:
        self.check_request(person=person, consent_ref=consent_ref, case=case, expires_at=expires_at)
        assert consent_ref is not None and case is not None and expires_at is not None
        if not photos:
            raise EnrollmentRefused("enrollment needs at least one --photo")
        await self.expire()
        if await self.repo.get(person) is not None:
            raise EnrollmentRefused(f"person reference {person!r} is already used (a new consent gets a new reference)")
        vectors = []
        for number, data in enumerate(photos, 1):
            if len(data) > self.settings.max_photo_bytes:
                raise EnrollmentRefused(f"photo {number} is larger than {self.settings.max_photo_bytes} bytes")
            try:
                faces = model.faces_in(data)
            except MediaError as exc:
                raise EnrollmentRefused(f"photo {number} cannot be read: {exc.message}") from None
            if len(faces) != 1:
                raise EnrollmentRefused(
                    f"photo {number} shows {len(faces)} faces; each photo must show the person alone, face visible"
                )
            vectors.append(faces[0].embedding)
        matrix = np.vstack(vectors).astype(np.float32)
        expires = _utc(expires_at)
        seq = await self._ledger.append(
            watchlist_entry(
                action="enroll",
                person=person,
                case=case,
                actor=actor,
                consent_ref=consent_ref,
                expires_at=expires,
                photos=len(photos),
                embeddings=len(matrix),
            )
        )
        doc: Doc = {
            "_id": person,
            "state": "active",
            "case": case,
            "consent_ref": consent_ref,
            "enrolled_by": actor,
            "enrolled_at": utcnow(),
            "expires_at": expires,
            "expires_ts": expires.timestamp(),
            "embeddings": len(matrix),
            "model": MODEL_VERSION,
            "consent_seq": seq,
            SEALED: base64.b64encode(self._sealer.seal(person, matrix)).decode("ascii"),
        }
        if not await self.repo.insert(doc):
            raise EnrollmentRefused(f"person reference {person!r} was enrolled meanwhile")
        return {k: v for k, v in doc.items() if k != SEALED}

    # -- reading ---------------------------------------------------------------------------------
    async def list(self) -> list[Doc]:
        """Every enrollment, active or withdrawn, without embeddings."""
        await self.expire()
        return await self.repo.list()

    async def sealed_gallery(self) -> builtins.list[dict[str, str]]:
        """What the detector receives: reference and the *sealed* embeddings of each active
        enrollment (it opens them with its own copy of the key). Not the case: the detector has no
        use for it, and a detector token must not learn which case protects whom."""
        await self.expire()
        now = utcnow().timestamp()
        return [
            {"person": str(d["_id"]), "sealed": str(d[SEALED])}
            for d in await self.repo.sealed_active()
            if d.get(SEALED) and float(d.get("expires_ts") or 0) > now
        ]

    async def active(self, person: str) -> Doc | None:
        """The active enrollment of ``person`` (None when withdrawn, expired or never enrolled)."""
        await self.expire()
        doc = await self.repo.get(person)
        return doc if doc is not None and doc.get("state") == "active" else None

    # -- ending ----------------------------------------------------------------------------------
    async def withdraw(self, person: str, *, actor: str, reason: str | None = None, action: str = "withdraw") -> Doc:
        """Erase the embeddings now and record it; the consent history stays. Repeating is a no-op."""
        doc = await self.repo.raw(person)
        if doc is None:
            raise UnknownPerson(f"no enrollment {person!r}")
        if doc.get("state") != "active":
            await self._forget_matches(person, actor)  # a repeat finishes an interrupted withdrawal
            return {k: v for k, v in doc.items() if k != SEALED}
        ended: Doc = {k: v for k, v in doc.items() if k != SEALED}
        ended.update(
            state="withdrawn" if action == "withdraw" else "expired",
            ended_at=utcnow(),
            ended_by=actor,
            end_reason=reason,
            embeddings_erased=True,
        )
        await self.repo.replace(ended)
        seq = await self._ledger.append(
            watchlist_entry(
                action=action, person=person, case=str(doc["case"]), actor=actor, erased=True, reason=reason
            )
        )
        ended["end_seq"] = seq
        await self.repo.replace(ended)
        await self._forget_matches(person, actor)
        return ended

    async def _forget_matches(self, person: str, actor: str) -> None:
        """Every other copy of her matches: the review queue stops showing her (an alert left with
        no match is closed) and the verdicts forget her; the ledger keeps its record as evidence."""
        await AlertRepo(self.repo_store).withdraw_person(person, by=actor)
        await VerdictRepo(self.repo_store).withdraw_person(person)

    async def expire(self) -> builtins.list[str]:
        """Withdraw every enrollment past its expiry; the references withdrawn."""
        refs = await self.repo.expired_refs(utcnow().timestamp())
        for ref in refs:
            await self.withdraw(ref, actor=EXPIRY_ACTOR, reason="consent expired", action="expire")
        return refs

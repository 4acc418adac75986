"""Who may see a case's content and a media item's bytes: the one function every door calls.

DESIGN §9: the API (``/media/{sha}/bytes``, ``/cases/{case}/bundle``, case-filtered search), the
console and bundle export all ask :class:`CaseAccess`, so a door cannot be more generous than
another (a bundle used to carry bytes the media endpoint refused).

The rules:

- an **admin** opens every case; an **investigator** only the cases whose members list the token
  name (``tgwatch case members add``); an **auditor** may export any case's bundle, with the
  auditor content policy (:func:`bundle_content`); monitors and detectors open none;
- media bytes need an active authorization that covers the media (``media:<sha256>``) or a channel
  it was seen in (``channel:<key>``) and lists the caller's token name in ``accounts``; for an
  investigator that authorization's case must also be one of theirs. Only investigators and admins
  ever receive bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from crawler.tokens import Principal, Role
from storage.client import Doc, Store, translate_errors
from storage.repos.authorizations import AuthorizationRepo, channel_scope
from storage.repos.case_members import CaseMemberRepo

MEDIA_ROLES = frozenset({Role.INVESTIGATOR, Role.ADMIN})


def media_scope(sha256: str) -> str:
    return f"media:{sha256}"


@dataclass(frozen=True)
class BundleContent:
    """What a bundle carries beyond ledger entries, proofs, the signed head and digests."""

    #: ``records/`` (message and snapshot records: message text) and ``captures/`` (raw HTML/JSON)
    content: bool
    #: ``captures/media/``: still decided per item by :meth:`CaseAccess.media_grant`
    media: bool
    reason: str | None = None


AUDITOR_CONTENT = BundleContent(
    content=False, media=False, reason="auditor bundles hold ledger entries, proofs and digests only"
)


def bundle_content(role: str) -> BundleContent:
    """The content policy of a recipient role. Auditors check the chain of custody, not the evidence."""
    if role == Role.AUDITOR.value:
        return AUDITOR_CONTENT
    return BundleContent(content=True, media=True)


class CaseAccess:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.members = CaseMemberRepo(store)
        self.authorizations = AuthorizationRepo(store)

    async def cases_of(self, who: Principal) -> list[str] | None:
        """The cases ``who`` acts within; None means every case (admin)."""
        if who.role is Role.ADMIN:
            return None
        if who.role is Role.INVESTIGATOR:
            return await self.members.cases_of(who.name)
        return []

    async def may_open_case(self, who: Principal, case_id: str) -> bool:
        """May ``who`` read (search within, export) this case at all? Content rules still apply."""
        if who.role in {Role.ADMIN, Role.AUDITOR}:
            return True
        if who.role is Role.INVESTIGATOR:
            return await self.members.is_member(case_id, who.name)
        return False

    async def media_channels(self, sha256: str) -> list[str]:
        """Channels a media item was seen in (what a covering authorization may name)."""
        with translate_errors("read sightings"):
            found = await self._store["sightings"].distinct("channel", {"sha256": sha256})
            found += await self._store["messages"].distinct("channel", {"media": {"$elemMatch": {"sha256": sha256}}})
        return sorted({c for c in found if isinstance(c, str)})

    async def media_grant(self, who: Principal, sha256: str, channels: list[str] | None = None) -> Doc | None:
        """The active authorization under which ``who`` may receive these bytes, or None.

        The media endpoint, the console and bundle export all call this; nothing else decides it.
        """
        if who.role not in MEDIA_ROLES:
            return None
        if channels is None:
            channels = await self.media_channels(sha256)
        scopes = [media_scope(sha256), *(channel_scope(c) for c in channels)]
        grants = await self.authorizations.covering_all(scopes, who.name)
        mine = await self.cases_of(who)
        for grant in grants:
            if mine is None or grant.get("case_id") in mine:
                return grant
        return None

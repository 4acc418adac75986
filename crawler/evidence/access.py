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
  ever receive bytes;
- a **monitor** may see the blurred greyscale triage thumbnail (never the bytes, never the reveal)
  of a media item that raised a hash-list match or detection alert, when every channel it was seen
  in is readable to them (:meth:`CaseAccess.triage_grant`); watchlist matches stay with their case;
- the text of a **case-restricted channel** (a private chat: see :meth:`CaseAccess.visible_channels`)
  is readable only by admins and by investigators who are members of a case whose authorization
  names the channel; for everyone else its messages, context, versions, media sightings and
  channel pages are filtered out of lists and refused on direct reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from crawler.tokens import Principal, Role
from storage.client import Doc, Store
from storage.repos.alerts import AlertRepo
from storage.repos.authorizations import AuthorizationRepo, channel_scope
from storage.repos.case_members import CaseMemberRepo
from storage.repos.channels import ChannelRepo
from storage.repos.media import MediaRepo
from storage.repos.messages import MessageRepo

MEDIA_ROLES = frozenset({Role.INVESTIGATOR, Role.ADMIN})
#: alert kinds whose media a monitor may triage as a blurred thumbnail (``watchlist_match`` is not one:
#: a face-watchlist match is the case's alone)
TRIAGE_KINDS = frozenset({"hash_match", "detection"})


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


@dataclass(frozen=True)
class ChannelView:
    """What one principal may read: every channel except ``hidden`` (case-restricted, not theirs)."""

    hidden: frozenset[str] = field(default_factory=frozenset)

    def may_read(self, channel: str) -> bool:
        return channel not in self.hidden

    def readable(self, channels: Iterable[str]) -> list[str]:
        return [c for c in channels if c not in self.hidden]

    def readable_messages(self, keys: Iterable[str]) -> list[str]:
        """Message keys (``<channel>/<msg_id>``) whose channel is readable."""
        return [k for k in keys if k.rsplit("/", 1)[0] not in self.hidden]


#: an admin's view (and a view with no case-restricted channel): nothing hidden
EVERYTHING = ChannelView()


class CaseAccess:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.members = CaseMemberRepo(store)
        self.authorizations = AuthorizationRepo(store)
        self.channels = ChannelRepo(store)

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
        found = await MediaRepo(self._store).sighting_channels(sha256)
        found += await MessageRepo(self._store).channels_with_media(sha256)
        return sorted(set(found))

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

    async def triage_grant(self, who: Principal, sha256: str, channels: list[str] | None = None) -> Doc | None:
        """The alert under which a monitor may see the blurred triage thumbnail of ``sha256``, or None.

        Why: the console's morning triage is a monitor's job, and a blurred greyscale 160-pixel
        thumbnail made in memory is designed for it; the bytes and the reveal stay with
        :meth:`media_grant`. Only media that raised a hash-list match or a detection alert qualify,
        and only when no channel the media was seen in is hidden from the monitor (a private chat
        of a case is the case's).
        """
        if who.role is not Role.MONITOR:
            return None
        if channels is None:
            channels = await self.media_channels(sha256)
        view = await self.visible_channels(who)
        if any(not view.may_read(c) for c in channels):
            return None
        for alert in await AlertRepo(self._store).for_media(sha256):
            if alert.get("kind") in TRIAGE_KINDS:
                return alert
        return None

    async def restricted_channels(self) -> dict[str, set[str]]:
        """Case-restricted channel key → the cases whose authorization names it (may be empty).

        A channel is case-restricted when it is a **private chat**: it has never been seen with a
        public username (``ChannelRepo.private_keys``). Anyone can read a chat that has a public
        username on t.me, so such a channel stays public even when an authorization's scope names
        it; a chat without one is only readable as a member, which the private-read gate allows
        only under an authorization naming ``channel:<key>`` (``Backfill(private_gate=...)``).
        The **discussion group of a public channel** (``ChannelRepo.public_discussions``) is not
        case-restricted: Telegram shows a public channel's comments to any reader, and without an
        authorization naming the group nothing but those comments can have been read from it (its
        own history is behind the private-read gate). A group an authorization names stays
        restricted to its cases, comments included.
        Authorizations count whether active, expired or revoked: what was collected under one
        belongs to its case (its capture entries name it), and a revocation stops collection, not
        the case's own review.
        """
        keys = await self.channels.private_keys()
        if not keys:
            return {}
        covering = await self.authorizations.cases_naming_channels(keys)
        # comments of a public channel are public: its discussion group is not a private chat,
        # unless an authorization names the group (then it may hold what was read as a member)
        public = await self.channels.public_discussions([k for k in keys if not covering.get(k)])
        return {k: covering.get(k, set()) for k in keys if k not in public}

    async def visible_channels(self, who: Principal) -> ChannelView:
        """THE rule for reading collected text: which channels ``who`` may not read.

        Admins read everything; an investigator reads every public channel and the private chats a
        case of theirs covers; every other role reads no private chat. The API (search, exports,
        channel, message, context and media routes) and the console use this one answer.
        """
        if who.role is Role.ADMIN:
            return EVERYTHING
        restricted = await self.restricted_channels()
        if not restricted:
            return EVERYTHING
        mine = set(await self.cases_of(who) or [])
        return ChannelView(frozenset(k for k, cases in restricted.items() if not cases & mine))

    async def may_read_channel(self, who: Principal, channel: str) -> bool:
        return (await self.visible_channels(who)).may_read(channel)

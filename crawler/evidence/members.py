"""Case membership changes: each is a ledger ``case`` entry of the case it changes.

Membership decides what an investigator sees (:mod:`crawler.evidence.access`), so who added or
removed whom, and when, belongs to the case's chain of custody exactly as its authorizations do.
"""

from __future__ import annotations

from crawler.evidence.entries import case_member_entry
from crawler.evidence.ledger import Ledger
from crawler.tokens import TokenRepo
from foundation.case_ids import validate_case_id
from foundation.errors import NotFound
from foundation.logs import get_logger
from storage.client import Doc
from storage.repos.case_members import CaseMemberRepo

log = get_logger(__name__)


class CaseMembers:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.repo = CaseMemberRepo(ledger.store)
        self.tokens = TokenRepo(ledger.store)

    async def _entry(self, action: str, case_id: str, member: str, actor: str) -> int:
        return await self.ledger.append(case_member_entry(action=action, case=case_id, member=member, actor=actor))

    async def add(self, case_id: str, member: str, *, actor: str) -> bool:
        """Add a token name to a case; False when it already was a member (nothing is written)."""
        validate_case_id(case_id)
        names = {d["name"] for d in await self.tokens.list() if d.get("revoked_at") is None}
        if member not in names:
            raise NotFound(f"no active token named {member!r}: create it first (tgwatch tokens create)")
        if await self.repo.is_member(case_id, member):
            return False
        seq = await self._entry("member_add", case_id, member, actor)
        added = await self.repo.add(case_id, member, added_by=actor, seq=seq)
        log.info("case member added", case=case_id, member=member)
        return added

    async def remove(self, case_id: str, member: str, *, actor: str) -> bool:
        validate_case_id(case_id)
        if not await self.repo.is_member(case_id, member):
            return False
        await self._entry("member_remove", case_id, member, actor)
        removed = await self.repo.remove(case_id, member)
        log.info("case member removed", case=case_id, member=member)
        return removed

    async def list(self, case_id: str | None = None) -> list[Doc]:
        if case_id is None:
            return await self.repo.all()
        return await self.repo.members(validate_case_id(case_id))

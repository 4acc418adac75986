"""The authorization service: grant, list, revoke, and the gate every private join and read passes.

It grows helper-8's minimal ``authorizations`` collection (``storage.repos.authorizations``) without
changing it: same documents (``case_id``, ``warrant_ref``, ``approver``, ``scope`` as
``invite:<hash>`` / ``channel:<key>``, ``accounts``, ``valid_until`` epoch seconds, ``revoked``), same
repository, so ``AuthorizationRepo.covering`` keeps working. What is added:

- every grant and revoke is a ledger ``authorization`` entry (the case's chain of custody starts at
  its legal basis);
- :meth:`Authorizations.require` is the gate: it returns the covering grant and the account allowed
  to act, or writes a ledger ``refusal`` entry and raises ``NotAuthorized`` (before any request is
  sent to Telegram);
- :meth:`Authorizations.record_join` writes the ``join`` entry once a join succeeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from crawler.evidence.entries import authorization_grant_entry, authorization_revoke_entry, join_entry, refusal_entry
from crawler.evidence.ledger import Ledger
from foundation.case_ids import validate_case_id
from foundation.errors import NotAuthorized
from foundation.logs import get_logger
from foundation.models import utcnow
from storage.client import Doc
from storage.repos.authorizations import AuthorizationRepo, channel_scope, invite_scope

log = get_logger(__name__)


def normalize_scope(item: str) -> str:
    """``invite:H``/``channel:K`` kept; ``t.me/+H``/``joinchat/H`` → invite; ``@name``/``t.me/name`` → channel."""
    text = item.strip()
    if text.startswith(("invite:", "channel:")):
        kind, _, value = text.partition(":")
        return f"{kind}:{value.lower() if kind == 'channel' else value}"
    tail = text.rstrip("/").rsplit("/", 1)[-1]
    if "/+" in text or "joinchat/" in text or tail.startswith("+"):
        return invite_scope(tail.lstrip("+"))
    return channel_scope(tail.lstrip("@").lower())


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Authorizations:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.repo = AuthorizationRepo(ledger.store)

    async def grant(
        self,
        *,
        case_id: str,
        warrant: str,
        approved_by: str,
        scope: Sequence[str],
        accounts: Sequence[str],
        valid_until: datetime,
        actor: str,
        note: str | None = None,
    ) -> str:
        """Store a new authorization and its ledger entry; returns its id."""
        validate_case_id(case_id)
        if valid_until.tzinfo is None:
            raise ValueError("valid_until must be timezone-aware")
        if not scope or not accounts:
            raise ValueError("an authorization names at least one scope item and one account")
        scopes = [normalize_scope(s) for s in scope]
        until = valid_until.timestamp()
        auth_id = await self.repo.add(
            case_id=case_id,
            warrant_ref=warrant,
            approver=approved_by,
            scope=scopes,
            accounts=list(accounts),
            valid_until=until,
            note=note,
        )
        await self.ledger.append(
            authorization_grant_entry(
                authorization=auth_id,
                case=case_id,
                warrant=warrant,
                approved_by=approved_by,
                scope=scopes,
                accounts=accounts,
                valid_until=_iso(until),
                actor=actor,
                note=note,
            )
        )
        log.info("authorization granted", authorization=auth_id, case=case_id, scope_items=len(scopes))
        return auth_id

    async def revoke(self, auth_id: str, *, actor: str, reason: str | None = None) -> bool:
        grant = await self.repo.get(auth_id)
        if grant is None or grant.get("revoked"):
            return False
        await self.repo.revoke(auth_id)
        await self.ledger.append(
            authorization_revoke_entry(authorization=auth_id, case=grant.get("case_id"), actor=actor, reason=reason)
        )
        log.info("authorization revoked", authorization=auth_id)
        return True

    async def list(self, *, case_id: str | None = None, active_only: bool = False) -> list[Doc]:
        return await self.repo.list(case_id=case_id, active_only=active_only)

    async def require(
        self,
        scopes: Sequence[str],
        accounts: Sequence[str],
        *,
        action: str,
        target: str,
        run_id: str | None = None,
    ) -> tuple[Doc, str]:
        """The covering grant and the first account it allows, or a ``refusal`` entry + ``NotAuthorized``.

        ``action`` is ``join`` (``messages.importChatInvite``) or ``read`` (history of a private chat);
        ``target`` names what was asked for (invite hash or channel key).
        """
        wanted = [normalize_scope(s) for s in scopes]
        for account in accounts:
            grant = await self.repo.covering(wanted, account)
            if grant is not None:
                return grant, account
        await self.ledger.append(
            refusal_entry(action=action, target=target, scope=wanted, accounts=accounts, run_id=run_id)
        )
        log.warning("refused: not authorized", action=action, accounts=list(accounts))
        raise NotAuthorized(
            f"no active authorization covers {action} of {target[:4]}… for account(s) {', '.join(accounts) or '-'}"
        )

    async def record_join(
        self,
        grant: Doc,
        account: str,
        *,
        invite: str | None = None,
        channel_key: str | None = None,
        run_id: str | None = None,
    ) -> int:
        """The ``join`` entry, written once the join succeeded."""
        return await self.ledger.append(
            join_entry(
                authorization=grant["_id"],
                case=grant.get("case_id"),
                account=account,
                invite=invite,
                channel=channel_key,
                joined_at=utcnow(),
                run_id=run_id,
            )
        )

"""Who may see what: the audit call every evidence read makes, CSRF tokens, the media-bytes gate.

Shared by the API and the console so both doors apply the same rules.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crawler.audit import AuditLog
from crawler.evidence.access import CaseAccess
from crawler.evidence.redaction import readership
from crawler.investigate.ops import OpsService
from crawler.investigate.service import InvestigateService
from crawler.routes import auth
from crawler.routes.context import AUDIT, STORE
from crawler.tokens import Principal
from foundation.errors import NotAuthorized
from storage.client import Doc, Store

SESSION_COOKIE = auth.SESSION_COOKIE
CSRF_HEADER = auth.CSRF_HEADER
CSRF_FIELD = "csrf_token"


# Services are a few collection handles each: built per request, because an aiohttp app's state
# must not change once it has started.
async def investigate(request: web.Request, who: Principal, *, via: str = "api") -> InvestigateService:
    """The queries as ``who`` may see them: private chats of other cases hidden (``CaseAccess``).

    A direct read of a hidden channel is audited (``channel.refused``) and answered 403.
    """
    view = await CaseAccess(request.app[STORE]).visible_channels(who)

    async def refused(channel: str) -> None:
        await audit(request, who, "channel.refused", target=channel, via=via, result_count=0)

    readers = await readership(request.app[STORE], who)
    return InvestigateService(request.app[STORE], view, refused, readers=readers)


def ops(request: web.Request) -> OpsService:
    return OpsService(request.app[STORE])


def audit_log(request: web.Request) -> AuditLog:
    return request.app[AUDIT]


async def audit(
    request: web.Request,
    who: Principal,
    action: str,
    *,
    filter: dict[str, Any] | None = None,
    result_count: int | None = None,
    target: str | None = None,
    via: str = "api",
) -> Doc:
    """Record one read of evidence (every evidence endpoint calls this before answering)."""
    return await audit_log(request).record_access(
        actor=who.actor,
        role=who.role.value,
        action=action,
        filter=filter,
        result_count=result_count,
        via=via,
        target=target,
    )


# -- CSRF ----------------------------------------------------------------------------------------
def csrf_key(request: web.Request) -> bytes:
    """A key file under data_dir (read once per app): tokens survive restarts and every worker shares them."""
    return request.app[auth.AUTH].csrf_key


def csrf_token(request: web.Request, session_id: str) -> str:
    """The synchronizer token of one console session (see ``crawler.api.auth.csrf_token``).

    Tied to the server-side session (a new sign-in gets a new token), unguessable without the
    server key, and stateless, so any worker process can check it.
    """
    return auth.csrf_token(csrf_key(request), session_id)


def csrf_valid(request: web.Request, session_id: str | None, presented: str | None) -> bool:
    """Compared as bytes: a non-ASCII value is simply wrong (403), never an error."""
    return auth.csrf_valid(csrf_key(request), session_id, presented)


def require_csrf_for_cookie_auth(request: web.Request, presented: str | None) -> None:
    """A state change authenticated by the session cookie must carry the session's CSRF token.

    Calls with an ``Authorization`` header are not forgeable by another site, so they need none.
    """
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        return
    if not csrf_valid(request, request.cookies.get(SESSION_COOKIE), presented):
        raise web.HTTPForbidden(
            text='{"status": 403, "error": "missing or invalid CSRF token"}', content_type="application/json"
        )


# -- media bytes ---------------------------------------------------------------------------------
async def media_authorization(store: Store, who: Principal, sha256: str, channels: list[str]) -> Doc | None:
    """The active case authorization that lets ``who`` see these bytes, or None.

    Delegates to :meth:`crawler.evidence.access.CaseAccess.media_grant`, the one rule bundle export
    applies too (an investigator also needs membership of the authorization's case).
    """
    return await CaseAccess(store).media_grant(who, sha256, channels)


# -- cases ---------------------------------------------------------------------------------------
async def require_case(request: web.Request, who: Principal, case_id: str | None, *, via: str = "api") -> None:
    """A search or export narrowed to a case needs that case to be open to ``who`` (an audited refusal)."""
    if case_id is None or await CaseAccess(request.app[STORE]).may_open_case(who, case_id):
        return
    await audit(request, who, "case.refused", target=case_id, via=via, result_count=0)
    raise NotAuthorized(f"you are not a member of case {case_id}", code="access.not_member", params={"case": case_id})

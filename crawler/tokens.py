"""API tokens and roles.

A token is shown once, at creation; only HMAC-SHA256(server secret, token) is stored (as the
document ``_id``, so a lookup is one read by key). The secret is a 0600 key file under ``data_dir``,
never in the database, so someone who can write the ``tokens`` collection but not read that file
cannot mint a row that authenticates. Rows from before the key (plain SHA-256, ``scheme`` absent)
authenticate nobody; ``list`` marks them ``legacy`` so operators re-create them. Roles are fixed:
what each may do is decided where each endpoint is declared, never by string matching elsewhere.

The acting person is written in one form wherever an action is recorded (audit log, ledger entries,
candidate decisions): ``token:<name>`` for an API or console caller (``Principal.actor``),
``cli:<os-user>`` for a command run at the terminal (``cli_actor``).

A token's **name** is who it is: case memberships (``case_members``) and authorizations
(``accounts``) name it. So no two active tokens share a name (a new token would inherit the other
person's cases); a revoked token's name may be used again, which is how a person's token is rotated
while their cases stay theirs (revoke, then create with the same name).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from enum import StrEnum

from config import Settings
from foundation import keys
from foundation.errors import ConfigError, TgwatchError
from foundation.models import utcnow
from storage.client import Doc, Store, translate_errors

TOKEN_PREFIX = "tgw_"
#: how a token row's ``_id`` was made; rows without it are legacy SHA-256 digests
SCHEME = "hmac-sha256"
SECRET_NAME = "api-token-hmac"


class TokenNameTaken(TgwatchError):
    """An active token already has this name (memberships and authorizations follow names)."""

    kind = "name_taken"


class Role(StrEnum):
    ADMIN = "admin"
    MONITOR = "monitor"
    INVESTIGATOR = "investigator"
    AUDITOR = "auditor"
    DETECTOR = "detector"


@dataclass(frozen=True)
class Principal:
    """Who is calling: recorded on every audit entry."""

    token_id: str
    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How this caller is named where its actions are recorded."""
        return f"token:{self.name}"


def cli_actor(named: str | None = None) -> str:
    """Who runs a CLI command, where its actions are recorded: ``named`` (a ``--by``/``--actor``
    option) or the operating-system account, as ``cli:<name>``."""
    if named:
        return f"cli:{named}"
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid-{os.getuid()}"


def server_secret(settings: Settings) -> bytes:
    """``api.token_key``, else a 32-byte key file under ``data_dir/keys`` (made once, owner-only;
    a looser mode found on it is tightened)."""
    configured = settings.api.token_key
    key = keys.load_or_create(configured, settings.data_dir, SECRET_NAME)
    path = settings.data_dir / "keys" / f"{SECRET_NAME}.key"
    if configured is None and stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o600)
    return key


def keyed_digest(secret: bytes, value: str) -> str:
    return hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()


def legacy_digest(token: str) -> str:
    """The pre-key digest (plain SHA-256): only to recognise legacy rows, never to authenticate."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenRepo:
    """Without the server secret it can list and revoke, never create or authenticate."""

    def __init__(self, store: Store, secret: bytes | None = None) -> None:
        self._coll = store["tokens"]
        self._secret = secret

    def digest(self, token: str) -> str:
        if self._secret is None:
            raise ConfigError("tokens opened without the server secret: cannot create or authenticate")
        return keyed_digest(self._secret, token)

    async def create(self, name: str, role: Role) -> tuple[str, Doc]:
        """Return the plaintext token (to print once) and the stored document (without it).

        Refused while an active token holds ``name``: it would inherit that person's cases. A legacy
        row (which signs nobody in) does not hold its name: re-creating it under that name is the fix.
        """
        with translate_errors("create token"):
            held = await self._coll.find_one({"name": name, "revoked_at": None, "scheme": SCHEME})
        if held is not None:
            raise TokenNameTaken(
                f"an active token is already named {name!r} (token id {held['token_id']}); case memberships "
                "and authorizations follow the name, so choose another name, or revoke that token first "
                "to rotate it (its cases stay with the name)"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        doc: Doc = {
            "_id": self.digest(token),
            "scheme": SCHEME,
            "token_id": secrets.token_hex(6),
            "name": name,
            "role": role.value,
            "created_at": utcnow(),
            "revoked_at": None,
        }
        with translate_errors("create token"):
            await self._coll.insert_one(doc)
        return token, doc

    async def authenticate(self, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        with translate_errors("authenticate"):
            doc = await self._coll.find_one({"_id": self.digest(token)})
        if doc is None or doc.get("revoked_at") is not None or doc.get("scheme") != SCHEME:
            return None
        return Principal(token_id=doc["token_id"], name=doc["name"], role=Role(doc["role"]))

    async def by_digest(self, digest: str) -> Principal | None:
        """The principal of a stored keyed digest (a console session holds the digest, not the token)."""
        with translate_errors("authenticate"):
            doc = await self._coll.find_one({"_id": digest})
        if doc is None or doc.get("revoked_at") is not None or doc.get("scheme") != SCHEME:
            return None
        return Principal(token_id=doc["token_id"], name=doc["name"], role=Role(doc["role"]))

    async def list(self) -> list[Doc]:
        with translate_errors("list tokens"):
            docs = await self._coll.find().sort("created_at", 1).to_list(None)
        hidden = {"_id", "scheme"}
        return [{**{k: v for k, v in d.items() if k not in hidden}, "legacy": d.get("scheme") != SCHEME} for d in docs]

    async def revoke(self, token_id_or_name: str) -> int:
        """Revoke by token id or by name; returns how many tokens were revoked."""
        with translate_errors("revoke token"):
            found = await self._coll.find({"token_id": token_id_or_name}).to_list(None)
            found += await self._coll.find({"name": token_id_or_name}).to_list(None)
            docs = list({d["_id"]: d for d in found if d.get("revoked_at") is None}.values())
            for doc in docs:  # replace, not $set: datetimes stay datetimes on the embedded server
                await self._coll.replace_one({"_id": doc["_id"]}, {**doc, "revoked_at": utcnow()})
        return len(docs)

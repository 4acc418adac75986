"""Token names are unique among active tokens (#16 follow-up).

Case memberships and authorizations name a token's *name*; a second active token with the same
name would inherit the first person's cases. A revoked token's name may be re-used: that is how a
person's token is rotated while their cases stay theirs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import config
from crawler.evidence.access import CaseAccess
from crawler.evidence.ledger import Ledger
from crawler.evidence.members import CaseMembers
from crawler.tokens import Role, TokenNameTaken, TokenRepo, server_secret
from storage.client import Store


async def test_an_active_name_is_refused_and_a_revoked_one_is_reused(store: Store) -> None:
    repo = TokenRepo(store, server_secret(config.load()))
    first, first_doc = await repo.create("ana", Role.INVESTIGATOR)
    await CaseMembers(Ledger(store)).add("CASE-A", "ana", actor="boss")

    with pytest.raises(TokenNameTaken, match="already named 'ana'"):
        await repo.create("ana", Role.INVESTIGATOR)
    with pytest.raises(TokenNameTaken):
        await repo.create("ana", Role.ADMIN)  # another role does not make it another person
    assert [d["name"] for d in await repo.list()] == ["ana"]

    # rotation: revoke, then create with the same name; the case stays with the name
    assert await repo.revoke(first_doc["token_id"]) == 1
    second, _ = await repo.create("ana", Role.INVESTIGATOR)
    assert await repo.authenticate(first) is None
    who = await repo.authenticate(second)
    assert who is not None and await CaseAccess(store).may_open_case(who, "CASE-A")


def tgwatch(data_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crawler", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )


@pytest.mark.slow
def test_the_cli_refuses_a_held_name_clearly(embedded_uri: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(TGWATCH_MONGODB_URI=embedded_uri, TGWATCH_DATABASE=f"t_toknames_{uuid.uuid4().hex[:8]}")
    data = tmp_path / "d"
    created = tgwatch(data, env, "tokens", "create", "--name", "ana", "--role", "investigator")
    assert created.returncode == 0, created.stderr

    again = tgwatch(data, env, "tokens", "create", "--name", "ana", "--role", "admin")
    assert again.returncode != 0 and again.stdout == ""
    assert "already named 'ana'" in again.stderr and "revoke" in again.stderr
    assert "Traceback" not in again.stderr
    listed = tgwatch(data, env, "tokens", "list")
    assert [line.split()[-1] for line in listed.stdout.splitlines()] == ["ana"]

    assert tgwatch(data, env, "tokens", "revoke", "ana").returncode == 0
    rotated = tgwatch(data, env, "tokens", "create", "--name", "ana", "--role", "investigator")
    assert rotated.returncode == 0 and rotated.stdout.startswith("tgw_"), rotated.stderr

"""Case ids (#16 High 2): one rule at every door, no file named after user input, no temp files left.

A decoded ``..%2F`` in ``/cases/{case}/bundle`` used to become ``Path(tmp) / "../x.zip"``: an
auditor (or a monitor who named the case on a takedown) could create or overwrite any ``.zip``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import config
from crawler.api.app import build_app
from crawler.evidence.authorizations import Authorizations
from crawler.evidence.cases import Cases
from crawler.evidence.members import CaseMembers
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from foundation.case_ids import InvalidCaseId, validate_case_id
from storage.client import Store
from tests.security.case_world import World, build_world

Client = TestClient[web.Request, web.Application]

#: as they appear in a URL path segment (percent-encoded) and what the server decodes them to
BAD_IN_URL = [
    "..%2F..%2Fevil",  # ../../evil
    "..%2Fevil",
    "%2Ftmp%2Fevil",  # absolute
    "a%2Fb",
    "..",
    "." * 3,
    ".hidden",
    "a%5Cb",  # backslash
    "x" * 65,  # too long
    "caf%C3%A9",  # unicode é
    "evil%EF%BC%8Fx",  # fullwidth solidus
    "a%20b",
    "a%00b",
    "a%0Ab",
]
BAD_IDS = ["../../evil", "../evil", "/tmp/evil", "a/b", "..", ".hidden", "a\\b", "x" * 65, "café", "a b", "", "a\n"]


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The exporting process's temp dir, so the test can see everything it leaves behind."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


@pytest.fixture
async def world(store: Store, tmp_path: Path) -> World:
    return await build_world(store, tmp_path / "data")


@pytest.fixture
async def client(store: Store, world: World, private_tmp: Path) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(store, world.settings, ALL_MODULES))) as c:
        yield c


@pytest.mark.parametrize("good", ["CASE-7", "a", "2026.01_x-y", "A" * 64])
def test_the_rule_accepts_plain_ids(good: str) -> None:
    assert validate_case_id(good) == good


@pytest.mark.parametrize("bad", BAD_IDS)
def test_the_rule_rejects_paths_unicode_and_long_ids(bad: str) -> None:
    with pytest.raises(InvalidCaseId, match="invalid case id"):
        validate_case_id(bad)


@pytest.mark.parametrize("who", ["aud", "boss", "member"])
async def test_traversal_in_the_bundle_url_is_400_and_writes_nothing(
    store: Store, client: Client, world: World, tmp_path: Path, private_tmp: Path, who: str
) -> None:
    # legacy data: a case named before ids were checked (say on a takedown), so the export would run
    await world.ledger.append({"kind": "takedown", "action": "create", "cases": ["../../evil"]})
    before = {p for p in tmp_path.rglob("*.zip")}
    for bad in BAD_IN_URL:
        resp = await client.get(f"/api/v1/cases/{bad}/bundle", headers={"Authorization": f"Bearer {world.tokens[who]}"})
        if bad in {"..", "..."}:  # dot segments: the client or router never routes them to the bundle
            assert resp.status in {400, 404}, bad
            continue
        assert resp.status == 400, (bad, resp.status)
        assert "invalid case id" in (await resp.json())["error"]
    # a literal slash is another path altogether: no route, nothing written
    resp = await client.get("/api/v1/cases/a/b/bundle", headers={"Authorization": f"Bearer {world.tokens[who]}"})
    assert resp.status == 404
    assert {p for p in tmp_path.rglob("*.zip")} == before
    assert not (tmp_path / "evil.zip").exists() and not (private_tmp.parent / "evil.zip").exists()
    assert not list(private_tmp.iterdir()), "no temporary file or directory is left behind"
    assert await store["ledger"].count_documents({"kind": "export"}) == 0


async def test_exports_leave_no_temporary_files(store: Store, client: Client, world: World, private_tmp: Path) -> None:
    hdr = {"Authorization": f"Bearer {world.tokens['boss']}"}
    ok = await client.get("/api/v1/cases/CASE-A/bundle", headers=hdr)
    assert ok.status == 200 and ok.headers["Content-Disposition"] == 'attachment; filename="CASE-A.zip"'
    missing = await client.get("/api/v1/cases/NO-SUCH-CASE/bundle", headers=hdr)  # fails inside the export
    assert missing.status == 404
    assert not list(private_tmp.iterdir())
    assert await store["ledger"].count_documents({"kind": "export"}) == 1, "only the successful export is recorded"


async def test_takedown_case_is_validated_before_anything_is_written(store: Store, world: World) -> None:
    monitor, _ = await TokenRepo(store, server_secret(config.load())).create("mon", Role.MONITOR)
    app = build_app(store, world.settings, ALL_MODULES)
    async with TestClient(TestServer(app)) as client:
        for bad in ["../../evil", "/abs", "a/b", "café", "x" * 65]:
            body = {"channel": "case_chan", "reason": "doxxing", "case": bad}
            resp = await client.post("/api/v1/takedowns", json=body, headers={"Authorization": f"Bearer {monitor}"})
            assert resp.status == 400, (bad, await resp.text())
            assert "case" in (await resp.json())["error"]
        good = {"channel": "case_chan", "reason": "doxxing", "case": "CASE-A"}
        resp = await client.post("/api/v1/takedowns", json=good, headers={"Authorization": f"Bearer {monitor}"})
        assert resp.status == 201, await resp.text()
    assert await store["takedowns"].count_documents({}) == 1


async def test_services_refuse_bad_ids_before_any_ledger_entry(store: Store, world: World) -> None:
    from datetime import UTC, datetime, timedelta

    size = await store["ledger"].count_documents({})
    with pytest.raises(InvalidCaseId):
        await Authorizations(world.ledger).grant(
            case_id="../x", warrant="W", approved_by="j", scope=["@case_chan"], accounts=["member"],
            valid_until=datetime.now(UTC) + timedelta(days=1), actor="boss",
        )  # fmt: skip
    with pytest.raises(InvalidCaseId):
        await Cases(world.ledger).add("a/b", channel="case_chan", actor="boss")
    with pytest.raises(InvalidCaseId):
        await CaseMembers(world.ledger).add("/abs", "member", actor="boss")
    assert await store["ledger"].count_documents({}) == size
    assert await store["authorizations"].count_documents({"case_id": "../x"}) == 0


# -- the shell --------------------------------------------------------------------------------------
def tgwatch(data_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crawler", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )


@pytest.fixture
def cli_env(embedded_uri: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(TGWATCH_MONGODB_URI=embedded_uri, TGWATCH_DATABASE=f"t_caseid_{uuid.uuid4().hex[:8]}")
    return env


@pytest.mark.slow
def test_cli_members_and_every_case_option_reject_bad_ids(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "d"
    created = tgwatch(data, cli_env, "tokens", "create", "--name", "ana", "--role", "investigator")
    assert created.returncode == 0, created.stderr
    added = tgwatch(data, cli_env, "case", "members", "add", "CASE-1", "--token-name", "ana")
    assert added.returncode == 0 and "ana added to CASE-1" in added.stdout, added.stderr
    listed = tgwatch(data, cli_env, "case", "members", "list", "CASE-1")
    assert '"member": "ana"' in listed.stdout
    unknown = tgwatch(data, cli_env, "case", "members", "add", "CASE-1", "--token-name", "nobody")
    assert unknown.returncode != 0 and "no active token named 'nobody'" in unknown.stderr
    removed = tgwatch(data, cli_env, "case", "members", "remove", "CASE-1", "--token-name", "ana")
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert tgwatch(data, cli_env, "case", "members", "list", "CASE-1").stdout.strip() == ""
    bad = "../../evil"
    attempts = [
        ("case", "members", "add", bad, "--token-name", "ana"),
        ("case", "add", bad, "--channel", "somewhere"),
        ("auth", "grant", "--case", bad, "--warrant", "W", "--approved-by", "j", "--scope", "@x",
         "--accounts", "a", "--valid-until", "2099-01-01"),
        ("evidence", "export", "--case", bad, str(tmp_path / "out.zip")),
        ("takedown", "create", "--case", bad, "--channel", "somewhere", "--reason", "doxxing"),
    ]  # fmt: skip
    for args in attempts:
        proc = tgwatch(data, cli_env, *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "invalid case id" in proc.stderr and "Traceback" not in proc.stderr, args
    assert not list(tmp_path.rglob("*.zip")) and not (tmp_path.parent / "evil.zip").exists()

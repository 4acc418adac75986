"""Case membership (#16 High 1): investigators see, search and export only their cases; a bundle
carries media bytes exactly when ``/media/{sha}/bytes`` would answer the same caller; an auditor's
bundle holds the chain of custody, not the evidence."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crawler.api.app import build_app
from crawler.evidence.members import CaseMembers
from crawler.evidence.verify_bundle import verify_bundle
from crawler.server_modules import ALL_MODULES
from storage.client import Store
from tests.security.case_world import SECRET_TEXT, World, build_world

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def world(store: Store, tmp_path: Path) -> World:
    return await build_world(store, tmp_path / "data")


@pytest.fixture
async def client(store: Store, world: World) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(store, world.settings, ALL_MODULES))) as c:
        yield c


def bearer(world: World, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[name]}"}


def members_of(body: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


@pytest.mark.parametrize(
    ("who", "bundle", "media"),
    [
        ("member", 200, 200),
        ("outsider", 403, 403),  # named on the CASE-A authorization, but not a member of CASE-A
        ("boss", 200, 200),  # admin named on the authorization
        ("chief", 200, 403),  # admin, not named on it: sees the case, not the bytes
        ("aud", 200, 403),  # auditor: any case's bundle, never media
    ],
)
async def test_membership_matrix_for_bundle_and_media_bytes(
    client: Client, world: World, who: str, bundle: int, media: int
) -> None:
    resp = await client.get("/api/v1/cases/CASE-A/bundle", headers=bearer(world, who))
    assert resp.status == bundle, await resp.text()
    bytes_resp = await client.get(f"/api/v1/media/{world.sha}/bytes", headers=bearer(world, who))
    assert bytes_resp.status == media
    if bundle != 200:
        return
    files = members_of(await resp.read())
    # one rule decides both doors: the bundle holds the bytes exactly when the endpoint gave them
    assert (f"captures/media/{world.sha}" in files) == (media == 200)
    if media == 200:
        assert files[f"captures/media/{world.sha}"] == world.image == await bytes_resp.read()
    manifest = json.loads(files["manifest.json"])
    listed = [f for f in manifest["files"] if f["sha256"] == world.sha]
    assert listed and (listed[0]["path"] is None) == (media != 200), "withheld media stays listed by digest"


async def test_a_bundle_follows_membership_changes(client: Client, world: World, tmp_path: Path) -> None:
    assert (await client.get("/api/v1/cases/CASE-A/bundle", headers=bearer(world, "outsider"))).status == 403
    await CaseMembers(world.ledger).add("CASE-A", "outsider", actor="boss")
    resp = await client.get("/api/v1/cases/CASE-A/bundle", headers=bearer(world, "outsider"))
    assert resp.status == 200 and f"captures/media/{world.sha}" in members_of(await resp.read())
    await CaseMembers(world.ledger).remove("CASE-A", "member", actor="boss")
    assert (await client.get("/api/v1/cases/CASE-A/bundle", headers=bearer(world, "member"))).status == 403
    assert (await client.get(f"/api/v1/media/{world.sha}/bytes", headers=bearer(world, "member"))).status == 403


async def test_membership_changes_are_ledger_entries_of_the_case(store: Store, world: World) -> None:
    await CaseMembers(world.ledger).remove("CASE-A", "member", actor="boss")
    docs = await store["ledger"].find({"kind": "case"}).sort("_id", 1).to_list(None)
    changes = [json.loads(d["payload"]) for d in docs]
    changes = [(c["action"], c["case"], c["member"], c["actor"]) for c in changes if "member" in c]
    assert changes == [
        ("member_add", "CASE-A", "member", "boss"),
        ("member_add", "CASE-B", "outsider", "boss"),
        ("member_remove", "CASE-A", "member", "boss"),
    ]


async def test_the_refused_export_is_audited(store: Store, client: Client, world: World) -> None:
    assert (await client.get("/api/v1/cases/CASE-A/bundle", headers=bearer(world, "outsider"))).status == 403
    refused = await store["audit"].find({"actor": "token:outsider", "action": "case.export.refused"}).to_list(None)
    assert len(refused) == 1 and refused[0]["filter"] == {"case": "CASE-A"}
    assert await store["ledger"].count_documents({"kind": "export"}) == 0, "nothing was exported"


async def test_an_auditor_bundle_holds_no_text_html_or_media(client: Client, world: World, tmp_path: Path) -> None:
    resp = await client.get("/api/v1/cases/CASE-A/bundle", headers=bearer(world, "aud"))
    assert resp.status == 200
    body = await resp.read()
    files = members_of(body)
    assert not [n for n in files if n.startswith(("records/", "captures/"))], sorted(files)
    assert all(SECRET_TEXT.encode() not in data for data in files.values())
    manifest = json.loads(files["manifest.json"])
    assert manifest["files"] and all(f["path"] is None and f["withheld"] for f in manifest["files"])
    assert any("auditor" in f["withheld"] for f in manifest["files"]), manifest["files"]
    kinds = [json.loads(json.loads(e)["payload"])["kind"] for e in files["ledger/entries.jsonl"].decode().splitlines()]
    assert "capture" in kinds and "export" in kinds and any(n.startswith("proofs/") for n in files)
    path = tmp_path / "aud.zip"
    path.write_bytes(body)
    result = verify_bundle(path)
    assert result.ok, result.summary()
    # the same case for a member holds the text the auditor's bundle leaves out
    member = members_of(await (await client.get("/api/v1/cases/CASE-A/bundle", headers=bearer(world, "member"))).read())
    assert any(SECRET_TEXT.encode() in data for name, data in member.items() if name.startswith("records/")), {
        n: d[:300] for n, d in member.items() if n.startswith(("records/", "captures/"))
    }


@pytest.mark.parametrize(
    ("who", "status", "keys"),
    [
        ("member", 200, ["case_chan/1"]),
        ("boss", 200, ["case_chan/1"]),
        ("outsider", 403, None),
    ],
)
async def test_case_filtered_search_and_export_need_membership(
    store: Store, client: Client, world: World, who: str, status: int, keys: list[str] | None
) -> None:
    resp = await client.get("/api/v1/messages", params={"case": "CASE-A"}, headers=bearer(world, who))
    assert resp.status == status, await resp.text()
    export = await client.get("/api/v1/messages/export", params={"case": "CASE-A"}, headers=bearer(world, who))
    assert export.status == status
    if keys is None:
        assert SECRET_TEXT not in await resp.text() + await export.text()
        refused = await store["audit"].count_documents({"actor": f"token:{who}", "action": "case.refused"})
        assert refused == 2
        return
    assert [m["key"] for m in (await resp.json())["items"]] == keys
    rows = [json.loads(line) for line in (await export.text()).splitlines() if line]
    assert [f"{r['channel']}/{r['msg_id']}" for r in rows] == keys


async def test_a_search_filtered_by_an_invalid_case_is_a_clear_400(client: Client, world: World) -> None:
    resp = await client.get("/api/v1/messages", params={"case": "../CASE-A"}, headers=bearer(world, "boss"))
    assert resp.status == 400 and "case" in (await resp.json())["error"]


async def test_the_console_shows_memberships_and_refuses_other_cases(client: Client, world: World) -> None:
    from tests.test_console import sign_in

    await sign_in(client, world.tokens["outsider"])
    page = await client.get("/console/search")
    html = await page.text()
    assert page.status == 200 and "Your cases" in html and "CASE-B" in html and "CASE-A" not in html
    refused = await client.get("/console/search", params={"case": "CASE-A"})
    assert refused.status == 403 and "not a member of case CASE-A" in await refused.text()
    assert SECRET_TEXT not in await refused.text()
    bad = await client.get("/console/case-bundle", params={"case": "../../evil"}, allow_redirects=False)
    assert bad.status == 400 and "case id" in await bad.text()
    client.session.cookie_jar.clear()
    await sign_in(client, world.tokens["boss"])
    html = await (await client.get("/console/search")).text()
    assert "Case members" in html and "CASE-A</a>: member" in html and "CASE-B</a>: outsider" in html


async def test_a_shell_export_for_an_auditor_follows_the_same_content_policy(world: World, tmp_path: Path) -> None:
    from crawler.evidence.export import Exporter
    from crawler.evidence.signing import load_public_key

    settings = world.settings
    public = load_public_key(settings.evidence.public_key_path(settings.data_dir).read_bytes())
    # even a configuration that lists auditors among the media roles does not hand them content
    exporter = Exporter(world.ledger, public, signer=world.ledger.signer, media_roles=["admin", "auditor"])
    result = await exporter.export("CASE-A", tmp_path / "shell.zip", actor="ops", role="auditor")
    files = members_of((tmp_path / "shell.zip").read_bytes())
    assert result.files == 0 and not [n for n in files if n.startswith(("records/", "captures/"))]
    assert verify_bundle(tmp_path / "shell.zip").ok

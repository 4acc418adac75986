"""The auditors' HTTP routes (each read is a query entry) and the CLI commands end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import config
from crawler.api.app import build_app
from crawler.evidence import api as evidence_api
from crawler.evidence.ledger import Ledger
from crawler.evidence.merkle import verify_consistency, verify_inclusion
from crawler.tokens import Role, TokenRepo, server_secret
from storage.client import Store


@pytest.fixture
async def client(store: Store) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = build_app(store, config.load(), [evidence_api.register])
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_auditor_routes_return_verifiable_proofs_and_are_audited(
    client: TestClient[web.Request, web.Application], store: Store
) -> None:
    ledger = Ledger(store)
    await ledger.append_many([{"kind": "capture", "i": i} for i in range(9)])
    token, _ = await TokenRepo(store, server_secret(config.load())).create("aud", Role.AUDITOR)
    hdr = {"Authorization": f"Bearer {token}"}
    resp = await client.get("/api/v1/ledger/entries?from=2&limit=3", headers=hdr)
    assert resp.status == 200
    entries = (await resp.json())["entries"]
    assert [e["seq"] for e in entries] == [2, 3, 4]
    resp = await client.get("/api/v1/ledger/proofs/inclusion/4?tree_size=9", headers=hdr)
    body = await resp.json()
    root9 = await ledger.root(9)
    assert verify_inclusion(
        bytes.fromhex(body["leaf_hash"]), 4, 9, [bytes.fromhex(p) for p in body["audit_path"]], root9
    )
    resp = await client.get("/api/v1/ledger/proofs/consistency?first=3&second=9", headers=hdr)
    proof = [bytes.fromhex(p) for p in (await resp.json())["proof"]]
    assert verify_consistency(3, 9, proof, await ledger.root(3), root9)
    assert (await client.get("/api/v1/ledger/proofs/consistency?first=5&second=99", headers=hdr)).status == 400
    detector, _ = await TokenRepo(store, server_secret(config.load())).create("det", Role.DETECTOR)
    denied = await client.get("/api/v1/ledger/entries", headers={"Authorization": f"Bearer {detector}"})
    assert denied.status == 403
    queries = [json.loads(d["payload"]) for d in await ledger.entries(9)]
    assert [(q["kind"], q["action"], q["actor"], q["role"]) for q in queries] == [
        ("query", "ledger.entries", "token:aud", "auditor"),
        ("query", "ledger.inclusion_proof", "token:aud", "auditor"),
        ("query", "ledger.consistency_proof", "token:aud", "auditor"),
    ]
    assert queries[0]["result_count"] == 3


def tgwatch(data_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from crawler.cli import main; main()",
            "--data-dir",
            str(data_dir),
            "--log-format",
            "json",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )


@pytest.mark.slow
def test_cli_grant_case_export_verify_and_verify_ledger(embedded_uri: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(TGWATCH_MONGODB_URI=embedded_uri, TGWATCH_DATABASE=f"t_cli_{uuid.uuid4().hex[:8]}")
    data = tmp_path / "d"

    def ok(*args: str) -> str:
        proc = tgwatch(data, env, *args)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        return proc.stdout

    assert "key id:" in ok("evidence", "keygen")
    assert tgwatch(data, env, "evidence", "keygen").returncode != 0  # never overwrites a key
    auth_id = ok(
        "auth",
        "grant",
        "--case",
        "C1",
        "--warrant",
        "W1",
        "--approved-by",
        "judge",
        "--scope",
        "@some_channel,t.me/+AbCdEfGh1234",
        "--accounts",
        "acc1",
        "--valid-until",
        "2099-01-01",
    ).strip()
    listed = [json.loads(line) for line in ok("auth", "list", "--case", "C1").splitlines()]
    assert listed[0]["_id"] == auth_id and listed[0]["scope"] == ["channel:some_channel", "invite:AbCdEfGh1234"]
    assert "ledger seq" in ok("case", "add", "C1", "--message", "some_channel/5")
    assert tgwatch(data, env, "case", "add", "C1").returncode != 0
    assert "revoked" in ok("auth", "revoke", auth_id)
    bundle = tmp_path / "C1.zip"
    assert "entries" in ok("evidence", "export", "--case", "C1", str(bundle))
    assert "OK:" in ok("evidence", "verify", str(bundle))
    assert "OK:" in ok("evidence", "verify-ledger")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(bundle.read_bytes()[:-40])
    assert tgwatch(data, env, "evidence", "verify", str(broken)).returncode == 1

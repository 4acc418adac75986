"""Bots become *proposed* targets, one path for all: reviewed (approve/reject) before they are crawled.

The manage layer (shared by the CLI and the console) and ingest's snowball stage in-process; the real
CLI in child processes: a web crawl of a channel whose post links a bot proposes it (with where it was
found), ``targets proposed|approve|reject`` review it, and each decision is an audit entry.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.targets import TargetsConfig
from crawler.audit import AuditLog
from crawler.discovery.service import DiscoveryService
from crawler.discovery.snowball import SnowballStage
from crawler.ingest import Ingest
from crawler.scheduling import manage
from crawler.scheduling.plan import build_schedules
from foundation.errors import ConfigError
from foundation.models import Button, ChannelRef, Message, Source
from spiders.sample_site.content import Message as SiteMessage
from spiders.sample_site.content import Span, Text
from spiders.sample_site.publish import empty_channel, with_channel
from spiders.sample_site.server import SampleSite
from storage.client import Store
from storage.repos.targets import MAX_PROPOSALS_PER_RUN, TargetRepo
from tests.test_scheduling_support import env_for, many_channels, tgwatch

T0 = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
ACTOR = manage.Actor("cli:tester", "cli", "cli")


def post(channel: str, msg_id: int, *, text: str = "", buttons: list[tuple[str, str]] | None = None) -> Message:
    return Message(
        ref=ChannelRef(username=channel), msg_id=msg_id, source=Source.WEB, date=T0, text=text,
        links=[u for u in text.split() if u.startswith("https://")],
        buttons=[[Button(text=t, url=u) for t, u in buttons or []]],
    )  # fmt: skip


def wire(ingest: Ingest, store: Store) -> SnowballStage:
    stage = SnowballStage(DiscoveryService(store))
    ingest.add_stage(stage, after="persist")
    return stage


async def audit_actions(store: Store) -> list[tuple[str, str]]:
    docs = await store["audit"].find({"action": {"$in": ["targets.approve", "targets.reject"]}}).to_list(None)
    return sorted((d["action"], d["target"]) for d in docs)


async def test_a_bot_in_a_button_is_proposed_with_its_provenance_and_crawled_only_once_approved(
    store: Store, ingest: Ingest
) -> None:
    wire(ingest, store)
    msgs = [
        post("leaks", 7, text="get it", buttons=[("Full video", "https://t.me/Vault_DL_bot?start=abc")]),
        post("leaks", 8, text="ask https://t.me/helper_bot or https://t.me/other_channel"),
    ]
    await ingest.submit(msgs, run_id="run-1")
    repo = TargetRepo(store)
    proposals = {d["_id"]: d for d in await manage.proposed_targets(store)}
    assert sorted(proposals) == ["https://t.me/helper_bot", "https://t.me/vault_dl_bot"]  # not the channel
    vault = proposals["https://t.me/vault_dl_bot"]
    found = vault["proposed"]
    assert (vault["status"], vault["method"], vault["source"]) == ("proposed", "web", "bot")
    assert (found["by"], found["run_id"], found["how"], found["button_text"]) == ("discovery", "run-1", "button",
                                                                                 "Full video")  # fmt: skip
    assert found["message"] == f"{vault['found_in']}/7" and found["url"] == "https://t.me/Vault_DL_bot?start=abc"
    # not crawled while proposed: no schedule, not among the targets
    assert await repo.list() == []
    assert build_schedules(TargetsConfig(), await repo.list()) == []

    audit = AuditLog(store)
    await manage.review_target(store, audit, ACTOR, "https://t.me/vault_dl_bot", approve=True)
    await manage.review_target(store, audit, ACTOR, "helper_bot", approve=False, reason="a support bot")
    assert [d["_id"] for d in await repo.list()] == ["https://t.me/vault_dl_bot"]
    (schedule,) = build_schedules(TargetsConfig(), await repo.list())
    assert (schedule.target, schedule.method, schedule.paused) == ("https://t.me/vault_dl_bot", "web", False)
    assert await audit_actions(store) == [
        ("targets.approve", "https://t.me/vault_dl_bot"), ("targets.reject", "https://t.me/helper_bot"),
    ]  # fmt: skip
    rejected = await repo.get_key("https://t.me/helper_bot")
    assert rejected is not None and rejected["review"]["reason"] == "a support bot"
    with pytest.raises(ConfigError):  # reviewed once: approving an active target again is refused
        await manage.review_target(store, audit, ACTOR, "vault_dl_bot", approve=True)

    # named again later: a rejected bot is not proposed again, an approved one stays as it is
    await ingest.submit([post("leaks", 9, text="again https://t.me/helper_bot https://t.me/vault_dl_bot")])
    assert await manage.proposed_targets(store) == []
    assert [d["status"] for d in await manage.proposed_targets(store, rejected=True)] == ["rejected"]


async def test_proposals_are_capped_per_run_and_the_rest_recorded(store: Store, ingest: Ingest) -> None:
    stage = wire(ingest, store)
    many = [post("spam", i, buttons=[("go", f"https://t.me/spam{i:03d}_bot")]) for i in range(1, 31)]
    await ingest.submit(many[:10], run_id="run-9")
    await ingest.submit(many[10:], run_id="run-9")
    assert len(await manage.proposed_targets(store)) == MAX_PROPOSALS_PER_RUN
    assert (stage.stats.bots_proposed, stage.stats.bots_capped) == (MAX_PROPOSALS_PER_RUN, 10)
    errors = await store["errors"].find({"kind": "bot_proposals_capped"}).to_list(None)
    assert len(errors) == 1 and len(errors[0]["sample"]) == 10 and errors[0]["run_id"] == "run-9"
    await ingest.submit([post("spam", 99, buttons=[("go", "https://t.me/late_bot")])], run_id="run-10")
    assert "https://t.me/late_bot" in {d["_id"] for d in await manage.proposed_targets(store)}  # a new run


async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *tgwatch(*args), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.slow
async def test_a_crawl_proposes_the_bot_and_the_cli_reviews_it(store: Store, embedded_uri: str, tmp_path: Path) -> None:
    world = many_channels(1)
    text = Text((Span("text", "the rest: "), Span("link", "https://t.me/vault_dl_bot?start=x",
                                                   "https://t.me/vault_dl_bot?start=x")))  # fmt: skip
    chan = empty_channel("shop_chan", "Shop")
    chan = type(chan)(**{**chan.__dict__, "messages": (SiteMessage(1, T0, text, views=3),)})
    world = with_channel(world, chan)
    async with SampleSite.serve(world) as site:
        env = env_for(embedded_uri, store.db.name, site.base_url, tmp_path)
        code, _, err = await cli(env, "targets", "add", "shop_chan", "--every", "1h")
        assert code == 0, err
        code, _, err = await cli(env, "run-now", "shop_chan")
        assert code == 0, err
        code, out, err = await cli(env, "targets", "proposed", "--json")
        assert code == 0, err
        (proposal,) = [json.loads(line) for line in out.splitlines()]
        assert proposal["_id"] == "https://t.me/vault_dl_bot" and proposal["proposed"]["how"] == "link"
        assert proposal["proposed"]["message"].endswith("/1") and proposal["proposed"]["by"] == "discovery"
        code, out, _ = await cli(env, "targets", "list")
        assert "vault_dl_bot" not in out.split("proposed targets wait")[0] and "1 proposed targets wait" in out

        code, out, err = await cli(env, "targets", "approve", "vault_dl_bot")
        assert (code, out.strip()) == (0, "approved https://t.me/vault_dl_bot"), err
        code, _, err = await cli(env, "targets", "reject", "vault_dl_bot")
        assert code != 0 and "not a proposed target" in err
        code, out, _ = await cli(env, "targets", "list", "--json")
        listed = {json.loads(line)["target"] for line in out.splitlines()}
        assert listed == {"https://t.me/shop_chan", "https://t.me/vault_dl_bot"}
        code, out, _ = await cli(env, "targets", "proposed")
        assert out.strip() == "no proposed targets"
    entries = await store["audit"].find({"action": "targets.approve"}).to_list(None)
    assert [(e["target"], e["actor"].startswith("cli:"), e["via"]) for e in entries] == [
        ("https://t.me/vault_dl_bot", True, "cli")
    ]


async def test_the_console_lists_proposals_in_both_languages_and_reviews_them_with_csrf(
    store: Store, tmp_path: Path
) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    import config
    from crawler.api.app import build_app
    from crawler.server_modules import ALL_MODULES
    from crawler.tokens import Role
    from storage.repos.targets import bot_proposal
    from tests.test_console import CSRF, sign_in
    from tests.test_investigate_api import token

    repo = TargetRepo(store)
    for name, button in (("vault_dl_bot", "Full video"), ("helper_bot", None)):
        doc = bot_proposal(name, by="discovery", found_in="leaks", message="leaks/7", how="button",
                           button_text=button)  # fmt: skip
        assert await repo.propose(doc)
    app = build_app(store, config.load(data_dir=tmp_path), ALL_MODULES)
    async with TestClient(TestServer(app)) as client:
        await sign_in(client, await token(store, Role.INVESTIGATOR, "ana"))
        resp = await client.post("/console/targets/review", data={"name": "vault_dl_bot", "action": "approve"})
        assert resp.status == 403  # not a manager
        await sign_in(client, await token(store, Role.MONITOR, "mo"))
        html = await (await client.get("/console/targets")).text()
        assert "Proposed targets" in html and "https://t.me/vault_dl_bot" in html and "Full video" in html
        assert "leaks/7" in html and 'value="approve"' in html and 'value="reject"' in html
        await client.post("/console/language", data={"lang": "ko", "csrf_token": CSRF.search(html).group(1)})
        korean = await (await client.get("/console/targets")).text()
        assert (
            "제안된 수집 대상" in korean and "승인" in korean and "거부" in korean and "Proposed targets" not in korean
        )
        resp = await client.post("/console/targets/review", data={"name": "vault_dl_bot", "action": "approve"},
                                 allow_redirects=False)  # fmt: skip
        assert resp.status == 403 and (await repo.get_key("https://t.me/vault_dl_bot") or {})["status"] == "proposed"
        csrf = CSRF.search(korean).group(1)
        approve = {"name": "vault_dl_bot", "action": "approve", "csrf_token": csrf}
        resp = await client.post("/console/targets/review", data=approve, allow_redirects=False)
        assert resp.status == 303
        resp = await client.post("/console/targets/review", data={"name": "helper_bot", "action": "reject",
                                                                  "reason": "support bot", "csrf_token": csrf},
                                 allow_redirects=False)  # fmt: skip
        assert resp.status == 303
        resp = await client.post("/console/targets/review", data={"name": "helper_bot", "action": "maybe",
                                                                  "csrf_token": csrf})  # fmt: skip
        assert resp.status == 400
        after = await (await client.get("/console/targets")).text()
    assert [d["_id"] for d in await repo.list()] == ["https://t.me/vault_dl_bot"]
    assert "https://t.me/vault_dl_bot" in after and "https://t.me/helper_bot" not in after
    trail = await store["audit"].find({"action": {"$in": ["targets.approve", "targets.reject"]}}).to_list(None)
    assert sorted((e["action"], e["target"], e["actor"], e["via"]) for e in trail) == [
        ("targets.approve", "https://t.me/vault_dl_bot", "token:mo", "console"),
        ("targets.reject", "https://t.me/helper_bot", "token:mo", "console"),
    ]


async def test_bots_named_to_tgwatch_bot_are_proposed_not_made_targets(store: Store, ingest: Ingest) -> None:
    """``tgwatch bot`` records the bots (MTProto, fake Telegram) and proposes each, as the command does."""
    from telegram_watch.bots import track_bots
    from telegram_watch.fake import extras as X
    from telegram_watch.fake.world import FakeTelegram
    from tests.test_tg_support import pool_over

    world = FakeTelegram(seed="bot-command")
    X.add_bot(world, "Vault", "vault_dl_bot", description="Sends the files")
    world.add_user("Abbot", username="friar_abbot")  # a person with a "…bot" name: recorded nowhere
    pool = pool_over(world, world.add_account("alice"))
    try:
        tracked, _ = await track_bots(pool, ingest, ["vault_dl_bot", "friar_abbot"], refresh=True, limit=2)
    finally:
        await pool.close()
    made = await manage.propose_named_bots(store, [str(b.ref.username) for b in tracked], by="bot_command",
                                           actor=ACTOR)  # fmt: skip
    assert made == ["https://t.me/vault_dl_bot"]
    (doc,) = await manage.proposed_targets(store)
    assert (doc["status"], doc["proposed"]["by"], doc["proposed"]["actor"]) == ("proposed", "bot_command", "cli:tester")
    assert await TargetRepo(store).list() == []
    assert await manage.propose_named_bots(store, ["vault_dl_bot"], by="bot_command", actor=ACTOR) == []  # once

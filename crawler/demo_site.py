"""The main job end to end on the bundled offline sample site (what ``make demo`` shows).

Everything here is generated on the spot: the synthetic t.me-style site (English and Korean
channels, every media kind, a no-preview and a private channel, an aggregator directory), a
known-hash list made from altered copies of two of its pictures, and an honest demo detector. The
steps are the ones staff run by hand — crawl, hash and match, detect, discover and triage, seal the
evidence — through the same library calls the commands use.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from config import Settings
from crawler import demo_alerts
from crawler.api.app import build_app
from crawler.detection.client import DetectionClient
from crawler.detection.consumer import callable_detector, run_consumer
from crawler.detection.service import DetectionService
from crawler.discovery.models import CandidateStatus
from crawler.discovery.repo import CandidateRepo
from crawler.evidence.authorizations import Authorizations
from crawler.evidence.export import Exporter, QuarantineMediaSource
from crawler.evidence.heads import sign_head_now
from crawler.evidence.ledger import Ledger
from crawler.evidence.screenshots import Screenshots
from crawler.evidence.signing import load_public_key
from crawler.evidence.verify_bundle import verify_bundle
from crawler.evidence.verify_ledger import verify_ledger_async
from crawler.ingest import Ingest
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from foundation.models import utcnow
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.authorizations import channel_scope
from storage.repos.hashlists import HashListRepo
from storage.repos.messages import MessageRepo
from storage.status import collection_counts

Echo = Callable[[str], None]

CRAWLED = ("daily_brief", "korea_now", "media_lab", "quiet_room", "closed_club", "no_such_channel")
CASE = "DEMO-CASE-1"


async def run(settings: Settings, store: Store, ingest: Ingest, ledger: Ledger, echo: Echo) -> None:
    from crawler.crawl_web import StoreRunRecorder, crawl_channel
    from crawler.discovery.run import crawl_aggregator, run_triage
    from spiders.sample_site import SampleSite, build_world
    from spiders.tme_channel import CrawlMode

    world = build_world(generation=1, big_size=60)
    echo("== 2. a known-hash list (PDQ of altered copies of two sample pictures) ==")
    entries = demo_alerts.listed_variants(world)
    await HashListRepo(store).add_entries("demo-known", "csv", [("pdq", p, label) for p, label in entries])
    echo(f"imported {len(entries)} PDQ entries into list 'demo-known'")
    auth = Authorizations(ledger)
    await auth.grant(
        case_id=CASE, warrant="DEMO-WARRANT", approved_by="demo supervisor", scope=[channel_scope("daily_brief")],
        accounts=["web-crawler"], valid_until=utcnow().replace(year=utcnow().year + 1), actor="demo",
        note="synthetic demo: daily_brief captures belong to the demo case",
    )  # fmt: skip

    async with SampleSite.serve(world) as site:
        base = site.base_url
        echo(f"== 3. crawl the offline sample site at {base} ==")
        for name in CRAWLED:
            summary = await crawl_channel(
                settings, ingest, name, mode=CrawlMode(full=True), base_url=base, recorder=StoreRunRecorder(store)
            )
            state = f" state={summary.state}" if summary.state and str(summary.state) != "ok" else ""
            echo(
                f"  {name:<16} pages={summary.pages:<3} new={summary.new:<4} media refs={summary.media_refs:<4}"
                f" errors={len(summary.errors)}{state}"
            )
        media = (await collection_counts(store))["media"]
        alerts = await AlertRepo(store).list(kind="hash_match", limit=10_000)
        echo(f"media hashed: {media}; hash-list alerts: {len(alerts)}")
        for alert in alerts:
            echo(f"  ALERT {alert['summary']} in {', '.join(alert['channels'])}")

        echo("== 4. the site changes (generation 2): new posts, edits become versions ==")
        site.set_world(build_world(generation=2, big_size=60))
        for name in ("daily_brief", "korea_now"):
            summary = await crawl_channel(settings, ingest, name, base_url=base, recorder=StoreRunRecorder(store))
            echo(f"  {name:<16} only what is new: new={summary.new} updated={summary.updated}")
            # --pages re-reads stored pages too: that is how edits to older posts are seen
            summary = await crawl_channel(
                settings, ingest, name, mode=CrawlMode(pages=5), base_url=base, recorder=StoreRunRecorder(store)
            )
            echo(f"  {name:<16} re-read 5 pages:  updated={summary.updated} unchanged={summary.unchanged}")
        edited = (await collection_counts(store))["message_versions"]
        echo(f"  superseded versions kept: {edited}")

        echo("== 5. discovery: the sample aggregator, then triage through preview pages ==")
        agg = await crawl_aggregator(settings, store, "sample_directory", base_url=base)
        echo(f"  aggregator: pages={agg.pages} links={agg.links} new candidates={agg.new}")
        tri = await run_triage(settings, store, base_url=base)
        echo(f"  triage: checked={tri.checked} states={dict(tri.states)}")
        top = await CandidateRepo(store).list(statuses=[CandidateStatus.TRIAGED], limit=5, order="score")
        for c in top:
            echo(f"  candidate {c['_id']:<36} type={c.get('type')} score={c.get('score')} title={c.get('title')!r}")

        echo("== 6. takedowns: an alert becomes a request, is sent, and is re-checked as the site changes ==")
        await _takedowns(settings, store, ledger, site, echo)

        echo("== 7. staff are told at once, and a drafted request is approved and sent ==")
        await demo_alerts.run(settings, store, ingest, ledger, site, echo)

        echo("== 7b. a screenshot of the case's newest post (headless Chromium; recorded as unavailable without it) ==")
        newest = await MessageRepo(store).query(channel="daily_brief", limit=1)
        if newest:
            shot = await Screenshots(store, settings, ledger, web_base=base).capture(
                str(newest[0]["_id"]), actor="cli:demo", reason="demo", seconds=60
            )
            echo(
                f"  {shot.message}: " + (f"sha256 {shot.sha256}" if shot.sha256 else f"unavailable: {shot.unavailable}")
            )

    echo("== 8. a list imported late still finds an older post (retroactive matching) ==")
    await demo_alerts.late_import(settings, store, ledger, world, echo)

    echo("== 9. the detection service drains its queue over HTTP with a detector token ==")
    await _detect(settings, store, echo)

    echo("== 10. evidence: sign, verify the whole ledger, export and verify the case bundle ==")
    await _evidence(settings, ledger, echo)


async def _takedowns(settings: Settings, store: Store, ledger: Ledger, site: Any, echo: Echo) -> None:
    from crawler.takedowns.models import Reason
    from crawler.takedowns.render import render_text
    from crawler.takedowns.run import build_probes
    from crawler.takedowns.service import TakedownService
    from crawler.takedowns.stats import compute_stats
    from spiders.sample_site.content import ChannelKind

    service = TakedownService(store, ledger, settings.takedowns)
    alerts = await AlertRepo(store).list(kind="hash_match", limit=10_000)
    alerts = [a for a in alerts if (a.get("details") or {}).get("list") == "demo-known"]  # not step 7's or 8's
    alert = min(alerts, key=lambda a: str(a["_id"])) if alerts else None
    if alert is None:
        echo("  no hash-list alert to report")
        return
    note = "synthetic demo content"
    by_alert = await service.create(alert=alert["_id"], reason=Reason.OTHER, actor="demo", case=CASE, note=note)
    by_channel = await service.create(channel="korea_now", reason=Reason.OTHER, actor="demo", case=CASE, note=note)
    report = render_text(by_alert, settings.takedowns).splitlines()
    echo(f"  {by_alert.id} from alert {alert['_id'][:40]}…: {len(by_alert.items)} items; report begins:")
    for line in report[: report.index("Details:")]:
        if line.strip():
            echo(f"    | {line[:110]}")
    for req in (by_alert, by_channel):
        await service.mark_sent(req.id, via="email:abuse@telegram.org", actor="demo")
    probes = build_probes(settings, web_base=site.base_url)
    for req in (by_alert, by_channel):
        summary = await service.recheck(probes, request_id=req.id)
        echo(f"  re-check right after sending, {req.id}: {dict(summary.results)}")
    gone = by_alert.items[0]
    world = site.world.with_kind("korea_now", ChannelKind.BLOCKED)
    if gone.msg_id is not None and gone.username is not None:
        world = world.without_message(gone.username, gone.msg_id)
    site.set_world(world)
    echo(f"  the site removes {gone.link} and blocks @korea_now")
    for req in (by_alert, by_channel):
        summary = await service.recheck(probes, request_id=req.id)
        now = await service.get(req.id)
        states = ", ".join(f"{i.link}: {i.status.value} ({i.status_reason})" for i in now.items)
        echo(f"  re-check {req.id} → {now.status.value}: {states}")
    figures = compute_stats(await service.all(), utcnow(), overdue_after=settings.takedowns.overdue_after).as_dict()
    echo(
        f"  figures: requests {figures['requests']}, items {figures['items']}, "
        f"request → removal n={figures['request_to_removal']['count']}"
    )
    history = await service.history(by_alert.id)
    echo(f"  ledger history of {by_alert.id}: {', '.join(e['action'] for e in history)}")


async def _detect(settings: Settings, store: Store, echo: Echo) -> None:
    # the token lives only as long as this step: a demo must not leave a working detector credential
    tokens = TokenRepo(store, server_secret(settings))
    token, doc = await tokens.create("demo-detector", Role.DETECTOR)
    try:
        app = build_app(store, settings, ALL_MODULES)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            detector = callable_detector("crawler.detection.demo_detector:hash_list_detector")
            async with DetectionClient(f"http://{host}:{port}", token) as client:
                stats = await run_consumer(client, detector, concurrency=4, until_empty=True, lease_seconds=60)
                queue = await client.stats()
        finally:
            await runner.cleanup()
    finally:
        await tokens.revoke(doc["token_id"])
    echo(f"  verdicts posted: {stats.acked} {dict(stats.decisions)}; queue now {queue}")
    echo("  (the demo detector is not a model: positive exactly for hash-list matches, unknown otherwise)")


async def _evidence(settings: Settings, ledger: Ledger, echo: Echo) -> None:
    if ledger.signer is None:
        echo("  no signing key: run `tgwatch evidence keygen` to sign tree heads")
        return
    head = await sign_head_now(ledger, ledger.signer)
    echo(f"  signed tree head: size={head.size} root={head.root_hash[:16]}… key id={head.key_id[:16]}…")
    public = load_public_key(settings.evidence.public_key_path(settings.data_dir).read_bytes())
    heads = [{k: h[k] for k in ("size", "root_hash", "timestamp", "signature", "key_id")} for h in await ledger.heads()]
    check = await verify_ledger_async(ledger.iter_entries(), heads, public)
    echo(f"  verify-ledger: {check.summary()}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo-case.zip"
        media = QuarantineMediaSource(DetectionService(ledger.store, settings).quarantine)
        exporter = Exporter(
            ledger, public, signer=ledger.signer, media=media, media_roles=settings.evidence.export_media_roles
        )
        # the investigator's bundle (records, raw pages, media the authorization allows); an auditor's
        # would hold ledger entries, proofs and digests only (docs/security.md)
        result = await exporter.export(CASE, out, actor="cli:demo", role="investigator")
        bundle = verify_bundle(out)
        echo(f"  case bundle: {result.entries} entries, {result.files} files, {result.withheld} withheld (digest only)")
        echo(f"  offline verification of the bundle: {bundle.summary()}")
        with zipfile.ZipFile(out) as zf:
            names = zf.namelist()
        echo(
            f"  web archive (WACZ, opens in ReplayWeb.page or pywb): {'web/archive.wacz' in names}; "
            f"gap report: {'reports/gaps.json' in names}; screenshots and media: "
            f"{sum(1 for n in names if n.startswith('captures/media/'))} files"
        )

"""The web notification path end to end, as ``bench/latency.py`` (b) measures it, in miniature: the
sample site publishes a post whose photo is on a hash list, ``tgwatch run`` (a real process) crawls
the channel on its schedule, the media stage matches the photo, and the dispatcher in that process
sends one signed webhook to a local receiver with the alert's facts. An unlisted post published
beside it is crawled too and causes nothing."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import signal
from pathlib import Path

from crawler.hashing.images import hash_image
from spiders.sample_site import SampleSite, build_world
from spiders.sample_site.publish import empty_channel, photo_bytes, with_channel, with_photo_post
from storage.client import Store
from tests.notify_support import SECRET, webhook_receiver
from tests.test_scheduling_support import PYTHON, env_for

CHANNEL = "alert_feed"
LISTED, UNLISTED = "latency-path-listed-1", "latency-path-unlisted-2"


async def run_cli(env: dict[str, str], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        PYTHON, "-m", "crawler", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


async def wait_for(predicate: object, what: str, timeout: float = 120.0) -> None:
    """Poll until ``predicate()`` holds; the bound only keeps a broken build from hanging."""
    for _ in range(int(timeout / 0.2)):
        if await predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


async def test_listed_post_on_a_scheduled_channel_reaches_the_webhook(
    store: Store, embedded_uri: str, tmp_path: Path
) -> None:
    listed_jpeg = photo_bytes(LISTED)
    pdq = hash_image(listed_jpeg).pdq
    assert pdq is not None and pdq.quality >= 50
    hashes = tmp_path / "list.csv"
    with hashes.open("w", newline="") as fh:
        csv.writer(fh).writerows([["signal_type", "signal", "label"], ["pdq", pdq.hash, "test picture"]])
    world = with_channel(build_world(big_size=20), empty_channel(CHANNEL))
    world, _ = with_photo_post(world, CHANNEL, "before the list matters", "latency-path-warmup-0")
    async with SampleSite.serve(world) as site, webhook_receiver() as hook:
        env = env_for(embedded_uri, store.db.name, site.base_url, tmp_path)
        env.update(TGWATCH_HTTP__ALLOW_PRIVATE_HOSTS='["127.0.0.1"]', HOOK_SECRET=SECRET)
        await run_cli(env, "hashes", "import", str(hashes), "--list", "victim-list")
        await run_cli(env, "notify", "add", "staff-hook", "--webhook", hook.url, "--secret-env", "HOOK_SECRET",
                      "--on", "hash_match", "--lang", "en")  # fmt: skip
        await run_cli(env, "targets", "add", CHANNEL, "--method", "web", "--every", "2s", "--jitter", "0s")
        log = (tmp_path / "run.log").open("wb")
        daemon = await asyncio.create_subprocess_exec(PYTHON, "-m", "crawler", "run", env=env, stdout=log, stderr=log)
        try:

            async def crawled(msg_id: int) -> bool:
                return await store["messages"].find_one({"channel": CHANNEL, "msg_id": msg_id}) is not None

            await wait_for(lambda: crawled(1), "the first crawl")
            site.set_world(with_photo_post(site.world, CHANNEL, "listed picture", LISTED)[0])
            site.set_world(with_photo_post(site.world, CHANNEL, "another picture", UNLISTED)[0])

            async def arrived() -> bool:
                return bool(hook.received)

            await wait_for(arrived, "the notification")
            await wait_for(lambda: crawled(3), "the unlisted post's crawl")
            await wait_for(lambda: store["media"].find_one({"_id": hashlib.sha256(photo_bytes(UNLISTED)).hexdigest()}),
                           "the unlisted photo's hashing")  # fmt: skip
            await wait_for(lambda: store["notify_deliveries"].find_one({"state": "done"}), "the delivery's settling")
        finally:
            if daemon.returncode is None:
                daemon.send_signal(signal.SIGTERM)
                await asyncio.wait_for(daemon.wait(), 90)
            log.close()
    (got,) = hook.received  # the unlisted post raised nothing
    assert got.verified
    body = got.json
    assert body["type"] == "alert"
    (alert,) = body["alerts"]
    sha256 = hashlib.sha256(listed_jpeg).hexdigest()
    assert alert["key"] == f"match/victim-list/{sha256}"
    assert alert["kind"] == "hash_match" and alert["severity"] == "critical"
    assert alert["list"] == "victim-list"
    assert alert["channels"] == [CHANNEL]
    assert alert["message_link"] == f"{site.base_url}/{CHANNEL}/2"
    assert sha256 in alert["digests"]
    assert f"{site.base_url}/{CHANNEL}/2" in body["text"]
    assert listed_jpeg not in got.body  # facts only, never the media

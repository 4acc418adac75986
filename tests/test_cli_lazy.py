"""Processes load what they use (issue 17): the command table, and what a crawl worker imports.

A ``tgwatch worker`` child that imported every command module carried Telethon, PyAV, the API, the
console and Jinja: ~60 MB of resident memory per crawling process that it never used. These tests
guard that win by looking at ``sys.modules`` of real subprocesses.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest

from config.targets import TargetsConfig
from crawler.cli import COMMANDS, cli
from crawler.scheduling.daemon import Daemon
from spiders.sample_site.server import SampleSite
from storage.client import Store
from tests.test_scheduling_support import env_for, many_channels

#: what a crawl-only process must never import (the API, the console, the HTTP server, Telethon, PyAV)
NOT_FOR_CRAWLING = ("crawler.api", "crawler.console", "aiohttp.web", "jinja2", "telethon", "av")

#: runs ``python -m crawler ARGS`` and writes its ``sys.modules`` to argv[1] at exit
DUMP_MODULES = """
import atexit, json, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv[0] = "tgwatch"
runpy.run_module("crawler", run_name="__main__")
"""


def loaded(modules: list[str], prefix: str) -> list[str]:
    return [m for m in modules if m == prefix or m.startswith(prefix + ".")]


def test_every_row_is_the_command_it_names() -> None:
    ctx = click.Context(cli)
    for name, row in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name, name
        assert command.get_short_help_str(10_000) == row.help, f"help of {name!r} drifted from its docstring"
    crawl = cli.get_command(ctx, "crawl")
    assert isinstance(crawl, click.Group) and "aggregator" in crawl.commands
    from crawler.cli import evidence, scheduling, telegram

    families = (*evidence.COMMANDS, *scheduling.COMMANDS, *telegram.COMMANDS)
    assert {c.name for c in families} <= set(COMMANDS), "a family's command has no row in crawler.cli.COMMANDS"


def test_help_lists_every_command_without_importing_one() -> None:
    script = (
        "import json, sys\nfrom crawler.cli import cli\n"
        "try:\n    cli(['--help'], prog_name='tgwatch')\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60).stdout
    help_text, modules_line = out.rsplit("\n", 2)[0], out.rstrip().splitlines()[-1]
    modules = json.loads(modules_line)
    for name in COMMANDS:
        assert f"\n  {name} " in help_text, name
    assert "Read CHANNEL's history into the store" in help_text
    families = [m for m in modules if m.startswith("crawler.cli.") and m not in ("crawler.cli.app", "crawler.cli.lazy")]
    assert families == []
    for prefix in (*NOT_FOR_CRAWLING, "crawler.pipeline", "scrapy"):
        assert loaded(modules, prefix) == [], prefix


@pytest.mark.slow
async def test_crawl_worker_imports_no_api_console_or_video_decoder(
    store: Store, embedded_uri: str, tmp_path: Path
) -> None:
    due = datetime(2026, 5, 1, 12, 0, 1, tzinfo=UTC)
    config = TargetsConfig.model_validate({"targets": [{"name": "feed_00", "every": "10m", "jitter": "0s"}]})
    async with SampleSite.serve(many_channels(1, posts=20)) as site:
        daemon = Daemon(store, lambda: config, clock=due.timestamp)
        await daemon.sync()
        await daemon.tick(due)
        env = env_for(embedded_uri, store.db.name, site.base_url, tmp_path)
        dump = tmp_path / "modules.json"
        args = ["worker", "--until-idle", "--poll", "0.2"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", DUMP_MODULES, str(dump), *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 180)
        assert proc.returncode == 0, err.decode()[-3000:]
    (run,) = await store["runs"].find({"target": "https://t.me/feed_00"}).to_list(None)
    assert run["status"] == "ok" and run["counts"]["new"] > 0  # it really crawled and stored
    kinds = {doc.get("kind") for doc in await store["media"].find().to_list(None)}
    assert "image" in kinds, f"the crawl hashed media through the pool: {kinds}"
    modules = json.loads(dump.read_text())
    assert loaded(modules, "scrapy")  # the crawl path itself was taken in this process
    for prefix in NOT_FOR_CRAWLING:
        assert loaded(modules, prefix) == [], f"a crawl worker imported {prefix}"


def test_crawl_command_path_imports_no_api_console_or_video_decoder() -> None:
    script = (
        "import json, sys\nfrom crawler.cli import cli\n"
        "try:\n    cli(['crawl', 'channel', '--help'], prog_name='tgwatch')\nexcept SystemExit:\n    pass\n"
        "import crawler.crawl_web, crawler.pipeline, spiders.tme_channel\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60).stdout
    modules = json.loads(out.rstrip().splitlines()[-1])
    assert "crawler.cli.crawl" in modules and "crawler.pipeline" in modules
    for prefix in NOT_FOR_CRAWLING:
        assert loaded(modules, prefix) == [], f"the crawl command imported {prefix}"

"""The ``tgwatch`` command line: one group, one module per command family, imported on demand.

Registering a command family: add one row to ``COMMANDS`` below (name → module, attribute, the first
sentence of its docstring). Subcommands added to a group inside its own module (``case members``,
``detector run`` options) need nothing here. The module is imported only when the command runs, so
a crawl worker never loads the API, the console or Telethon; ``tests/test_cli_lazy.py`` fails if a
row is missing, points nowhere, or its help drifts from the docstring.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from crawler.cli.app import AppContext
from crawler.cli.lazy import LazyCommand, LazyGroup
from storage.private import PRIVATE_UMASK

_TG, _EV, _SCHED, _CORE = "crawler.cli.telegram", "crawler.cli.evidence", "crawler.cli.scheduling", "crawler.cli.core"

#: every top-level command: name → where it lives and its one-line help for ``tgwatch --help``
COMMANDS: dict[str, LazyCommand] = {
    "accounts": LazyCommand(
        _TG, "accounts_group", "The pool of Telegram accounts (sessions and phones stored encrypted)."
    ),
    "auth": LazyCommand(_EV, "auth_group", "Authorizations for undercover collection (private joins and reads)."),
    "backfill": LazyCommand(
        _TG, "backfill_cmd", "Read CHANNEL's history into the store; resumable (rerun after any interruption)."
    ),
    "bot": LazyCommand(
        _TG, "bot_cmd", "Record bots (name, description, commands) by username or t.me link; refreshes known ones."
    ),
    "candidates": LazyCommand(
        "crawler.cli.discovery",
        "candidates_group",
        "Review discovered rooms: list, approve into crawl targets, reject, add tips.",
    ),
    "case": LazyCommand(_EV, "case_group", "Cases: what belongs to an investigation."),
    "channels": LazyCommand(
        "crawler.cli.channels", "channels_group", "Channels, groups and bots: audience growth, gaps in what was held."
    ),
    "config": LazyCommand(_CORE, "config_group", "Inspect the effective settings."),
    "crawl": LazyCommand(
        "crawler.cli.crawl",
        "crawl",
        "Crawl public sources (the t.me web preview) into the store.",
        subcommands=[("crawler.cli.discovery", "aggregator_cmd")],
    ),
    "db": LazyCommand(_CORE, "db_group", "Inspect the store."),
    "demo": LazyCommand(
        "crawler.cli.demo",
        "demo_cmd",
        "Run tgwatch end to end on the bundled offline sample site, in the embedded (or configured) store.",
    ),
    "detector": LazyCommand(
        "crawler.cli.detection",
        "detector_group",
        "Run a detector against the queue over HTTP.",
        subcommands=[("crawler.cli.watchlist", "detector_faces")],
    ),
    "discover": LazyCommand("crawler.cli.discovery", "discover_group", "Triage discovery candidates."),
    "evidence": LazyCommand(_EV, "evidence_group", "Signing key, case bundles, and the whole-ledger check."),
    "hashes": LazyCommand(
        "crawler.cli.hashes",
        "hashes_group",
        "Known-hash lists (StopNCII, ThreatExchange, CSV, JSON Lines) and matching.",
    ),
    "init": LazyCommand(_CORE, "init_cmd", "Create every collection and index (idempotent)."),
    "invite": LazyCommand(
        _TG, "invite_group", "Invite links: check (always allowed) or join (only under an authorization)."
    ),
    "notify": LazyCommand(
        "crawler.cli.notify", "notify_group", "Notification rules and deliveries (webhook, e-mail, Telegram bot)."
    ),
    "query": LazyCommand("crawler.cli.query", "query_group", "Read collected records."),
    "queue": LazyCommand("crawler.cli.detection", "queue_group", "The detection queue."),
    "run": LazyCommand(
        _SCHED, "run_cmd", "Run the scheduler daemon until SIGTERM/Ctrl-C (twice: abandon crawls in flight)."
    ),
    "run-now": LazyCommand(
        _SCHED, "run_now_cmd", "Crawl TARGET (or every target of GROUP) now, in this process, with run records."
    ),
    "runs": LazyCommand(_SCHED, "runs_group", "Crawl run history."),
    "schedule": LazyCommand(_SCHED, "schedule_group", "The effective schedules."),
    "serve": LazyCommand("crawler.cli.serve", "serve_cmd", "Serve the HTTP API (and console) until interrupted."),
    "takedown": LazyCommand(
        "crawler.cli.takedowns",
        "takedown_group",
        "Removal requests to platforms: create, review drafts, send, mark sent, re-check, figures.",
    ),
    "targets": LazyCommand(
        _SCHED, "targets_group", "Channels crawled on a schedule (configuration [[targets]] plus those added here)."
    ),
    "tokens": LazyCommand("crawler.cli.serve", "tokens_group", "API tokens (stored hashed; shown once)."),
    "watchlist": LazyCommand(
        "crawler.cli.watchlist",
        "watchlist_group",
        "Consent-based watchlist: enroll a person who asked for help, list, withdraw.",
    ),
    "watch": LazyCommand(_TG, "watch_cmd", "Follow CHANNELS live: new, edited and deleted messages (Ctrl-C to stop)."),
    "worker": LazyCommand(_SCHED, "worker_cmd", "Claim crawl tasks from the shared queue and run them until SIGTERM."),
    "capture": LazyCommand(
        "crawler.cli.captures",
        "capture_group",
        "Court-ready captures: web archives (WARC) of fetched pages, screenshots of posts.",
    ),
    "graph": LazyCommand(
        "crawler.cli.captures",
        "graph_group",
        "Channel networks: forwards, mentions, links and shared media as a graph file.",
    ),
}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="TOML settings file")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="where tgwatch keeps its data")
@click.option("--log-format", type=click.Choice(["auto", "json", "console"]), help="log renderer")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), help="log level")
@click.version_option(package_name="tgwatch")
@click.pass_context
def cli(
    ctx: click.Context, config_path: Path | None, data_dir: Path | None, log_format: str | None, log_level: str | None
) -> None:
    """tgwatch: collect and preserve evidence from public Telegram channels and invite-link sites."""
    os.umask(PRIVATE_UMASK)  # before anything is written: what tgwatch creates is its user's alone
    ctx.obj = AppContext(
        config_path=config_path,
        overrides={"data_dir": data_dir, "log_format": log_format, "log_level": log_level},
    )


def main() -> None:
    cli(prog_name="tgwatch")

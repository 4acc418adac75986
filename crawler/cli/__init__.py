"""The ``tgwatch`` command line: one group, one module per command family."""

from __future__ import annotations

from pathlib import Path

import click

from crawler.cli.app import AppContext
from crawler.cli.core import config_group, db_group, init_cmd
from crawler.cli.crawl import crawl
from crawler.cli.demo import demo_cmd
from crawler.cli.detection import detector_group, queue_group
from crawler.cli.discovery import aggregator_cmd, candidates_group, discover_group
from crawler.cli.evidence import COMMANDS as EVIDENCE_COMMANDS
from crawler.cli.hashes import hashes_group
from crawler.cli.notify import notify_group
from crawler.cli.query import query_group
from crawler.cli.scheduling import COMMANDS as SCHEDULING_COMMANDS
from crawler.cli.serve import serve_cmd, tokens_group
from crawler.cli.takedowns import takedown_group
from crawler.cli.telegram import COMMANDS as TELEGRAM_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
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
    ctx.obj = AppContext(
        config_path=config_path,
        overrides={"data_dir": data_dir, "log_format": log_format, "log_level": log_level},
    )


cli.add_command(init_cmd)
cli.add_command(config_group)
cli.add_command(db_group)
cli.add_command(query_group)
cli.add_command(demo_cmd)
cli.add_command(serve_cmd)
cli.add_command(tokens_group)
cli.add_command(queue_group)
cli.add_command(detector_group)
cli.add_command(hashes_group)
crawl.add_command(aggregator_cmd)
cli.add_command(crawl)
cli.add_command(discover_group)
cli.add_command(candidates_group)
cli.add_command(takedown_group)
cli.add_command(notify_group)
for _command in (*TELEGRAM_COMMANDS, *EVIDENCE_COMMANDS, *SCHEDULING_COMMANDS):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="tgwatch")

"""The telegram CLI commands through click's runner (the lead wires them into ``tgwatch``)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from crawler.cli.app import AppContext
from crawler.cli.telegram import COMMANDS, accounts_group
from telegram_watch.crypto import generate_key


def test_commands_have_help() -> None:
    runner = CliRunner()
    for command in COMMANDS:
        result = runner.invoke(command, ["--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_accounts_refuse_to_run_without_a_secrets_key(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        accounts_group,
        ["list"],
        obj=AppContext(overrides={"data_dir": tmp_path}),
        env={"TGWATCH_TELEGRAM__SECRETS_KEY": ""},
    )
    assert result.exit_code != 0 and "secrets_key is not set" in result.output


def test_accounts_list_and_remove_on_an_empty_pool(tmp_path: Path) -> None:
    env = {
        "TGWATCH_TELEGRAM__SECRETS_KEY": generate_key(),
        "TGWATCH_TELEGRAM__API_ID": "1",
        "TGWATCH_TELEGRAM__API_HASH": "0123456789abcdef0123456789abcdef",
    }
    runner = CliRunner()
    listed = runner.invoke(accounts_group, ["list"], obj=AppContext(overrides={"data_dir": tmp_path}), env=env)
    assert listed.exit_code == 0, listed.output
    assert listed.output.strip() == "" or "embedded" in listed.output
    removed = runner.invoke(
        accounts_group, ["remove", "ghost"], obj=AppContext(overrides={"data_dir": tmp_path}), env=env
    )
    assert removed.exit_code != 0 and "no account named 'ghost'" in removed.output

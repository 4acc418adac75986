"""A click group that imports a command's module only when that command runs.

Why: the command modules between them import Telethon, PyAV, the API, the console and Jinja; a
``tgwatch worker`` child that only crawls paid ~60 MB of resident memory for imports it never used
(issue 17). Each top-level command is a :class:`LazyCommand` row (module, attribute, one-line help);
``tgwatch --help`` is printed from the rows, so listing the commands imports none of them.
``tests/test_cli_lazy.py`` checks every row's help against the real command's.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import click


@dataclass(frozen=True)
class LazyCommand:
    """Where one top-level command lives. ``help`` is the first sentence of its docstring (what
    ``tgwatch --help`` shows, shortened to the terminal); ``subcommands`` are (module, attribute)
    pairs attached to the loaded group (commands defined beside another family's)."""

    module: str
    attribute: str
    help: str
    subcommands: Sequence[tuple[str, str]] = ()

    def load(self) -> click.Command:
        command = getattr(importlib.import_module(self.module), self.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.module}.{self.attribute} is not a click command")
        for module, attribute in self.subcommands:
            sub = getattr(importlib.import_module(module), attribute)
            if isinstance(command, click.Group) and sub.name not in command.commands:
                command.add_command(sub)
        return command


class LazyGroup(click.Group):
    """``click.Group`` whose commands come from a table of :class:`LazyCommand` rows, imported on
    first use. Commands added with ``add_command`` work as in any group (and win over a row)."""

    def __init__(self, *args: object, lazy: Mapping[str, LazyCommand] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy: dict[str, LazyCommand] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in self.lazy:
            command = self.lazy[cmd_name].load()
            self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands section from the table: no command module is imported to print it."""
        names = [n for n in self.list_commands(ctx) if n in self.commands or n in self.lazy]
        visible = [n for n in names if n not in self.commands or not self.commands[n].hidden]
        if not visible:
            return
        limit = formatter.width - 6 - max(len(n) for n in visible)
        rows = []
        for name in visible:
            loaded = self.commands.get(name)
            shown = loaded or click.Command(name, help=self.lazy[name].help)  # the same shortening
            text = shown.get_short_help_str(limit)
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

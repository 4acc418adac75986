"""``python -m crawler.scheduling …`` is ``tgwatch …`` with the scheduling commands surely present.

Child worker processes of ``tgwatch run --workers N`` are started this way, so they do not depend on
how the console script was installed.
"""

from __future__ import annotations

from crawler.cli import cli
from crawler.cli.scheduling import COMMANDS

for command in COMMANDS:
    if command.name not in cli.commands:
        cli.add_command(command)

if __name__ == "__main__":
    cli(prog_name="tgwatch")

"""``python -m crawler.scheduling …`` is ``tgwatch …`` (the scheduling commands are in its table).

Child worker processes of ``tgwatch run --workers N`` are started this way, so they do not depend on
how the console script was installed.
"""

from __future__ import annotations

from crawler.cli import cli

if __name__ == "__main__":
    cli(prog_name="tgwatch")

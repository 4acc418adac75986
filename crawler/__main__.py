"""``python -m crawler`` is the ``tgwatch`` command (handy where the console script is not on PATH)."""

from __future__ import annotations

from crawler.cli import main

if __name__ == "__main__":
    main()

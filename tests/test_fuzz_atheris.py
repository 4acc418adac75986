"""One short, bounded atheris (libFuzzer) run over the channel-page parser, in a subprocess.

Why: coverage-guided fuzzing finds branches that Hypothesis's mutations of corpus pages do not
aim at; a subprocess keeps libFuzzer's process-wide instrumentation out of the test session.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HARNESS = textwrap.dedent(
    """
    import sys
    import atheris

    with atheris.instrument_imports():
        from spiders.parsing.channel import parse_page

    def one(data: bytes) -> None:
        page = parse_page(data, "https://t.me/s/durov")
        for m in page.messages:
            assert m.msg_id > 0
            assert m.date is None or m.date.utcoffset().total_seconds() == 0

    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
    """
)


@pytest.mark.slow
def test_atheris_short_run_over_parse_page(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed in this environment")
    harness = tmp_path / "fuzz_parse_page.py"
    harness.write_text(HARNESS, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(harness), "-atheris_runs=2000", "-seed=1", "-max_len=4096", "-rss_limit_mb=1024"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Done 2000 in" in proc.stderr, proc.stderr[-2000:]

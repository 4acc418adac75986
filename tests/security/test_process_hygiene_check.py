"""The session-end process check: it fails a run that leaves a process behind, and only then.

Each case runs pytest in a subprocess on a tiny test file with the check loaded as a plugin.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from tests.process_hygiene import RUN_ENV

ROOT = Path(__file__).resolve().parents[2]

PLANTS_AN_ORPHAN = textwrap.dedent(
    """
    import os, subprocess, sys

    def test_starts_a_process_and_forgets_it(tmp_path):
        # double fork: the sleeper is adopted by init, as a daemonised server or forkserver would be
        code = "import os, time\\nif os.fork():\\n    os._exit(0)\\nprint(os.getpid(), flush=True)\\ntime.sleep(300)"
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        (tmp_path.parent.parent / "orphan.pid").write_text(proc.stdout.readline())
        proc.wait()
    """
)

CLEAN = textwrap.dedent(
    """
    import subprocess, sys

    def test_starts_a_process_and_waits_for_it():
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    """
)


def run_pytest(tmp_path: Path, source: str, *extra: str) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "inner" / "test_inner.py"
    test_file.parent.mkdir(exist_ok=True)
    (tmp_path / "base").mkdir(exist_ok=True)
    test_file.write_text(source)
    env = {k: v for k, v in os.environ.items() if k != RUN_ENV}
    env.update(PYTHONPATH=str(ROOT), PYTEST_TGWATCH_LEFTOVER_GRACE="1")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.process_hygiene", "-q",
         "--basetemp", str(tmp_path / "base" / "t"), *extra, str(test_file)],
        capture_output=True, text=True, env=env, cwd=tmp_path / "inner", timeout=300,
    )  # fmt: skip


def test_a_planted_orphan_fails_the_run_and_is_killed(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, PLANTS_AN_ORPHAN)
    pid = int((tmp_path / "base" / "orphan.pid").read_text())
    try:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "1 passed" in proc.stdout, "the test itself passed: the check failed the run"
        assert "process hygiene: 1 process(es) started by this test run were still alive" in proc.stdout
        assert f"pid {pid} " in proc.stdout
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    finally:
        if psutil.pid_exists(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_clean_run_passes_beside_unrelated_processes(tmp_path: Path) -> None:
    unrelated_env = {k: v for k, v in os.environ.items() if k != RUN_ENV}
    unrelated = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)"], env=unrelated_env, start_new_session=True
    )
    try:
        proc = run_pytest(tmp_path, CLEAN, "-n", "2")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "process hygiene" not in proc.stdout
        assert unrelated.poll() is None, "a process of no concern to the run was left alone"
    finally:
        unrelated.kill()
        unrelated.wait()

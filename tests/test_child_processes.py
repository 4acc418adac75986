"""Children started with ``die_with_parent`` never outlive a killed parent (Linux).

CI once found a detector command still sleeping after its consumer had been killed with
``kill -9``: the child had asked for the signal from inside the fork (import and ``dlopen`` after
fork, failures swallowed). These tests kill a real parent and look for its child.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")

PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    from foundation.child_processes import die_with_parent
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], preexec_fn=die_with_parent())
    print(child.pid, flush=True)
    time.sleep(600)
    """
)

#: the parent forks a middle process that spawns with the *parent's* preexec: from the grandchild's
#: side that is exactly "the parent that asked died before prctl took effect"
STALE_PARENT = textwrap.dedent(
    """
    import os, subprocess, sys
    from foundation.child_processes import die_with_parent
    preexec = die_with_parent()
    pid = os.fork()
    if pid == 0:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], preexec_fn=preexec)
        os._exit(child.wait())
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
    """
)


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_a_child_dies_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child_pid = 0
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert psutil.pid_exists(child_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _gone_within(child_pid, 10.0), "the child outlived its killed parent"
    finally:
        parent.kill()
        parent.wait()
        if child_pid and psutil.pid_exists(child_pid):
            psutil.Process(child_pid).kill()


def test_a_child_whose_parent_died_before_the_request_exits_at_once() -> None:
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", STALE_PARENT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1", "the grandchild must exit 1 before exec instead of sleeping on"
    assert time.monotonic() - started < 30

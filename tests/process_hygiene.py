"""Session-end check: every process the test run started has ended with it.

The controller (the only process when not under xdist) marks the run with an environment variable
that every process started by a test inherits, and remembers its base temp dir. When the session
finishes (after xdist has stopped its workers), any process still alive that carries this run's
mark, mentions this run's temp dir on its command line, or descends from the controller is a
leftover: the check waits a short grace period, names what remains, kills it, and fails the
session. Processes of other runs (another id, another temp dir) are never touched.

The hook functions carry their own names (``specname``) so that ``tests/conftest.py`` can import
them beside other hooks of the same kind.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable

import psutil
import pytest

#: not TGWATCH_-prefixed: tests build child environments without the TGWATCH_* variables
RUN_ENV = "PYTEST_TGWATCH_RUN"
#: seconds a process may take to finish after the session (stores stopping, trackers draining)
GRACE_SECONDS = float(os.environ.get("PYTEST_TGWATCH_LEFTOVER_GRACE", "20"))

_run: dict[str, object] = {}


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


@pytest.hookimpl(specname="pytest_configure")
def pytest_configure_process_hygiene(config: pytest.Config) -> None:
    if _is_controller(config):
        _run["id"] = os.environ[RUN_ENV] = uuid.uuid4().hex


@pytest.hookimpl(specname="pytest_sessionstart")
def pytest_sessionstart_process_hygiene(session: pytest.Session) -> None:
    if _is_controller(session.config):
        factory = getattr(session.config, "_tmp_path_factory", None)
        if factory is not None:
            with contextlib.suppress(Exception):  # a bad --basetemp is pytest's to report, not ours
                _run["basetemp"] = str(factory.getbasetemp()) + os.sep


def leftovers(run_id: str, basetemp: str | None, me: psutil.Process) -> list[psutil.Process]:
    """Live processes that came from this run, other than this one and its ancestors."""
    mine = {me.pid, *(p.pid for p in me.parents())}
    descendants = {p.pid for p in me.children(recursive=True)}
    found = []
    for proc in psutil.process_iter():
        if proc.pid in mine:
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.pid in descendants or (basetemp and basetemp in " ".join(proc.cmdline())):
                found.append(proc)
                continue
            if proc.environ().get(RUN_ENV) == run_id:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def stop_own_helpers(timeout: float) -> None:
    """Stop this process's multiprocessing forkserver and resource tracker.

    They belong to the test process itself (a ``HashPool`` used in-process starts them) and would
    end only when it exits, after this check. Closing their "alive" pipes asks them to stop;
    each stop waits for its helper, so it runs in a thread joined for at most ``timeout``.
    """
    from multiprocessing import forkserver, resource_tracker

    stops = [getattr(forkserver, "_forkserver", None), getattr(resource_tracker, "_resource_tracker", None)]
    for helper in stops:
        stop = getattr(helper, "_stop", None)
        if stop is None:
            continue
        thread = threading.Thread(target=_quietly, args=(stop,), name="stop-mp-helper", daemon=True)
        thread.start()
        thread.join(timeout)


def _quietly(stop: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        stop()


def _describe(proc: psutil.Process) -> str:
    try:
        command = " ".join(proc.cmdline()).replace("\n", "\\n")
        return f"pid {proc.pid} (parent {proc.ppid()}): {command[:240]}"
    except psutil.Error:
        return f"pid {proc.pid} (gone)"


@pytest.hookimpl(specname="pytest_sessionfinish", trylast=True)
def pytest_sessionfinish_process_hygiene(session: pytest.Session) -> None:
    """After xdist has torn its workers down (its hook runs before this trylast one)."""
    if not _is_controller(session.config) or "id" not in _run:
        return
    stop_own_helpers(GRACE_SECONDS / 2)
    me = psutil.Process()
    run_id, basetemp = str(_run["id"]), _run.get("basetemp")
    deadline = time.monotonic() + GRACE_SECONDS
    left = leftovers(run_id, basetemp if isinstance(basetemp, str) else None, me)
    while left and time.monotonic() < deadline:
        time.sleep(0.25)
        left = [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    if not left:
        return
    lines = [_describe(p) for p in left]
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    message = [f"process hygiene: {len(lines)} process(es) started by this test run were still alive", *lines]
    message.append("(they were killed now; a test or a command did not stop what it started)")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "process hygiene", red=True)
    for line in message:
        if reporter is not None:
            reporter.write_line(line, red=True)
        else:
            print(line)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED

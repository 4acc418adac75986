"""A hashing pool's processes (workers, forkserver, resource tracker) end when their owner is killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

OWNER = textwrap.dedent(
    """
    import asyncio, sys, time
    from crawler.hashing.pool import HashPool

    async def main() -> None:
        pool = HashPool(workers=2)
        await pool.warm_up()
        print("ready", flush=True)
        time.sleep(600)

    if __name__ == "__main__":
        asyncio.run(main())
    """
)


def test_sigkilled_owner_leaves_no_pool_process(tmp_path: Path) -> None:
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    root = str(Path(__file__).resolve().parents[2])
    owner = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=root, env={"PYTHONPATH": root}
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "ready"
        started = psutil.Process(owner.pid).children(recursive=True)
        cmdlines = [" ".join(p.cmdline()) for p in started]
        assert any("forkserver" in c for c in cmdlines) and any("resource_tracker" in c for c in cmdlines)
        assert len(started) >= 4  # tracker, forkserver, two workers
        owner.send_signal(signal.SIGKILL)
        assert owner.wait(timeout=30) == -signal.SIGKILL
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    _, alive = psutil.wait_procs(started, timeout=60)
    left = [" ".join(p.cmdline())[:120] for p in alive]
    for proc in alive:  # do not leave them behind even when the test fails
        proc.kill()
    assert not left, f"pool processes outlived their owner: {left}"

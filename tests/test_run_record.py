"""One run-record lifecycle (``RunRepo.record``): started with owner and heartbeat, finished with the
body's status, ``failed`` (or the body's failure word) when it raised, ``abandoned`` when cancelled."""

from __future__ import annotations

import asyncio

import pytest

from storage.client import Store
from storage.repos.runs import RunRepo


async def test_a_body_that_returns_finishes_with_its_status_and_fields(store: Store) -> None:
    runs = RunRepo(store)
    async with runs.record("t1", "kind", trigger="manual") as run:
        during = await runs.get(run.id)
        assert during is not None and during["status"] == "running" and during["owner"] and during["heartbeat"]
        run.status, run.extra = "partial", {"results": {"gone": 1}}
    done = await runs.get(run.id)
    assert done is not None and done["status"] == "partial" and done["results"] == {"gone": 1}
    assert done["trigger"] == "manual" and done["finished_at"] is not None


async def test_a_body_that_raises_finishes_failed_or_with_its_failure_word(store: Store) -> None:
    runs = RunRepo(store)
    with pytest.raises(RuntimeError):
        async with runs.record("t1", "kind") as failed:
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        async with runs.record("t1", "kind") as errored:
            errored.failed_status, errored.extra = "error", {"error": "RuntimeError: boom"}
            raise RuntimeError("boom")
    first, second = await runs.get(failed.id), await runs.get(errored.id)
    assert first is not None and first["status"] == "failed"
    assert second is not None and second["status"] == "error" and second["error"] == "RuntimeError: boom"


async def test_a_cancelled_body_is_abandoned(store: Store) -> None:
    runs = RunRepo(store)
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def body() -> None:
        async with runs.record("t1", "kind") as run:
            started.set_result(run.id)
            await asyncio.Event().wait()

    task = asyncio.create_task(body())
    run_id = await started
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    doc = await runs.get(run_id)
    assert doc is not None and doc["status"] == "abandoned"

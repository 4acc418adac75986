"""A detector trusts its job list no further than it must.

The consumer named its temporary file after the job's ``sha256``: a job from a compromised or
impersonated API (``sha256 = "../../x"``) made the detector host write the served bytes outside its
private temporary directory and then delete it (an existing file of the detector's user was
overwritten and removed). Here a hostile stand-in API serves such a job: a file outside stays as it
was, and the job still gets an answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from crawler.detection.client import DetectionClient
from crawler.detection.consumer import run_consumer


async def test_a_job_sha256_naming_a_path_touches_nothing_outside(tmp_path: Path) -> None:
    escape = tmp_path / "escaped"
    victim = tmp_path / "escaped.bin"
    victim.write_bytes(b"the detector user's own file")
    served = {"done": False}
    answered: list[str] = []

    async def claim(request: web.Request) -> web.Response:
        if served["done"]:
            return web.json_response({"jobs": []})
        served["done"] = True
        job = {"job_id": "j1", "token": "t1", "sha256": f"../../../../../../../..{escape}", "media_url": "/bytes"}
        return web.json_response({"jobs": [job]})

    async def media(request: web.Request) -> web.Response:
        return web.Response(body=b"planted by a hostile server")

    async def answer(request: web.Request) -> web.Response:
        answered.append(str((await request.json())["job_id"]))
        return web.json_response({"state": "queued", "ok": True})

    api = web.Application()
    api.router.add_post("/api/v1/detection/claim", claim)
    api.router.add_get("/bytes", media)
    api.router.add_post("/api/v1/detection/nack", answer)
    api.router.add_post("/api/v1/detection/ack", answer)
    api.router.add_post("/api/v1/detection/extend", answer)
    async with TestServer(api, host="127.0.0.1") as server:

        async def detector(path: Path, job: dict[str, Any]) -> dict[str, Any]:
            return {"decision": "negative"}

        async with DetectionClient(str(server.make_url("")), "tgw_detector-token") as client:
            await run_consumer(client, detector, until_empty=True, poll_interval=0.05)
    assert victim.exists(), "a file outside the consumer's directory was overwritten and removed"
    assert victim.read_bytes() == b"the detector user's own file"
    assert answered == ["j1"]

"""A screenshot of a post as a person sees it: the post widget rendered by headless Chromium.

Chromium is optional at run time: when ``chromium`` (or ``chromium-browser``) is not on the path,
or it fails or times out, the result says why and holds no image — a capture is recorded as
unavailable, never faked. The browser runs from the command line (``--headless --screenshot``) in
a child process that dies with tgwatch (``foundation.child_processes``), with a fresh profile
directory, no sync, no component updates, no background networking, and a host resolver that
knows only the post's host (``--host-resolver-rules``: every other name fails to resolve, and the
post's host is pinned to the address the egress guard checked), so a page cannot make the browser
fetch from anywhere else by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

from foundation.child_processes import die_with_parent
from foundation.egress import EgressPolicy

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (540, 900)
MAX_PNG = 20 * 1024 * 1024


@dataclass(frozen=True)
class Shot:
    url: str
    png: bytes | None = None
    unavailable: str | None = None  # why there is no image
    browser: str = ""


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def post_widget_url(web_base: str, username: str, msg_id: int) -> str:
    """The post's embeddable widget on the web preview (``https://t.me/NAME/ID?embed=1``)."""
    return f"{web_base.rstrip('/')}/{username}/{int(msg_id)}?embed=1"


async def shoot(url: str, policy: EgressPolicy, *, seconds: float = 45.0) -> Shot:
    """Render ``url`` and return its PNG, or why not (egress refused, no browser, failure, timeout)."""
    from foundation.errors import EgressDenied

    try:
        target = policy.check_url(url)
        addresses = await policy.check_resolved(target)
    except EgressDenied as exc:
        return Shot(url, unavailable=f"egress refused: {exc.message}")
    browser = find_browser()
    if browser is None:
        return Shot(url, unavailable="no Chromium on this machine (scripts/install-browser.sh)")
    if addresses and addresses[0] != target.host:  # a name: pinned to the address that was checked
        rules = f"MAP {target.host} {addresses[0]}, MAP * ~NOTFOUND"
    else:  # an address literal: left alone, every name refused
        rules = f"MAP * ~NOTFOUND, EXCLUDE {target.host}"
    with tempfile.TemporaryDirectory(prefix="tgwatch-shot-") as tmp:
        out = Path(tmp) / "shot.png"
        args = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions", "--hide-scrollbars",
            "--mute-audio", "--no-proxy-server", f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--host-resolver-rules={rules}", f"--screenshot={out}", url,
        ]  # fmt: skip
        log = Path(tmp) / "browser.log"
        with log.open("wb") as errors:  # a file, not a pipe: helper processes must not hold our read open
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=errors,
                preexec_fn=die_with_parent(),
                start_new_session=True,
            )
        try:
            await asyncio.wait_for(proc.wait(), seconds)
        except TimeoutError:
            return Shot(url, unavailable=f"Chromium did not finish within {seconds:g} s", browser=browser)
        finally:
            _kill_group(proc.pid)  # whatever helpers are left, done or not
            if proc.returncode is None:
                await proc.wait()
        err = log.read_bytes()[-4000:]
        if not out.is_file() or out.stat().st_size == 0:
            tail = (err or b"").decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            return Shot(url, unavailable=f"Chromium made no screenshot (exit {proc.returncode}): {tail[0][:200]}",
                        browser=browser)  # fmt: skip
        if out.stat().st_size > MAX_PNG:
            return Shot(url, unavailable="screenshot larger than the limit", browser=browser)
        data = out.read_bytes()
    if not data.startswith(b"\x89PNG"):
        return Shot(url, unavailable="Chromium wrote something that is not a PNG", browser=browser)
    return Shot(url, png=data, browser=browser)


def _kill_group(pid: int) -> None:
    """The browser and every helper process it started (its own session: ``start_new_session``)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)

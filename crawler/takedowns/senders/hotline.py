"""An HTTP POST of the JSON report to a national hotline's case system.

The body is the JSON report serialised once (sorted keys, UTF-8); the ledger's SHA-256 is the
digest of exactly those bytes. The URL is operator-configured; the POST goes through the one egress
guard (``guarded_session`` + ``open_guarded``, no redirects followed). The bearer token is read
from the environment variable the settings name, never stored or logged.
"""

from __future__ import annotations

import json
import os

import aiohttp

from config.takedowns import HotlineSenderSettings
from crawler.takedowns.models import TakedownRequest
from crawler.takedowns.senders.base import Rendered, SendFailed, SendResult, sha256_hex
from foundation.egress import EgressPolicy
from foundation.egress_http import guarded_session, open_guarded
from foundation.errors import EgressDenied, SourceError

#: the most of an answer read (its digest is kept, the body is not)
MAX_ANSWER = 64 * 1024


def body_bytes(report: dict[str, object]) -> bytes:
    return json.dumps(report, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


class HotlineSender:
    channel = "hotline"

    def __init__(self, settings: HotlineSenderSettings, *, default_language: str, egress: EgressPolicy) -> None:
        self.settings = settings
        self.default_language = default_language
        self.egress = egress.allowing(settings.url)

    def language(self, request: TakedownRequest) -> str | None:
        return self.settings.language or self.default_language

    async def send(self, request: TakedownRequest, rendered: Rendered) -> SendResult:
        s = self.settings
        data = body_bytes(rendered.report)
        digest = sha256_hex(data)
        if not s.url:
            raise SendFailed("no hotline URL configured (takedowns.senders.hotline.url)", retry=False)
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Tgwatch-Request": request.id}
        if s.token_env:
            token = os.environ.get(s.token_env, "")
            if not token:
                raise SendFailed(f"the hotline token variable {s.token_env} is not set", sha256=digest, retry=False)
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with (
                guarded_session(self.egress, timeout=aiohttp.ClientTimeout(total=s.timeout)) as session,
                open_guarded(session, "POST", s.url, policy=self.egress, max_redirects=0, data=data,
                             headers=headers) as response,
            ):  # fmt: skip
                status = response.status
                answer = await response.content.read(MAX_ANSWER)
        except EgressDenied as exc:
            raise SendFailed(f"hotline URL refused: {exc.message}", sha256=digest, retry=False) from exc
        except SourceError as exc:
            raise SendFailed(f"hotline: {exc.message}", sha256=digest) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SendFailed(f"hotline POST failed: {type(exc).__name__}: {exc}", sha256=digest) from exc
        if not 200 <= status < 300:
            raise SendFailed(f"hotline answered HTTP {status}", sha256=digest, retry=status >= 500 or status == 429)
        return SendResult(
            channel=self.channel, via=f"hotline:{s.name}", sha256=digest,
            answer={"status": status, "body_sha256": sha256_hex(answer), "body_bytes": len(answer)},
            reference=_reference(answer),
        )  # fmt: skip


def _reference(answer: bytes) -> str | None:
    """The hotline's case number, when its answer is JSON with ``reference`` or ``id``."""
    try:
        parsed = json.loads(answer)
    except ValueError:
        return None
    if isinstance(parsed, dict):
        for key in ("reference", "id"):
            value = parsed.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return str(value)[:200]
    return None

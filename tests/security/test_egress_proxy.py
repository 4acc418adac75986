"""Proxies and the egress guard: only the configured proxy, and a refused host never reaches it.

A proxy resolves and connects to the target itself, so the guard's connection-time checks never
see the target's address. tgwatch therefore (1) ignores ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``
from the environment in every client — the only proxy is ``http.proxy`` — and (2) checks each
target (URL, then its resolved addresses) before handing it to that proxy. These tests run a real
forward proxy on loopback (``tests/recording_proxy.py``) that records every request line it gets:
``localhost`` stands for a name that resolves to a private address (not named by the operator)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scrapy import Request
from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware
from scrapy.utils.test import get_crawler

import config
from crawler.hashing.exchanges import Exchange, NCMECExchange, StopNCIIExchange, ThreatExchangeExchange
from crawler.media.exchange_sync import sync_exchange
from foundation.egress import EgressPolicy
from foundation.egress_http import guarded_session
from foundation.errors import EgressDenied
from spiders.middlewares import ProxyMiddleware
from storage.client import Store
from tests.exchange_servers import (
    FETCH_KEY,
    NCMEC,
    NCMEC_PASSWORD,
    NCMEC_USER,
    SUBSCRIPTION_KEY,
    TE_TOKEN,
    StopNCII,
    ThreatExchange,
    serving,
)
from tests.recording_proxy import proxying
from tests.security.test_exchange_egress import by_name, first_page, heard

ROOT = Path(__file__).resolve().parents[2]
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def clean_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str | None], None]]:
    """No proxy variables (nor NO_PROXY) from the machine; a function that sets them all to a URL
    (None: removes them again)."""
    for name in (*PROXY_VARIABLES, "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    def set_all(url: str | None) -> None:
        for name in PROXY_VARIABLES:
            if url is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, url)

    yield set_all


def exchange_settings(name: str, base: str, *, allow: list[str], proxy: str | None, **more: Any) -> Any:
    exchanges = {
        "stopncii": {"fetch_key": FETCH_KEY, "subscription_key": SUBSCRIPTION_KEY, "base_url": base + "/v1"},
        "ncmec": {"user": NCMEC_USER, "password": NCMEC_PASSWORD, "environment": "test_NGO", "base_url": base},
        "threatexchange": {"access_token": TE_TOKEN, "privacy_groups": [555], "base_url": base},
    }
    return config.load(http={"allow_private_hosts": allow, "proxy": proxy}, exchanges={name: exchanges[name]}, **more)


def make_exchange(name: str, settings: Any) -> Exchange:
    if name == "threatexchange":
        return ThreatExchangeExchange(settings, 555)
    return StopNCIIExchange(settings) if name == "stopncii" else NCMECExchange(settings)


SERVERS: dict[str, Callable[[], Any]] = {"stopncii": StopNCII, "ncmec": NCMEC, "threatexchange": ThreatExchange}


# -- the exchange library (requests) ----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SERVERS))
async def test_a_proxy_from_the_environment_is_ignored(name: str, clean_proxy_environment: Any) -> None:
    server = SERVERS[name]()
    async with proxying() as (proxy, proxy_url), serving(server.app()) as url:
        clean_proxy_environment(proxy_url)
        settings = exchange_settings(name, url, allow=["127.0.0.1"], proxy=None)
        await asyncio.to_thread(first_page, make_exchange(name, settings))
    assert proxy.asked == [], "HTTPS_PROXY and friends are not read"
    assert heard(server) == 1, "the request went straight to the (named) exchange host"


@pytest.mark.parametrize("name", sorted(SERVERS))
async def test_a_refused_host_never_reaches_the_proxy(name: str, clean_proxy_environment: Any) -> None:
    server = SERVERS[name]()
    async with proxying() as (proxy, proxy_url), serving(server.app()) as url:
        clean_proxy_environment(proxy_url)  # set in the environment and in settings: still refused
        settings = exchange_settings(name, by_name(url), allow=[], proxy=proxy_url)
        with pytest.raises(EgressDenied, match="localhost resolves to non-public address"):
            await asyncio.to_thread(first_page, make_exchange(name, settings))
    assert proxy.asked == [] and heard(server) == 0


@pytest.mark.parametrize("name", sorted(SERVERS))
async def test_an_allowed_host_goes_through_the_configured_proxy(name: str, clean_proxy_environment: Any) -> None:
    server = SERVERS[name]()
    async with proxying() as (proxy, proxy_url), serving(server.app()) as url:
        settings = exchange_settings(name, by_name(url), allow=["localhost"], proxy=proxy_url)
        await asyncio.to_thread(first_page, make_exchange(name, settings))
    port = url.rsplit(":", 1)[1]
    assert proxy.asked and all(line.startswith(f"GET http://localhost:{port}/") for line in proxy.asked), proxy.asked
    assert heard(server) == 1, "the proxy fetched it"


async def test_a_sync_through_a_proxy_records_the_refusal_as_one_clear_error(
    store: Store, tmp_path: Path, clean_proxy_environment: Any
) -> None:
    server = ThreatExchange()
    server.put(555, 1, "HASH_PDQ", "f" * 64, ts=1000)
    async with proxying() as (proxy, proxy_url), serving(server.app()) as url:
        clean_proxy_environment(proxy_url)
        refused = exchange_settings("threatexchange", by_name(url), allow=[], proxy=proxy_url, data_dir=tmp_path / "a")
        result = await sync_exchange(store, refused, make_exchange("threatexchange", refused))
        assert result.status == "error" and "localhost resolves to non-public address" in (result.error or "")
        assert "Traceback" not in (result.error or "") and proxy.asked == []

        clean_proxy_environment(None)  # the setting alone sends the sync through the proxy
        allowed = exchange_settings(
            "threatexchange", by_name(url), allow=["localhost"], proxy=proxy_url, data_dir=tmp_path / "b"
        )
        ok = await sync_exchange(store, allowed, make_exchange("threatexchange", allowed))
    assert ok.status == "ok" and ok.added == 1, ok.error
    assert proxy.asked and all(line.startswith("GET http://localhost:") for line in proxy.asked), proxy.asked


# -- aiohttp (media, HMA lookups, webhooks) -----------------------------------------------------------
async def test_a_guarded_aiohttp_session_checks_the_target_before_the_proxy(clean_proxy_environment: Any) -> None:
    server = StopNCII()
    async with proxying() as (proxy, proxy_url), serving(server.app()) as url:
        target = by_name(url) + "/v1/FetchHashes?startTimestamp=1"
        async with guarded_session(EgressPolicy.from_settings(config.load(http={"proxy": proxy_url})),
                                   proxy=proxy_url) as session:  # fmt: skip
            with pytest.raises(EgressDenied, match="localhost resolves to non-public address"):
                await session.get(target)
            with pytest.raises(EgressDenied, match=r"non-public address 127\.0\.0\.2"):
                await session.get("http://127.0.0.2:9/")
        assert proxy.asked == []

        named = config.load(http={"proxy": proxy_url, "allow_private_hosts": ["localhost"]})
        allowed = EgressPolicy.from_settings(named)
        async with guarded_session(allowed, proxy=proxy_url) as session, session.get(target) as response:
            assert response.status in (200, 401, 403)
    assert proxy.asked == [f"GET {target}"]


async def test_a_guarded_aiohttp_session_never_takes_the_environment_proxy(clean_proxy_environment: Any) -> None:
    server = StopNCII()
    async with proxying() as (proxy, proxy_url), serving(server.app()) as url:
        clean_proxy_environment(proxy_url)
        with pytest.raises(ValueError, match="never take proxies from the environment"):
            guarded_session(EgressPolicy(), trust_env=True)
        policy = EgressPolicy(frozenset({"127.0.0.1"}))
        async with guarded_session(policy) as session, session.get(url + "/v1/FetchHashes") as response:
            assert response.status in (200, 401, 403)
    assert proxy.asked == []


# -- Scrapy --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("configured", [None, "http://127.0.0.1:3128"])
def test_scrapy_requests_use_the_configured_proxy_or_none(configured: str | None, clean_proxy_environment: Any) -> None:
    clean_proxy_environment("http://127.0.0.9:8080")
    crawler = get_crawler(settings_dict={"TGWATCH_PROXY": configured})
    ours, scrapys = ProxyMiddleware.from_crawler(crawler), HttpProxyMiddleware()  # Scrapy's reads the environment
    request = Request("https://t.me/s/somechannel")
    ours.process_request(request)
    scrapys.process_request(request)
    assert request.meta.get("proxy") == configured, "the environment's proxy is never chosen"


# -- every outbound client ---------------------------------------------------------------------------------
SOURCES = ("config", "crawler", "foundation", "spiders", "storage", "telegram_watch")
#: outbound HTTP clients that read proxies from the environment unless told not to
FORBIDDEN = re.compile(r"trust_env\s*=\s*True|^\s*(?:import|from) (?:urllib\.request|httpx)\b", re.MULTILINE)
#: requests reads the environment by default: only the exchange guard (``guard_session``) may use it
REQUESTS_IMPORT = re.compile(r"^\s*(?:import|from) (?:requests|urllib3)\b", re.MULTILINE)
REQUESTS_ALLOWED = {"crawler/hashing/exchange_egress.py"}


def test_no_outbound_client_reads_proxies_from_the_environment() -> None:
    offenders: list[str] = []
    for package in SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            where = path.relative_to(ROOT)
            offenders += [f"{where}: {m.group(0).strip()}" for m in FORBIDDEN.finditer(text)]
            if REQUESTS_IMPORT.search(text) and str(where) not in REQUESTS_ALLOWED:
                offenders.append(f"{where}: imports requests/urllib3 (use guard_session)")
            if str(where) == "foundation/egress_http.py":
                continue
            for call in re.finditer(r"aiohttp\.ClientSession\(", text):
                depth, end = 0, call.end() - 1
                for end in range(call.end() - 1, len(text)):  # the call's closing parenthesis
                    depth += {"(": 1, ")": -1}.get(text[end], 0)
                    if depth == 0:
                        break
                if "trust_env=False" not in text[call.start() : end]:
                    offenders.append(f"{where}: aiohttp.ClientSession without trust_env=False (or guarded_session)")
    assert offenders == []


async def test_https_through_the_proxy_is_a_checked_connect_tunnel(
    tmp_path: Path, clean_proxy_environment: Any
) -> None:
    """TLS through the proxy: a ``CONNECT`` only for an allowed host, and the certificate still
    verified against the target's name inside the tunnel."""
    import http.server

    import requests

    from crawler.hashing.exchange_egress import guard_session
    from tests.security.test_exchange_egress import serving_tls

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args: Any) -> None:
            pass

    with serving_tls(tmp_path, Hello) as (port, cert):
        target = f"https://localhost:{port}/"

        def get(policy: EgressPolicy, proxy: str) -> str:
            with guard_session(requests.Session(), policy, proxy=proxy) as session:
                return session.get(target, verify=str(cert)).text

        async with proxying() as (proxy, proxy_url):
            with pytest.raises(EgressDenied, match="localhost resolves to non-public address"):
                await asyncio.to_thread(get, EgressPolicy(frozenset({"127.0.0.1"})), proxy_url)
            assert proxy.asked == []
            allowed = EgressPolicy(frozenset({"127.0.0.1", "localhost"}))
            assert await asyncio.to_thread(get, allowed, proxy_url) == "hello"
        assert proxy.asked == [f"CONNECT localhost:{port}"]


def test_the_cli_says_once_that_an_environment_proxy_is_ignored(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    unset = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in unset}
    env.update(HTTPS_PROXY="http://user:secret@127.0.0.9:3128", TGWATCH_DATA_DIR=str(tmp_path / "d"))
    done = subprocess.run([sys.executable, "-m", "crawler", "--log-format", "json", "config", "show", "--json"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "environment_proxy_ignored" in line]
    assert len(warnings) == 1 and "HTTPS_PROXY" in warnings[0], done.stderr
    assert "secret" not in done.stderr, "the variable's name is logged, never its value"

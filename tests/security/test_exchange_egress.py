"""The exchange library's own requests pass the egress guard at connection time.

The sync checks an exchange's base URL before the first request, but python-threatexchange then
resolves the name again when it connects: a rebinding name (public for the check, private for the
connection) would slip through. These tests call the exchanges' library clients directly, without
the sync's pre-check, which is exactly where a rebinding name stands after passing it: ``localhost``
(a name that resolves to 127.0.0.1) must be refused when connecting unless ``http.allow_private_hosts``
names it; a named host's connection reaches the address that was checked; a redirect from an allowed
host to a private address is refused at its own connection."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import config
from crawler.hashing.exchanges import (
    Exchange,
    Feedback,
    NCMECExchange,
    StopNCIIExchange,
    ThreatExchangeExchange,
)
from crawler.media.exchange_sync import sync_exchange
from foundation.errors import EgressDenied
from storage.client import Store
from tests.exchange_servers import (
    FEEDBACK_KEY,
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


def by_name(url: str) -> str:
    """The loopback server's URL with the name ``localhost`` instead of its address."""
    port = urlsplit(url).port
    return f"http://localhost:{port}"


def stopncii(base: str, allow: list[str]) -> Exchange:
    settings = config.load(
        http={"allow_private_hosts": allow},
        exchanges={"stopncii": {"fetch_key": FETCH_KEY, "subscription_key": SUBSCRIPTION_KEY,
                                "feedback_key": FEEDBACK_KEY, "base_url": base + "/v1"}},
    )  # fmt: skip
    return StopNCIIExchange(settings)


def ncmec(base: str, allow: list[str]) -> Exchange:
    settings = config.load(
        http={"allow_private_hosts": allow},
        exchanges={"ncmec": {"user": NCMEC_USER, "password": NCMEC_PASSWORD, "environment": "test_NGO",
                             "base_url": base}},
    )  # fmt: skip
    return NCMECExchange(settings)


def threatexchange(base: str, allow: list[str]) -> Exchange:
    settings = config.load(
        http={"allow_private_hosts": allow},
        exchanges={"threatexchange": {"access_token": TE_TOKEN, "privacy_groups": [555], "base_url": base}},
    )
    return ThreatExchangeExchange(settings, 555)


def first_page(exchange: Exchange) -> Any:
    return next(iter(exchange.pages(None)), None)


SERVERS: dict[str, tuple[Callable[[], Any], Callable[[str, list[str]], Exchange]]] = {
    "stopncii": (StopNCII, stopncii),
    "ncmec": (NCMEC, ncmec),
    "threatexchange": (ThreatExchange, threatexchange),
}


def heard(server: Any) -> int:
    return len(getattr(server, "fetches", None) or getattr(server, "requests", []))


@pytest.mark.parametrize("name", sorted(SERVERS))
async def test_a_name_mapped_to_a_private_address_is_refused_at_connection_time(name: str) -> None:
    make_server, make_exchange = SERVERS[name]
    server = make_server()
    async with serving(server.app()) as url:
        refused = make_exchange(by_name(url), [])
        with pytest.raises(EgressDenied, match="localhost resolves to non-public address"):
            await asyncio.to_thread(first_page, refused)
        assert heard(server) == 0, "nothing reached the server"

        allowed = make_exchange(by_name(url), ["localhost"])
        await asyncio.to_thread(first_page, allowed)
    assert heard(server) == 1, "a named host connects, to the address that was checked"


async def test_feedback_requests_are_guarded_too() -> None:
    server = StopNCII()
    async with serving(server.app()) as url:
        refused = stopncii(by_name(url), [])
        item = Feedback("pdq", "a" * 64, "confirmed")
        with pytest.raises(EgressDenied):
            await asyncio.to_thread(refused.send_feedback, [item])
    assert server.feedback == []


async def test_a_redirect_to_a_private_address_is_refused_at_its_own_connection() -> None:
    target, start = StopNCII(), StopNCII()
    async with serving(target.app()) as private, serving(start.app()) as url:
        start.redirect_to = private + "/v1/FetchHashes?startTimestamp=10"  # 127.0.0.1: not named
        exchange = stopncii(by_name(url), ["localhost"])
        with pytest.raises(EgressDenied, match=r"127\.0\.0\.1"):
            await asyncio.to_thread(first_page, exchange)
    assert target.fetches == [], "the redirect hop never connected"


async def test_the_sync_records_the_refusal_as_one_clear_error(store: Store, tmp_path: Path) -> None:
    server = StopNCII()
    async with serving(server.app()) as url:
        settings = config.load(
            data_dir=tmp_path / "d",
            exchanges={"stopncii": {"fetch_key": FETCH_KEY, "subscription_key": SUBSCRIPTION_KEY,
                                    "base_url": by_name(url) + "/v1"}},
        )  # fmt: skip
        result = await sync_exchange(store, settings, StopNCIIExchange(settings))
    assert result.status == "error" and "refused" in (result.error or "") and "Traceback" not in (result.error or "")
    assert server.fetches == []


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A throwaway certificate for ``name`` and its key (PEM files)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


@contextlib.contextmanager
def serving_tls(directory: Path, handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[tuple[int, Path]]:
    """An HTTPS server on 127.0.0.1 whose certificate names ``localhost``: its port and the certificate."""
    cert, key = _self_signed(directory, "localhost")
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], cert
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_pinned_https_connection_still_verifies_the_certificate_against_the_host_name(tmp_path: Path) -> None:
    import requests

    from crawler.hashing.exchange_egress import guard_session
    from foundation.egress import EgressPolicy

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(self.headers["Host"].encode())

        def log_message(self, *args: Any) -> None:
            pass

    with serving_tls(tmp_path, Hello) as (port, cert):
        with guard_session(requests.Session(), EgressPolicy(frozenset({"localhost", "127.0.0.1"}))) as session:
            answer = session.get(f"https://localhost:{port}/", verify=str(cert))
            assert answer.status_code == 200 and answer.text == f"localhost:{port}"
            # the same address by another name: the certificate does not name it, so TLS refuses
            with pytest.raises(requests.exceptions.SSLError):
                session.get(f"https://127.0.0.1:{port}/", verify=str(cert))
        with guard_session(requests.Session(), EgressPolicy()) as session, pytest.raises(EgressDenied):
            session.get(f"https://localhost:{port}/", verify=str(cert))

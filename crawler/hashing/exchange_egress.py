"""The egress guard for python-threatexchange's ``requests`` sessions: checked at connection time.

Why: the exchange library sends its own HTTP (``requests``), outside tgwatch's aiohttp guard. The
sync checks the base URL first (``check_endpoint``), but the library then resolves the name again
when it connects, so a name that answers a public address to the check and ``127.0.0.1`` to the
connection (DNS rebinding) would still reach a private address. Every client the library offers
builds its sessions in one ``_get_session`` method; :func:`guard_session` replaces the session's
adapters with :class:`GuardedAdapter`, whose connections resolve the host once, refuse it when any
answer is not public (unless the host is allowed: ``http.allow_private_hosts``), and connect to
exactly the addresses that were checked. TLS still verifies the certificate against the host name
(urllib3 wraps the socket with ``server_hostname`` = the URL's host). The adapters are mounted for
``http://`` and ``https://`` as well as for the base URL, so a redirect to another host is checked
at its own connection. A refusal is ``EgressDenied``, which urllib3 does not retry.

Proxies: the session never reads the environment (``trust_env`` off: ``HTTPS_PROXY``,
``ALL_PROXY``, ``NO_PROXY`` and ``.netrc`` are ignored) and the adapter sends through exactly the
configured ``http.proxy`` or directly, whatever proxies a caller passes. A proxy resolves the target
itself, so before a request is handed to it the adapter checks the URL and resolves and checks the
target host (``EgressPolicy.check_before_proxy``): a refused host never reaches the proxy. Residual:
a name that answers the proxy differently than it answered us (rebinding at the proxy).
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection

from foundation.egress import EgressPolicy, normalize_host

#: the library's own adapter timeout (``TimeoutHTTPAdapter(timeout=60)``), for adapters that had none
DEFAULT_TIMEOUT = 60.0


def _guarded_new_conn(conn: HTTPConnection, policy: EgressPolicy) -> socket.socket:
    """Resolve once, check every answer, connect only to the checked addresses (first that answers)."""
    host = conn._dns_host  # urllib3's name to resolve (no brackets)
    try:
        infos = socket.getaddrinfo(host, conn.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    policy.check_addresses(normalize_host(host), addresses, url=f"{conn.host}:{conn.port}")
    last: OSError | None = None
    for address in addresses:
        try:
            sock = connection.create_connection(
                (address, conn.port), conn.timeout, source_address=conn.source_address,
                socket_options=conn.socket_options,
            )  # fmt: skip
        except TimeoutError as exc:
            raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out ({exc})") from exc
        except OSError as exc:
            last = exc
            continue
        sys.audit("http.client.connect", conn, conn.host, conn.port)
        return sock
    raise NewConnectionError(conn, f"Failed to establish a new connection: {last}")


def _pool_classes(policy: EgressPolicy) -> dict[str, type[HTTPConnectionPool]]:
    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _guarded_new_conn(self, policy)

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _guarded_new_conn(self, policy)

    class GuardedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    return {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}


class GuardedAdapter(HTTPAdapter):
    """``requests``' adapter with the egress guard at connection time, and a default timeout (as
    the library's ``TimeoutHTTPAdapter``)."""

    def __init__(
        self, policy: EgressPolicy, *, timeout: float | None = DEFAULT_TIMEOUT, proxy: str | None = None, **kwargs: Any
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self.proxy = proxy or None
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.policy)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        # the configured proxy or none: never the environment's, nor one a caller slipped in
        kwargs["proxies"] = {"http": self.proxy, "https": self.proxy} if self.proxy else {}
        if self.proxy:
            self.policy.check_before_proxy(request.url or "")
        return super().send(request, *args, **kwargs)


def guard_session(session: requests.Session, policy: EgressPolicy, *, proxy: str | None = None) -> requests.Session:
    """``session`` with every mounted adapter (the library's, and the defaults for ``http://`` and
    ``https://``) replaced by a :class:`GuardedAdapter` keeping its retries and timeout, sending
    through ``proxy`` (``http.proxy``) or directly, and never reading proxies from the environment."""
    session.trust_env = False
    session.proxies = {}
    for prefix, old in list(session.adapters.items()):
        timeout = getattr(old, "timeout", None) or DEFAULT_TIMEOUT
        retries = getattr(old, "max_retries", 0)
        old.close()
        session.mount(prefix, GuardedAdapter(policy, timeout=timeout, max_retries=retries, proxy=proxy))
    return session

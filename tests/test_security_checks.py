"""Security checks: no secret in any command's output, every route's auth, sign-in guessing limited.

Why: tgwatch holds Telegram session strings, api hashes, phone numbers, API tokens and the key that
encrypts them; one of those in a log line is a compromise. Auth is declared per route, so a route
whose declaration is wrong (public by mistake, missing from the OpenAPI document) is found here by
enumeration rather than by someone remembering to test it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import config
from crawler.api.app import ROUTES, FailureLimiter, build_app, openapi
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from storage.client import Store
from telegram_watch.crypto import generate_key

Client = TestClient[web.Request, web.Application]

# --- secrets never reach output ------------------------------------------------------------------

API_HASH = "5ecre7a9151ba5e0123456789abcdef0"
SECRETS_KEY = generate_key()
SESSION = "1BVtsOSecretSessionStringThatMustNeverBeLoggedAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
PHONE = "+447700900123"
SECRETS = {"api_hash": API_HASH, "secrets_key": SECRETS_KEY, "session": SESSION, "phone": PHONE}


def tgwatch(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(
        {
            "TGWATCH_TELEGRAM__API_ID": "12345",
            "TGWATCH_TELEGRAM__API_HASH": API_HASH,
            "TGWATCH_TELEGRAM__SECRETS_KEY": SECRETS_KEY,
        }
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "crawler",
            "--data-dir",
            str(data_dir),
            "--log-format",
            "json",
            "--log-level",
            "DEBUG",
            *args,
        ],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text]


@pytest.mark.slow
def test_no_command_prints_a_secret(tmp_path: Path) -> None:
    runs = {
        "config show": tgwatch(tmp_path, "config", "show"),
        "config show --json": tgwatch(tmp_path, "config", "show", "--json"),
        # a login failure: a session string that is not one (Telethon cannot even decode it)
        "accounts add (bad session)": tgwatch(tmp_path, "accounts", "add", "x", "--session-string", SESSION),
        "accounts add (bad session on stdin)": tgwatch(
            tmp_path, "accounts", "add", "y", "--session-string", "-", stdin=SESSION + "\n"
        ),
        "accounts list": tgwatch(tmp_path, "accounts", "list"),
    }
    assert runs["config show"].returncode == 0, runs["config show"].stderr
    assert runs["accounts add (bad session)"].returncode != 0, "a bad session string is refused"
    for name, proc in runs.items():
        assert not _leaks(proc.stdout), f"{name}: stdout leaks {_leaks(proc.stdout)}"
        assert not _leaks(proc.stderr), f"{name}: stderr leaks {_leaks(proc.stderr)}"


@pytest.mark.slow
def test_a_new_token_is_printed_once_to_stdout_and_nowhere_else(tmp_path: Path) -> None:
    proc = tgwatch(tmp_path, "tokens", "create", "--name", "sec", "--role", "investigator")
    assert proc.returncode == 0, proc.stderr
    tokens = re.findall(r"tgw_[A-Za-z0-9_-]{20,}", proc.stdout)
    assert len(tokens) == 1, proc.stdout
    token = tokens[0]
    assert proc.stdout.count(token) == 1 and token not in proc.stderr
    listed = tgwatch(tmp_path, "tokens", "list")
    assert token not in listed.stdout + listed.stderr
    assert not _leaks(proc.stdout + proc.stderr + listed.stdout + listed.stderr)
    stored = b"".join(p.read_bytes() for p in (tmp_path / "mongo").rglob("*") if p.is_file())
    assert token.encode() not in stored, "only the token's hash is stored"


# --- every route's auth --------------------------------------------------------------------------

#: every route reachable without any credential, written down: a new public route fails this test
#: until someone adds it here on purpose.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/"),
    ("GET", "/console/static/{name}"),
    ("GET", "/console/login"),
    ("POST", "/console/login"),
    # no token, but a short-lived HMAC-signed URL (the detector fetches media with it); checked below
    ("GET", "/api/v1/detection/media/{sha256}"),
}

#: token-protected routes outside the OpenAPI document (it lists /api/ and health only); reported
UNDOCUMENTED = {("GET", "/metrics")}


@pytest.fixture
async def app(store: Store, tmp_path: Path) -> web.Application:
    return build_app(store, config.load(data_dir=tmp_path), ALL_MODULES, limiter=FailureLimiter(limit=100_000))


def _console_page(route_path: str, handler_name: str) -> bool:
    """A console page declared through ``crawler.console.routes.page`` (checks the session itself)."""
    return route_path.startswith("/console/") and handler_name.startswith("console_")


async def test_public_routes_are_exactly_the_allowlist_plus_session_checked_console_pages(
    app: web.Application,
) -> None:
    public = {
        (r.method, r.path) for r in app[ROUTES].routes if r.public and not _console_page(r.path, r.handler.__name__)
    }
    assert public == PUBLIC
    async with TestClient(TestServer(app)) as client:
        sha = "ab" * 32
        for query in ("", "?exp=9999999999&sig=00", "?exp=1&sig=" + "0" * 64):
            resp = await client.get(f"/api/v1/detection/media/{sha}{query}")
            assert resp.status == 403, f"unsigned media fetch {query!r} -> {resp.status}"


def _doc_path(path: str) -> str:
    """A route path as the OpenAPI document names it (aiohttp's ``{key:regex}`` → ``{key}``)."""
    return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)


async def test_every_protected_api_route_is_documented_with_security(app: web.Application) -> None:
    doc = openapi(app[ROUTES])
    routes = app[ROUTES].routes
    for route in routes:
        if route.public:
            continue
        if (route.method, route.path) in UNDOCUMENTED:
            continue
        op = doc["paths"].get(_doc_path(route.path), {}).get(route.method.lower())
        assert op is not None, f"{route.method} {route.path} is missing from the OpenAPI document"
        assert op["security"] == [{"bearer": []}]
        assert "401" in op["responses"] and "403" in op["responses"]
        assert {r.value for r in route.roles} <= set(re.findall(r"\w+", op["description"]))
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            declared = next((r for r in routes if r.method == method.upper() and _doc_path(r.path) == path), None)
            assert declared is not None, f"documented but not declared: {method} {path}"
            assert ("security" in op) != declared.public


async def test_console_pages_need_a_session(app: web.Application, store: Store) -> None:
    pages = [r for r in app[ROUTES].routes if _console_page(r.path, r.handler.__name__)]
    assert len(pages) >= 5
    bearer, _ = await TokenRepo(store, server_secret(config.load())).create("api-only", Role.ADMIN)
    async with TestClient(TestServer(app)) as client:
        for route in pages:
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            resp = await client.request(route.method, path, allow_redirects=False)
            if route.method == "GET":
                assert resp.status == 303, f"{route.method} {route.path} -> {resp.status}"
                assert resp.headers["Location"].startswith("/console/login?next=")
            else:
                assert resp.status == 401, f"{route.method} {route.path} -> {resp.status}"
            # a forged or stale session cookie is no session
            client.session.cookie_jar.update_cookies({"tgwatch_session": "tgw_forged_session_value"})
            resp = await client.request(route.method, path, allow_redirects=False)
            assert resp.status in (303, 401), f"forged cookie on {route.method} {route.path} -> {resp.status}"
            client.session.cookie_jar.clear()
            if route.method != "GET":  # a state change needs the session's CSRF token, not just a bearer
                resp = await client.request(
                    route.method, path, headers={"Authorization": f"Bearer {bearer}"}, allow_redirects=False
                )
                assert resp.status in (401, 403), f"bearer-only {route.method} {route.path} -> {resp.status}"


# --- sign-in guessing ----------------------------------------------------------------------------

CSRF = re.compile(r'name="csrf_token" value="([0-9a-zA-Z_-]+)"')


async def _sign_in(client: Client, token: str) -> int:
    form = await client.get("/console/login")
    match = CSRF.search(await form.text())
    assert match is not None
    resp = await client.post(
        "/console/login", data={"token": token, "csrf_token": match.group(1)}, allow_redirects=False
    )
    return resp.status


async def test_api_and_console_guesses_share_one_limit(store: Store, tmp_path: Path) -> None:
    """Guessing through the API and the sign-in form alternately gains nothing over either alone."""
    limiter = FailureLimiter(limit=6, window=60)
    app = build_app(store, config.load(data_dir=tmp_path), ALL_MODULES, limiter=limiter)
    good, _ = await TokenRepo(store, server_secret(config.load())).create("good", Role.INVESTIGATOR)
    async with TestClient(TestServer(app)) as client:
        statuses = []
        for i in range(3):
            resp = await client.get("/api/v1/ledger/heads", headers={"Authorization": f"Bearer tgw_guess{i}"})
            statuses.append(resp.status)
            statuses.append(await _sign_in(client, f"tgw_form_guess{i}"))
        assert statuses == [401] * 6
        assert await _sign_in(client, f"tgw_form_guess{9}") == 429
        assert await _sign_in(client, good) == 303, "a valid token always passes, even from a blocked address"
        resp = await client.get("/api/v1/ledger/heads", headers={"Authorization": f"Bearer {good}"})
        assert resp.status == 200
        resp = await client.post("/console/login", data={"token": good}, allow_redirects=False)
        assert resp.status == 429 and "Retry-After" in resp.headers


# --- the scan every test's captured output goes through (tests/secret_scan.py) -------------------


def test_the_output_scan_finds_secrets_and_spares_digests() -> None:
    from tests.secret_scan import leaks

    assert leaks(f"session {SESSION}") == ["a planted test secret"]
    assert leaks("token tgw_" + "A" * 43) == ["api token"]
    assert leaks("calling +821012345678 now") == ["phone number"]
    assert leaks("api_hash=0123456789abcdef0123456789abcdef") == ["api_hash"]
    assert leaks("1" + "Qx_-" * 90) == ["telethon session string"]
    harmless = (
        "sha256 " + "ab" * 32 + " md5 " + "cd" * 16 + " run 5f0c2b7e9a1d4c3b8e6f7a9b0c1d2e3f "
        "at 2026-11-21T07:30:15.27+00:00 views 1234567890 id -1001234567890 pdq " + "f0" * 32
    )
    assert leaks(harmless) == []

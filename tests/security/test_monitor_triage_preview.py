"""A monitor triages alerts from the console: the blurred greyscale thumbnail of media that raised a
hash-list match or detection alert, and nothing more. The reveal (the full item) stays with the
case rules, media without such an alert stay closed, and a face-watchlist match is its case's alone.
"""

from __future__ import annotations

import io
from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import TestClient
from PIL import Image

from foundation.models import Alert, AlertKind
from storage.client import Store
from storage.repos.alerts import AlertRepo
from tests.console_world import World
from tests.test_console import CSRF, sign_in
from tests.test_console_media_review import client, world  # noqa: F401  (fixtures)
from tests.test_investigate_api import T0

Client = TestClient[web.Request, web.Application]


async def test_a_monitor_sees_the_blurred_preview_of_an_alerted_item_only(
    client: Client,  # noqa: F811
    store: Store,
    world: World,  # noqa: F811
) -> None:
    sha = world.case.sha  # raised a hash-list match
    await sign_in(client, world.monitor)
    resp = await client.get(f"/console/media/{sha}/preview")
    body = await resp.read()
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    assert resp.headers["Cache-Control"].startswith("no-store")
    assert body != world.case.image and Image.open(io.BytesIO(body)).mode == "L"
    entry = await store["audit"].find_one({"action": "media.preview", "actor": "token:mo"})
    assert entry is not None and entry["target"] == sha and entry["filter"] == {"triage_alert": world.alert}

    match = await (await client.get(f"/console/match?alert={quote(world.alert, safe='')}")).text()
    assert f'src="/console/media/{sha}/preview"' in match, "the side-by-side match shows the monitor the thumbnail"
    assert f"/console/media/{sha}/reveal" not in match, "but no reveal button"

    csrf = CSRF.search(match)
    assert csrf is not None
    reveal = await client.post(f"/console/media/{sha}/reveal", data={"csrf_token": csrf.group(1)})
    assert reveal.status == 403 and "/bytes" not in await reveal.text(), "the reveal stays with the case rules"
    assert (await client.get(f"/api/v1/media/{sha}/bytes")).status in (401, 403)

    unalerted = world.case.other_sha
    assert (await client.get(f"/console/media/{unalerted}/preview")).status == 403
    refused = await store["audit"].find_one({"action": "media.preview.refused", "actor": "token:mo"})
    assert refused is not None and refused["target"] == unalerted


async def test_a_watchlist_match_never_opens_media_to_a_monitor(
    client: Client,  # noqa: F811
    store: Store,
    world: World,  # noqa: F811
) -> None:
    sha = world.case.other_sha  # only a face-watchlist match of CASE-W names it
    await AlertRepo(store).raise_alert(
        Alert(
            key=f"watchlist/{sha}/person-2",
            kind=AlertKind.WATCHLIST_MATCH,
            sha256=sha,
            summary="watchlist match awaiting human review",
            details={"case": "CASE-W", "cases": ["CASE-W"], "persons": ["person-2"], "review": "human"},
            channels=["alpha_news"],
            raised_at=T0,
        )
    )
    await sign_in(client, world.monitor)
    resp = await client.get(f"/console/media/{sha}/preview")
    assert resp.status == 403 and "no-store" in resp.headers.get("Cache-Control", "")
    listed = await (await client.get("/console/alerts?status=&kind=watchlist_match")).text()
    assert "person-2" not in listed and f"/console/media/{sha}/preview" not in listed


async def test_the_dashboard_counts_a_watchlist_match_for_its_case_only(
    client: Client,  # noqa: F811
    store: Store,
    world: World,  # noqa: F811
) -> None:
    from foundation.models import utcnow

    await AlertRepo(store).raise_alert(
        Alert(
            key=f"watchlist/{world.case.other_sha}/person-3",
            kind=AlertKind.WATCHLIST_MATCH,
            sha256=world.case.other_sha,
            summary="watchlist match awaiting human review",
            details={"case": "CASE-W", "cases": ["CASE-W"], "persons": ["person-3"], "review": "human"},
            channels=["alpha_news"],
            raised_at=utcnow(),
        )
    )
    cell = 'id="fig-alerts-watchlist_match-today">'
    await sign_in(client, world.monitor)
    html = await (await client.get("/console/")).text()
    assert cell + '<a href="/console/alerts?status=&amp;kind=watchlist_match">0</a>' in html, "not a monitor's case"
    await sign_in(client, world.admin)
    html = await (await client.get("/console/")).text()
    assert cell + '<a href="/console/alerts?status=&amp;kind=watchlist_match">1</a>' in html

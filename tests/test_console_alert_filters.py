"""The alerts page shows the filters the dashboard and the channel list link to (kind, day, channel)
as a labelled form, and keeps them (and the status) on its next-page link: a cursor is bound to its
filters, so a link that dropped them would be refused."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.test_utils import TestClient

from foundation.models import Alert, AlertKind
from storage.client import Store
from storage.repos.alerts import AlertRepo
from tests.console_world import World
from tests.test_console import sign_in
from tests.test_console_media_review import client, world  # noqa: F401  (fixtures)
from tests.test_investigate_api import T0

Client = TestClient[web.Request, web.Application]


async def test_filters_are_shown_labelled_and_kept_on_the_next_page(
    client: Client,  # noqa: F811
    store: Store,
    world: World,  # noqa: F811
) -> None:
    await AlertRepo(store).raise_alert(
        Alert(key="match/other/x", kind=AlertKind.HASH_MATCH, sha256=world.case.other_sha,
              summary="second match", channels=["alpha_news"], raised_at=T0)
    )  # fmt: skip
    await sign_in(client, world.monitor)
    query = "/console/alerts?status=&kind=hash_match&day=2024-05-01&channel=alpha_news&limit=1"
    html = await (await client.get(query)).text()
    form = html.split('<form method="get" action="/console/alerts"', 1)[1].split("</form>", 1)[0]
    assert '<option value="hash_match" selected>' in form and 'name="day" value="2024-05-01"' in form
    assert 'name="channel" value="alpha_news"' in form and '<option value="" selected>' in form
    for name in ("status", "kind", "day", "channel"):  # every control sits inside its <label>
        assert re.search(rf"<label>[^<]+\s*<(select|input)[^>]* name=\"{name}\"", form), name
    more = re.search(r'<a class="more" href="([^"]+)"', html)
    assert more is not None
    link = more.group(1).replace("&amp;", "&")
    for kept in ("status=&", "kind=hash_match", "day=2024-05-01", "channel=alpha_news", "limit=1", "cursor="):
        assert kept in link, (kept, link)
    second = await client.get(link)
    assert second.status == 200, "the cursor is accepted: it was issued for these very filters"
    shown = await second.text()
    first_summary = "second match" in html
    assert ("second match" in shown) != first_summary, "the next page holds the other alert"

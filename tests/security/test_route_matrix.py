"""Every declared route × every role: 401 without a credential, 403 for a role the route does not
name, and neither for a role it names (whatever the handler then says about the empty request)."""

from __future__ import annotations

import re
from pathlib import Path

from crawler.api.app import ROUTES, FailureLimiter
from crawler.tokens import Role
from storage.client import Store
from tests.security.support import bearer, serve, settings, token


async def test_role_by_route_matrix(store: Store, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    # hundreds of unauthenticated calls on purpose: a limiter that allows them
    async with serve(store, cfg, limiter=FailureLimiter(limit=10**6)) as client:
        tokens = {role: await token(store, cfg, role) for role in Role}
        routes = [r for r in client.app[ROUTES].routes if not r.public]
        assert len(routes) >= 30
        wrong: list[str] = []
        for route in routes:
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            resp = await client.request(route.method, path)
            if resp.status != 401:
                wrong.append(f"{route.method} {route.path} without token -> {resp.status}")
            for role in Role:
                resp = await client.request(route.method, path, headers=bearer(tokens[role]))
                if role in route.roles:
                    # a 403 of kind not_authorized is the case-membership rule, not a role refusal
                    denied = resp.status == 401 or (
                        resp.status == 403 and (await resp.json()).get("kind") != "not_authorized"
                    )
                    if denied:
                        wrong.append(f"{role} refused on {route.method} {route.path} -> {resp.status}")
                elif resp.status != 403:
                    wrong.append(f"{role} on {route.method} {route.path} -> {resp.status}, not 403")
        assert not wrong, "\n".join(wrong)

"""The console's home page (the dashboard), the channel list, growth pages, targets and the account pool.

Every figure is read from the collection's owner (messages, media, alerts, takedowns, runs, targets,
the detection queue, accounts, audience) with the per-day counts of ``storage.daily``; every figure
links to the list behind it, filtered to what it counts. Charts are server-rendered SVG
(``crawler.console.charts``). Target changes go through ``crawler.scheduling.manage`` exactly as
``tgwatch targets …`` does (same rules, same audit entries), for monitors and admins only, and only
with the session's CSRF token (``page`` checks it on every POST).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from config.targets import TargetsConfig
from crawler.console import charts
from crawler.console.pages import page
from crawler.console.render import render, request_language, translator
from crawler.console.takedowns import human_seconds
from crawler.evidence.access import CaseAccess
from crawler.growth import KINDS, Growth, growth_of, ranking
from crawler.investigate.access import audit, audit_log, investigate
from crawler.investigate.ops import ALERT_KINDS
from crawler.investigate.pagination import BadQuery, page_of
from crawler.routes.context import SETTINGS, STORE
from crawler.routes.table import RouteTable
from crawler.scheduling import manage
from crawler.takedowns.api import TakedownView, figures, service
from crawler.takedowns.models import ItemStatus, TakedownRequest
from crawler.tokens import Principal, Role
from foundation.errors import NotAuthorized
from foundation.models import utcnow
from storage.client import Doc, Store
from storage.repos.accounts import AccountRepo
from storage.repos.alerts import AlertRepo
from storage.repos.audience import FIGURES, AudienceRepo
from storage.repos.errors import ErrorRepo
from storage.repos.media import MediaRepo
from storage.repos.messages import MessageRepo
from storage.repos.runs import RunRepo
from storage.repos.targets import canonical_target
from storage.workqueue import WorkQueue

OPERATIONS = frozenset({Role.MONITOR, Role.INVESTIGATOR, Role.ADMIN})
EVIDENCE = frozenset({Role.INVESTIGATOR, Role.ADMIN})
MANAGERS = frozenset({Role.MONITOR, Role.ADMIN})  # as the CLI's operators: targets and accounts
DAYS = 7
#: run statuses that count a target as healthy
HEALTHY = frozenset({"ok", "running"})
#: days since a request was sent, as the share chart groups reported items: (label, from, to) in days
AGE_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("0-1", 0, 1),
    ("1-2", 1, 2),
    ("2-3", 2, 3),
    ("3-7", 3, 7),
    ("7-14", 7, 14),
    ("14-30", 14, 30),
    ("30+", 30, float("inf")),
)
CHANNEL_LIMIT = 500  # the most one page of the investigator service returns
NAME_MAX = 300


def day_range(day: str | None) -> tuple[datetime | None, datetime | None]:
    """``YYYY-MM-DD`` → that UTC day as [start, end); a bad day is a 400 with the reason."""
    if not day:
        return None, None
    try:
        start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise BadQuery(f"day must be a date as YYYY-MM-DD, got {day[:40]!r}", code="query.bad_day",
                       params={"value": day[:40]}) from None  # fmt: skip
    return start, start + timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """Today and the last seven UTC days (today included), as the dashboard counts them."""

    now: datetime

    @property
    def today(self) -> datetime:
        return self.now.replace(hour=0, minute=0, second=0, microsecond=0)

    @property
    def start(self) -> datetime:
        return self.today - timedelta(days=DAYS - 1)

    @property
    def end(self) -> datetime:
        return self.today + timedelta(days=1)

    def days(self) -> list[str]:
        return [(self.start + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(DAYS)]

    def split(self, per_day: dict[str, int]) -> dict[str, int]:
        """``{today, week}`` from a per-day count."""
        return {"today": per_day.get(self.days()[-1], 0), "week": sum(per_day.get(d, 0) for d in self.days())}


def _link(path: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{path}?{query}" if query else path


def _config(request: web.Request) -> TargetsConfig:
    settings = request.app[SETTINGS]
    return TargetsConfig(targets=settings.targets, groups=settings.groups)


def _actor(who: Principal) -> manage.Actor:
    return manage.Actor(who.actor, who.role.value, "console")


# -- figures ---------------------------------------------------------------------------------------


async def _takedown_figures(request: web.Request, who: Principal, window: Window) -> dict[str, Any]:
    svc = service(request.app)
    view = TakedownView(request, who, via="console")
    requests = [r for r in await svc.all() if await view.may_see(r)]
    stats = await figures(svc, view)

    def count(times: list[datetime | None]) -> dict[str, int]:
        return {
            "today": sum(1 for t in times if t is not None and t >= window.today),
            "week": sum(1 for t in times if t is not None and t >= window.start),
        }

    removed = [i.removed_at for r in requests for i in r.items if i.status is ItemStatus.REMOVED]
    return {
        "drafted": count([r.created_at for r in requests]),
        "sent": count([r.sent_at for r in requests]),
        "removed": count(removed),
        "overdue": len(stats.overdue) + stats.overdue_hidden,
        "shares": removal_by_age(requests, window.now),
    }


def removal_by_age(requests: list[TakedownRequest], now: datetime) -> list[tuple[str, int, int]]:
    """Per bucket of days since an item was sent: (label, removed, reported)."""
    out = {label: [0, 0] for label, _, _ in AGE_BUCKETS}
    for req in requests:
        for item in req.items:
            sent = next((s.at for s in req.sendings if s.at >= item.added_at), None)
            if sent is None:
                continue
            age = (now - sent).total_seconds() / 86_400
            label = next(lb for lb, lo, hi in AGE_BUCKETS if lo <= age < hi)
            out[label][1] += 1
            out[label][0] += item.status is ItemStatus.REMOVED
    return [(label, removed, whole) for label, (removed, whole) in out.items()]


async def _target_health(
    store: Store, config: TargetsConfig, *, errors: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Doc]]:
    """Each target with its newest run and health: ``ok``, ``failing`` or ``never`` (no run yet);
    with ``errors``, a failing run's newest recorded error (``{kind, message}``) as ``error``."""
    latest = await RunRepo(store).latest_per_target()
    recorded = ErrorRepo(store)
    rows = []
    for s in await manage.schedules(store, config):
        run = latest.get(s.target)
        health = "never" if run is None else ("ok" if run.get("status") in HEALTHY else "failing")
        error = None
        if errors and run is not None and health == "failing":
            error = next(iter(await recorded.recent(1, run_id=str(run["_id"]))), None)
        rows.append({"schedule": s, "run": run, "health": health, "group": s.group or "default", "error": error})
    return rows, latest


def _last_run_per_group(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = groups.setdefault(row["group"], {"group": row["group"], "targets": 0, "run": None})
        entry["targets"] += 1
        run = row["run"]
        if run is not None and (entry["run"] is None or run["started_at"] > entry["run"]["started_at"]):
            entry["run"] = run
    return sorted(groups.values(), key=lambda g: g["group"])


async def _accounts(store: Store) -> dict[str, Any]:
    now = time.time()
    states: Counter[str] = Counter()
    for doc in await AccountRepo(store).list_all():
        parked = float(doc.get("flood_until") or 0) > now and doc.get("state") == "active"
        states["flood_wait" if parked else str(doc.get("state"))] += 1
    return {"total": sum(states.values()), "states": dict(sorted(states.items()))}


async def home(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
    """The dashboard: today and the last seven days, each figure a link to its list."""
    store = request.app[STORE]
    t = translator(request)["t"]
    window = Window(utcnow())
    days = window.days()
    since, until = window.start, window.end
    evidence = who.role in EVIDENCE
    posted = await MessageRepo(store).posted_per_day(since, until)
    collected = await MessageRepo(store).collected_per_day(since, until)
    media = await MediaRepo(store).new_per_day(since, until)
    alerts = AlertRepo(store)
    cases = await CaseAccess(store).cases_of(who)  # a case-bound alert is counted for its case only
    alerts_daily = await alerts.per_day(since, until, cases=cases)
    kinds_today = await alerts.per_kind(window.today, until, cases=cases)
    kinds_week = await alerts.per_kind(since, until, cases=cases)
    rows, _ = await _target_health(store, _config(request))
    health = Counter(r["health"] for r in rows)
    detection = await WorkQueue(store, "detection_jobs").stats()
    takedowns = await _takedown_figures(request, who, window)
    first_day = days[0]
    figures_ctx = {
        "messages": {
            **window.split(posted),
            "href_today": _link("/console/search", since=days[-1]) if evidence else None,
            "href_week": _link("/console/search", since=first_day) if evidence else None,
        },
        "media": {
            **window.split(media),
            "href_today": _link("/console/search", has_media="true", since=days[-1]) if evidence else None,
            "href_week": _link("/console/search", has_media="true", since=first_day) if evidence else None,
        },
        "alert_kinds": [
            {
                "kind": k,
                "today": kinds_today.get(k, 0),
                "week": kinds_week.get(k, 0),
                "href": _link("/console/alerts", status="", kind=k),
            }
            for k in sorted(set(ALERT_KINDS) | set(kinds_week))
        ],
        "takedowns": takedowns,
        "targets": {
            "ok": health.get("ok", 0),
            "failing": health.get("failing", 0),
            "never": health.get("never", 0),
            "groups": _last_run_per_group(rows),
        },
        "detection": {
            "ready": detection.get("ready", 0),
            "leased": detection.get("leased", 0),
            "dead": detection.get("dead", 0),
            "oldest": detection.get("oldest_ready_age"),
        },
        "accounts": await _accounts(store) if who.role in MANAGERS else None,
    }
    label = [d[5:] for d in days]  # MM-DD under each bar
    chart_alerts = charts.bar_chart(
        t("console.dashboard.chart_alerts"),
        t("console.dashboard.chart_alerts_desc", total=sum(alerts_daily.values())),
        [
            charts.Bar(label[i], alerts_daily.get(d, 0), _link("/console/alerts", status="", day=d))
            for i, d in enumerate(days)
        ],
    )
    chart_volume = charts.bar_chart(
        t("console.dashboard.chart_volume"),
        t("console.dashboard.chart_volume_desc", total=sum(collected.values())),
        [charts.Bar(label[i], collected.get(d, 0), "/console/runs") for i, d in enumerate(days)],
    )
    shares = takedowns["shares"]
    chart_removal = charts.share_chart(
        t("console.dashboard.chart_removal"),
        t("console.dashboard.chart_removal_desc", removed=sum(s[1] for s in shares), total=sum(s[2] for s in shares)),
        [
            charts.Stack(t("console.dashboard.days", days=lb), part, whole, _link("/console/takedowns", status="all"))
            for lb, part, whole in shares
        ],
        t("console.dashboard.removed"),
        t("console.dashboard.still_online"),
    )
    return render(
        request,
        "dashboard.html",
        **base,
        fig=figures_ctx,
        charts={"alerts": chart_alerts, "volume": chart_volume, "removal": chart_removal},
        first_day=first_day,
        today=days[-1],
        manager=who.role in MANAGERS,
    )


# -- growth ----------------------------------------------------------------------------------------


def growth_chart(t: Any, entity: str, points: list[Doc]) -> Any:
    lines = [
        charts.Line(
            t(f"console.dashboard.figure_{name}"), [(p["at"], p[name]) for p in points if p.get(name) is not None]
        )
        for name in FIGURES
    ]
    return charts.line_chart(
        t("console.dashboard.growth_title", name=entity),
        t("console.dashboard.growth_desc", name=entity, points=len(points)),
        lines,
        t("console.dashboard.growth_empty"),
    )


async def _growth_by_entity(store: Store, days: int) -> dict[str, Growth]:
    points = await AudienceRepo(store).since(time.time() - days * 86_400)
    return {g.entity: g for g in ranking(points, limit=CHANNEL_LIMIT * 10)}


def _channel_rows(
    channels: list[dict[str, Any]], growth: dict[str, Growth], alerts: Counter[str]
) -> list[dict[str, Any]]:
    rows = []
    for c in channels:
        g = growth.get(c["key"])
        rows.append(
            {
                **c,
                "growth": g.change if g else None,
                "audience": g.last if g else c.get("subscribers"),
                "open_alerts": alerts.get(c["key"], 0),
            }
        )
    return rows


def _filter_channels(rows: list[dict[str, Any]], query: Any) -> list[dict[str, Any]]:
    text = (query.get("q") or "").strip().lower()[:200]
    state = query.get("state") or None
    alerts_only = query.get("alerts") == "1"
    growing = query.get("growing") == "1"
    try:
        min_risk = float(query.get("risk") or 0)
    except ValueError:
        raise BadQuery("risk must be a number", code="query.bad_risk") from None
    out = [
        r
        for r in rows
        if (not text or text in r["key"].lower() or text in (r.get("title") or "").lower())
        and (state is None or r.get("state") == state)
        and (r.get("risk_score") or 0) >= min_risk
        and (not alerts_only or r["open_alerts"] > 0)
        and (not growing or (r["growth"] or 0) > 0)
    ]
    order = query.get("sort") or "risk"
    if order not in ("risk", "growth", "name", "alerts"):
        raise BadQuery("sort must be risk, growth, name or alerts", code="query.bad_choice",
                       params={"field": "sort", "choices": "risk, growth, name, alerts"})  # fmt: skip
    keys = {
        "risk": lambda r: (-(r.get("risk_score") or 0), r["key"]),
        "growth": lambda r: (-(r["growth"] or 0), r["key"]),
        "alerts": lambda r: (-r["open_alerts"], r["key"]),
        "name": lambda r: (r["key"],),
    }
    return sorted(out, key=keys[order])


# -- targets ---------------------------------------------------------------------------------------


def _target_rows(rows: list[dict[str, Any]], query: Any) -> list[dict[str, Any]]:
    health, group = query.get("health") or None, query.get("group") or None
    if health is not None and health not in ("ok", "failing", "never"):
        raise BadQuery("health must be ok, failing or never", code="query.bad_choice",
                       params={"field": "health", "choices": "ok, failing, never"})  # fmt: skip
    return [r for r in rows if (health is None or r["health"] == health) and (group is None or r["group"] == group)]


def _name(form: Any) -> str:
    name = str(form.get("name", "")).strip()
    if not name or len(name) > NAME_MAX:
        raise BadQuery("a target name (username, @name or t.me link) is required", code="targets.name_required")
    canonical_target(name)  # a ConfigError (400) names what is wrong with it
    return name


def _optional(form: Any, field: str) -> str | None:
    value = str(form.get(field, "")).strip()
    if len(value) > 100:
        raise BadQuery(f"{field} is longer than 100 characters", code="form.too_long",
                       params={"field": field, "max": 100})  # fmt: skip
    return value or None


def register(routes: RouteTable) -> None:
    @page(routes, "GET", "/console/channels", OPERATIONS, "channel list with state, risk, audience and growth")
    async def channels(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        store = request.app[STORE]
        service_ = await investigate(request, who, via="console")
        listed = await service_.channels(page_of({"limit": str(CHANNEL_LIMIT)}, {}, default_limit=CHANNEL_LIMIT))
        cases = await CaseAccess(store).cases_of(who)  # a watchlist match is counted for its case only
        open_lists = await AlertRepo(store).open_channels(cases=cases)
        open_alerts: Counter[str] = Counter(c for chans in open_lists for c in set(chans))
        rows = _filter_channels(_channel_rows(listed, await _growth_by_entity(store, DAYS), open_alerts), request.query)
        flt = {k: request.query.get(k) for k in ("q", "state", "risk", "alerts", "growing", "sort")}
        await audit(request, who, "channels.list", filter=flt, result_count=len(rows), via="console")
        return render(
            request,
            "channels.html",
            **base,
            items=rows,
            q=flt,
            evidence=who.role in EVIDENCE,
            states=sorted({str(r.get("state")) for r in rows if r.get("state")} | {"ok"}),
        )

    @page(routes, "GET", "/console/growth", OPERATIONS, "fastest-growing rooms and bots")
    async def growing(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        kind = request.query.get("kind") or None
        if kind is not None and kind not in KINDS:
            raise BadQuery(f"kind must be one of {', '.join(KINDS)}", code="query.bad_choice",
                           params={"field": "kind", "choices": ", ".join(KINDS)})  # fmt: skip
        try:
            days = int(request.query.get("days") or DAYS)
        except ValueError:
            raise BadQuery("days must be a whole number", code="query.days_range", params={"max": 3650}) from None
        if not 1 <= days <= 3650:
            raise BadQuery("days must be 1..3650", code="query.days_range", params={"max": 3650})
        view = await CaseAccess(request.app[STORE]).visible_channels(who)
        points = await AudienceRepo(request.app[STORE]).since(time.time() - days * 86_400)
        ranked = ranking([p for p in points if view.may_read(str(p["entity"]))], kind=kind, limit=100)
        await audit(
            request, who, "growth.list", filter={"kind": kind, "days": days}, result_count=len(ranked), via="console"
        )
        return render(request, "growth.html", **base, items=ranked, kind=kind, days=days, kinds=KINDS)

    @page(routes, "GET", "/console/growth/{entity}", OPERATIONS, "one room's or bot's audience over time")
    async def entity_growth(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        entity = request.match_info["entity"].lower()[:NAME_MAX]
        if not (await CaseAccess(request.app[STORE]).visible_channels(who)).may_read(entity):
            await audit(request, who, "channel.refused", target=entity, result_count=0, via="console")
            raise NotAuthorized(
                "this private chat belongs to a case you are not a member of", code="access.private_chat"
            )
        points = await AudienceRepo(request.app[STORE]).series(entity)
        await audit(request, who, "growth.get", target=entity, result_count=len(points), via="console")
        t = translator(request)["t"]
        return render(
            request,
            "growth_entity.html",
            **base,
            entity=entity,
            points=points,
            growth=growth_of(entity, points),
            chart=growth_chart(t, entity, points),
            figures=FIGURES,
        )

    @page(routes, "GET", "/console/targets", MANAGERS, "crawl targets: add, pause, resume, run now, remove")
    async def targets(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        config = _config(request)
        rows, _ = await _target_health(request.app[STORE], config, errors=True)
        shown = _target_rows(rows, request.query)
        proposals = await manage.proposed_targets(request.app[STORE])
        return render(
            request,
            "targets.html",
            **base,
            items=shown,
            proposals=proposals,
            duration=lambda seconds: human_seconds(seconds, request_language(request)),
            groups=sorted(config.groups),
            health=request.query.get("health") or "",
            group=request.query.get("group") or "",
        )

    @page(routes, "POST", "/console/targets/add", MANAGERS, "add a crawl target or change its schedule")
    async def target_add(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        form = await request.post()
        priority = _optional(form, "priority")
        if priority is not None and not priority.lstrip("-").isdigit():
            raise BadQuery("priority must be a whole number", code="targets.bad_priority", params={"value": priority})
        await manage.add_target(
            request.app[STORE],
            _config(request),
            audit_log(request),
            _actor(who),
            _name(form),
            method=_optional(form, "method") or "web",
            every=_optional(form, "every"),
            cron=_optional(form, "cron"),
            group=_optional(form, "group"),
            jitter=_optional(form, "jitter"),
            priority=int(priority) if priority is not None else None,
        )
        raise web.HTTPSeeOther("/console/targets")

    @page(routes, "POST", "/console/targets/pause", MANAGERS, "pause or resume a crawl target")
    async def target_pause(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        form = await request.post()
        action = str(form.get("action", ""))
        if action not in ("pause", "resume"):
            raise BadQuery("action must be pause or resume", code="form.bad_action")
        await manage.set_paused(
            request.app[STORE], _config(request), audit_log(request), _actor(who), _name(form), paused=action == "pause"
        )
        raise web.HTTPSeeOther("/console/targets")

    @page(routes, "POST", "/console/targets/run-now", MANAGERS, "queue a crawl of a target now")
    async def target_run_now(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        form = await request.post()
        created = await manage.enqueue_now(
            request.app[STORE], _config(request), audit_log(request), _actor(who), _name(form)
        )
        raise web.HTTPSeeOther("/console/targets?" + urlencode({"queued": created.value}))

    @page(routes, "POST", "/console/targets/review", MANAGERS, "approve or reject a proposed target")
    async def target_review(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        form = await request.post()
        action = str(form.get("action", ""))
        if action not in ("approve", "reject"):
            raise BadQuery("action must be approve or reject", code="query.bad_choice",
                           params={"field": "action", "choices": "approve, reject"})  # fmt: skip
        await manage.review_target(
            request.app[STORE], audit_log(request), _actor(who), _name(form), approve=action == "approve",
            reason=_optional(form, "reason"),
        )  # fmt: skip
        raise web.HTTPSeeOther("/console/targets")

    @page(routes, "POST", "/console/targets/remove", MANAGERS, "remove a crawl target")
    async def target_remove(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        form = await request.post()
        await manage.remove_target(request.app[STORE], _config(request), audit_log(request), _actor(who), _name(form))
        raise web.HTTPSeeOther("/console/targets")

    @page(routes, "GET", "/console/accounts", MANAGERS, "the Telegram account pool's state")
    async def accounts(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        now = time.time()
        items = [
            {
                "name": d["_id"],
                "state": d.get("state"),
                "reason": d.get("state_reason"),
                "flood_until": datetime.fromtimestamp(float(d["flood_until"]), UTC)
                if float(d.get("flood_until") or 0) > now
                else None,
                "flood_waits": d.get("flood_waits", 0),
                "updated_at": d.get("updated_at"),
            }
            for d in await AccountRepo(request.app[STORE]).list_all()
        ]  # (sessions, phones and proxies never leave the repository for this page)
        state = request.query.get("state") or None
        if state is not None:
            items = [i for i in items if (i["state"] if not i["flood_until"] else "flood_wait") == state]
        return render(request, "accounts.html", **base, items=items, state=state or "")

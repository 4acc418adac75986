"""Channel networks: who forwards whom, mentions whom, links to whom, shares media with whom.

Nodes are channels (stored ones by their channel key; ones only named by others by their lower-case
username, which is the key they get if ever crawled) and bots (``via @bot``, ``@…bot`` mentions).
Edges are directed from the channel whose message says it to the one named, one edge per relation
(``forward``, ``mention``, ``link``, ``via_bot``, ``shared_media``), with ``weight`` = how many
messages, ``first``/``last`` = the dates of the first and last of them (ISO 8601, UTC) — so Gephi
filters by weight and time. In GEXF the edges also carry ``start``/``end`` (the UTC days of the first
and last message) as GEXF 1.2 time data (``mode="dynamic"``, ``timeformat="date"``), so Gephi's
timeline plays the network out over time; days, not instants, because ``date`` is the one time
format that networkx's GEXF reader reads back (it has no parser for ``dateTime``), and a network
spanning months needs no finer step. GraphML has no time type; there ``first``/``last`` stay strings.
``shared_media`` joins two channels that posted the same bytes (SHA-256), from the lower key to the
higher, weighted by the number of digests they share.

networkx builds the graph and writes GraphML and GEXF, the two formats Gephi opens natively.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx

from foundation.links import LinkKind, normalize
from foundation.models import ChannelRef
from storage.client import Doc, Store
from storage.repos.channels import ChannelRepo
from storage.repos.messages import MessageRepo

RELATIONS = ("forward", "mention", "link", "via_bot", "shared_media")


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if value else None


def _is_bot(name: str) -> bool:
    return name.lower().endswith("bot")


class _Builder:
    def __init__(self, channels: ChannelRepo) -> None:
        self.channels = channels
        self.graph: nx.MultiDiGraph = nx.MultiDiGraph()
        self._keys: dict[str, str] = {}

    async def key_of(self, username: str) -> str:
        name = username.lower().lstrip("@")
        if name not in self._keys:
            self._keys[name] = await self.channels.resolve(ChannelRef(username=name)) or name
        return self._keys[name]

    def node(self, key: str, **attrs: Any) -> None:
        if key not in self.graph:
            self.graph.add_node(key, kind="channel", label=key, held=False)
        for name, value in attrs.items():
            if value is not None:
                self.graph.nodes[key][name] = value

    def edge(self, src: str, dst: str, relation: str, when: str | None, count: int = 1) -> None:
        if src == dst:
            return
        self.node(src)
        self.node(dst)
        if self.graph.has_edge(src, dst, key=relation):
            data = self.graph.edges[src, dst, relation]
            data["weight"] += count
            if when:
                data["first"] = min(filter(None, (data["first"], when)))
                data["last"] = max(filter(None, (data["last"], when)))
        else:
            dates = {"first": when or "", "last": when or ""}
            self.graph.add_edge(src, dst, key=relation, relation=relation, label=relation, weight=count, **dates)


async def _targets(builder: _Builder, row: Doc) -> list[tuple[str, str, bool]]:
    """(target key, relation, is a bot) for one message."""
    out: list[tuple[str, str, bool]] = []
    fwd = row.get("forwarded_from")
    if isinstance(fwd, dict):
        if fwd.get("username"):
            out.append((await builder.key_of(str(fwd["username"])), "forward", False))
        elif fwd.get("channel_id") is not None:
            out.append((f"id{fwd['channel_id']}", "forward", False))
    for name in row.get("mentions") or []:
        if isinstance(name, str) and name:
            out.append((await builder.key_of(name), "mention", _is_bot(name)))
    for url in row.get("links") or []:
        link = normalize(url) if isinstance(url, str) else None
        if link is not None and link.username and link.kind in (LinkKind.USERNAME, LinkKind.MESSAGE):
            out.append((await builder.key_of(link.username), "link", _is_bot(link.username)))
    if isinstance(row.get("via_bot"), str) and row["via_bot"]:
        out.append((await builder.key_of(row["via_bot"]), "via_bot", True))
    return out


def _digests(row: Doc) -> set[str]:
    found = {d for d in row.get("media_digests") or [] if isinstance(d, str)}
    found |= {m["sha256"] for m in row.get("media") or [] if isinstance(m, dict) and isinstance(m.get("sha256"), str)}
    return found


async def build_graph(store: Store, *, seeds: Sequence[str] | None = None, depth: int = 1) -> nx.MultiDiGraph:
    """The whole network of what is stored, or only what lies within ``depth`` hops of ``seeds``."""
    channels = ChannelRepo(store)
    builder = _Builder(channels)
    for doc in await channels.list(limit=1_000_000):
        builder.node(
            str(doc["_id"]), label=doc.get("username") or str(doc["_id"]), title=doc.get("title") or "",
            username=doc.get("username") or "", held=True,
        )  # fmt: skip
    media_channels: dict[str, dict[str, str]] = defaultdict(dict)  # digest → channel → first date
    for row in await MessageRepo(store).network_rows():
        src = str(row.get("channel") or "")
        if not src:
            continue
        when = _iso(row.get("date"))
        for target, relation, bot in await _targets(builder, row):
            builder.edge(src, target, relation, when)
            if bot:
                builder.graph.nodes[target]["kind"] = "bot"
        for digest in _digests(row):
            seen = media_channels[digest]
            if src not in seen or (when and when < seen[src]):
                seen[src] = when or ""
    for holders in media_channels.values():
        ordered = sorted(holders)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                builder.edge(a, b, "shared_media", max(holders[a], holders[b]) or None)
    graph = builder.graph
    if seeds is None:
        return graph
    return neighbourhood(graph, seeds, depth)


async def channel_neighbours(store: Store, key: str) -> list[dict[str, Any]]:
    """One channel's neighbours without reading the whole store: its own messages (out) and the
    messages elsewhere that forward or mention it (in). Shared media is left to the full export."""
    channels = ChannelRepo(store)
    builder = _Builder(channels)
    doc = await channels.get(key)
    names = set(await channels.alias_usernames(key))
    if doc and doc.get("username"):
        names.add(str(doc["username"]))
    repo = MessageRepo(store)
    rows = await repo.network_rows([key]) + await repo.network_rows_naming(sorted(names))
    for row in rows:
        src = str(row.get("channel") or "")
        for target, relation, bot in await _targets(builder, row):
            if key not in (src, target):
                continue
            builder.edge(src, target, relation, _iso(row.get("date")))
            if bot:
                builder.graph.nodes[target]["kind"] = "bot"
    for node in builder.graph:
        builder.graph.nodes[node]["held"] = await channels.exists(node)
    return neighbours(builder.graph, key)


def neighbourhood(graph: nx.MultiDiGraph, seeds: Iterable[str], depth: int) -> nx.MultiDiGraph:
    """The seeds and every node within ``depth`` hops of one (edges in either direction)."""
    undirected = graph.to_undirected(as_view=True)
    keep: set[str] = set()
    for seed in seeds:
        if seed in graph:
            keep |= set(nx.single_source_shortest_path_length(undirected, seed, cutoff=depth))
    return graph.subgraph(keep).copy()


def neighbours(graph: nx.MultiDiGraph, key: str) -> list[dict[str, Any]]:
    """One channel's edges, out and in, heaviest first (what the console's channel page shows)."""
    rows: list[dict[str, Any]] = []
    if key not in graph:
        return rows
    for _, other, data in graph.out_edges(key, data=True):
        rows.append({"channel": other, "direction": "out", **_edge_fields(graph, other, data)})
    for other, _, data in graph.in_edges(key, data=True):
        rows.append({"channel": other, "direction": "in", **_edge_fields(graph, other, data)})
    rows.sort(key=lambda r: (-int(r["weight"]), r["channel"], r["relation"]))
    return rows


def _edge_fields(graph: nx.MultiDiGraph, other: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": graph.nodes[other].get("kind", "channel"),
        "held": bool(graph.nodes[other].get("held")),
        "relation": data["relation"],
        "weight": int(data["weight"]),
        "first": data.get("first") or None,
        "last": data.get("last") or None,
    }


def _utc_day(iso: object) -> str | None:
    """``YYYY-MM-DD`` (UTC) of an ISO 8601 time, or None when there is none or it does not parse."""
    if not isinstance(iso, str) or not iso:
        return None
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return (at.astimezone(UTC) if at.tzinfo else at).date().isoformat()


def with_time_intervals(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy whose edges carry GEXF ``start``/``end`` (UTC days of ``first``/``last``); networkx's
    GEXF writer turns them into edge time bounds and makes the graph ``dynamic`` with
    ``timeformat="date"``. An edge without dates gets none (it exists at every time)."""
    timed = graph.copy()
    for _, _, data in timed.edges(data=True):
        start, end = _utc_day(data.get("first")), _utc_day(data.get("last"))
        if start and end:
            data["start"], data["end"] = start, end
    return timed


def write_graph(graph: nx.MultiDiGraph, out: Path, fmt: str) -> None:
    """GraphML or GEXF 1.2 (dynamic), written whole to a temporary name and renamed (never half a file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if fmt == "gexf":
            nx.write_gexf(with_time_intervals(graph), tmp, version="1.2draft")
        elif fmt == "graphml":
            nx.write_graphml(graph, tmp)
        else:
            raise ValueError(f"unknown graph format {fmt!r}")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)

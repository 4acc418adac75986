"""Network graphs: the sample site's forwards and mentions, crawled for real, exported by the CLI as
GEXF and GraphML and read back with networkx; the GEXF is also checked element by element against
what the GEXF 1.2 schema requires and Gephi reads (Gephi itself, and the schema file, are not
available here: none of the PyPI GEXF packages tried — gexfpy, pygexf, simplegexf — ships gexf.xsd)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from xml.etree import ElementTree

import networkx as nx
import pytest

import config
from crawler.captures.graph import build_graph, neighbours
from crawler.crawl_web import crawl_channel
from crawler.ingest import Ingest
from spiders.sample_site import SampleSite, World, build_world
from storage.client import Store
from storage.repos.messages import MessageRepo

FAST = {"AUTOTHROTTLE_ENABLED": False, "TGWATCH_RETRY_BASE_DELAY": 0.05, "TGWATCH_RETRY_MAX_DELAY": 0.2}
CRAWLED = ("daily_brief", "media_lab")


@pytest.fixture
async def site() -> AsyncIterator[SampleSite]:
    async with SampleSite.serve() as served:
        yield served


def cli(uri: str, database: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(TGWATCH_MONGODB_URI=uri, TGWATCH_DATABASE=database, TGWATCH_DATA_DIR=str(data_dir))
    command = [sys.executable, "-m", "crawler", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


GEXF_NS = "{http://www.gexf.net/1.2draft}"
ATTR_TYPES = {"integer", "long", "double", "float", "boolean", "liststring", "string", "anyURI"}


def check_gexf_structure(path: Path) -> tuple[int, int]:
    """What GEXF 1.2 (gexf.xsd, 1.2draft) makes required, and what Gephi's importer relies on; the
    (nodes, edges) counts. Fails with the first departure."""
    root = ElementTree.parse(path).getroot()
    assert root.tag == f"{GEXF_NS}gexf" and root.get("version") == "1.2"
    assert [child.tag for child in root if child.tag != f"{GEXF_NS}meta"] == [f"{GEXF_NS}graph"]
    graph = root.find(f"{GEXF_NS}graph")
    assert graph is not None
    assert graph.get("defaultedgetype") == "directed" and graph.get("mode") in ("static", "dynamic")
    # time data: a dynamic graph names its time format, and every start/end parses as it
    timeformat = graph.get("timeformat")
    assert (graph.get("mode") == "dynamic") == (timeformat is not None)
    assert timeformat in (None, "date", "dateTime"), timeformat
    parse_time = date.fromisoformat if timeformat == "date" else datetime.fromisoformat
    declared: dict[str, dict[str, str]] = {"node": {}, "edge": {}}  # class → attribute id → type
    for block in graph.findall(f"{GEXF_NS}attributes"):
        assert block.get("class") in declared and block.get("mode") in (None, "static", "dynamic")
        for attr in block.findall(f"{GEXF_NS}attribute"):
            assert attr.get("id") and attr.get("title") and attr.get("type") in ATTR_TYPES, attr.attrib
            declared[str(block.get("class"))][str(attr.get("id"))] = str(attr.get("type"))
    order = [child.tag.removeprefix(GEXF_NS) for child in graph]
    assert order == sorted(order, key=["attributes", "nodes", "edges"].index)  # the schema's sequence

    def values(element: ElementTree.Element, cls: str) -> None:
        for value in element.iterfind(f"{GEXF_NS}attvalues/{GEXF_NS}attvalue"):
            kind = declared[cls].get(str(value.get("for")))
            assert kind is not None, f"attvalue for an undeclared {cls} attribute: {value.attrib}"
            raw = value.get("value")
            assert raw is not None
            if kind == "boolean":
                assert raw in ("true", "false")
            elif kind in ("integer", "long"):
                int(raw)
            elif kind in ("float", "double"):
                float(raw)

    node_ids: set[str] = set()
    for node in graph.iterfind(f"{GEXF_NS}nodes/{GEXF_NS}node"):
        node_id, label = node.get("id"), node.get("label")
        assert node_id and node_id not in node_ids and label, node.attrib
        node_ids.add(node_id)
        values(node, "node")
    edge_ids: set[str] = set()
    typed: set[tuple[str, str, str]] = set()
    for edge in graph.iterfind(f"{GEXF_NS}edges/{GEXF_NS}edge"):
        edge_id, source, target = edge.get("id"), edge.get("source"), edge.get("target")
        assert edge_id and edge_id not in edge_ids, edge.attrib
        edge_ids.add(edge_id)
        assert source in node_ids and target in node_ids and source != target, edge.attrib
        assert float(edge.get("weight", "nan")) >= 1, edge.attrib
        # parallel edges differ by their label (the relation): Gephi merges same-type parallels
        label = edge.get("label")
        assert label and (source, target, label) not in typed, edge.attrib
        typed.add((str(source), str(target), label))
        assert edge.get("type") in (None, "directed")
        start, end = edge.get("start"), edge.get("end")
        if start is not None or end is not None:
            assert timeformat is not None, f"edge time without a dynamic graph: {edge.attrib}"
        if start is not None and end is not None:
            assert parse_time(start) <= parse_time(end), edge.attrib  # type: ignore[operator]
        values(edge, "edge")
    return len(node_ids), len(edge_ids)


async def expected_edges(store: Store, world: World) -> Counter[tuple[str, str, str]]:
    """(source, target, relation) → messages, from the world's own data for the messages stored."""
    want: Counter[tuple[str, str, str]] = Counter()
    for name in CRAWLED:
        held = {int(d["msg_id"]) for d in await MessageRepo(store).id_states(name)}
        for m in world.channels[name].messages:
            if m.id not in held:
                continue
            if m.forwarded_from and m.forwarded_from.username and m.forwarded_from.username != name:
                want[(name, m.forwarded_from.username, "forward")] += 1
            for mention in dict.fromkeys(m.text.mentions):
                if mention != name:
                    want[(name, mention, "mention")] += 1
            if m.via_bot:
                want[(name, m.via_bot, "via_bot")] += 1
    return want


async def test_forward_and_mention_network_of_the_sample_site(
    site: SampleSite, store: Store, ingest: Ingest, embedded_uri: str, tmp_path: Path
) -> None:
    settings = config.load()
    for name in CRAWLED:
        summary = await crawl_channel(settings, ingest, name, base_url=site.base_url, scrapy_overrides=FAST)
        assert summary.messages > 0
    want = await expected_edges(store, build_world())
    assert want[("daily_brief", "media_lab", "forward")] > 0 and want[("media_lab", "daily_brief", "mention")] > 0

    graph = await build_graph(store)
    edges = graph.edges(keys=True, data=True)
    got = {(a, b, k): d["weight"] for a, b, k, d in edges if k in {"forward", "mention", "via_bot"}}
    assert got == dict(want)
    assert graph.nodes["sample_helper_bot"]["kind"] == "bot"
    assert graph.nodes["daily_brief"]["held"] and not graph.nodes["korea_now"]["held"]
    edge = graph.edges["daily_brief", "media_lab", "forward"]
    assert edge["first"] <= edge["last"] and edge["first"].startswith("20")
    rows = neighbours(graph, "media_lab")
    assert {"channel": "daily_brief", "direction": "in", "relation": "forward"}.items() <= next(
        r for r in rows if r["direction"] == "in" and r["relation"] == "forward"
    ).items()

    data_dir = tmp_path / "data"
    gexf, graphml = tmp_path / "net.gexf", tmp_path / "net.graphml"
    run = cli(embedded_uri, store.db.name, data_dir, "graph", "export", "--format", "gexf", str(gexf))
    assert run.returncode == 0, run.stderr
    back = nx.read_gexf(gexf)
    assert check_gexf_structure(gexf) == (back.number_of_nodes(), back.number_of_edges())
    # Gephi's timeline: a dynamic graph, each dated edge bounded by the UTC days of its first and
    # last message, read back by networkx as written
    root = ElementTree.parse(gexf).getroot().find(f"{GEXF_NS}graph")
    assert root is not None and (root.get("mode"), root.get("timeformat")) == ("dynamic", "date")
    assert back.graph["mode"] == "dynamic"

    def day(iso: str) -> str:
        at = datetime.fromisoformat(iso)
        return (at.astimezone(UTC) if at.tzinfo else at).date().isoformat()

    want_times = {(a, b, k): (day(d["first"]), day(d["last"])) for a, b, k, d in edges if d["first"]}
    got_times = {(a, b, d["label"]): (d["start"], d["end"]) for a, b, d in back.edges(data=True) if "start" in d}
    assert got_times == want_times and want_times
    # the precise times stay as plain attributes
    firsts = {(a, b, d["label"]): d["first"] for a, b, d in back.edges(data=True) if d.get("first")}
    assert firsts == {(a, b, k): d["first"] for a, b, k, d in edges if d["first"]}
    assert {"daily_brief", "media_lab", "korea_now", "sample_helper_bot", "big_feed"} <= set(back.nodes)
    weights = Counter({(a, b, d["label"]): int(d["weight"]) for a, b, d in back.edges(data=True)})
    assert all(weights[k] == v for k, v in want.items())

    # one seed, depth 0: only the seed itself; depth 1: it and its neighbours
    run = cli(embedded_uri, store.db.name, data_dir, "graph", "export", "--channel", "@korea_now", "--depth", "0",
              str(graphml))  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert set(nx.read_graphml(graphml).nodes) == {"korea_now"}
    run = cli(embedded_uri, store.db.name, data_dir, "graph", "export", "--channel", "korea_now", str(graphml))
    near = nx.read_graphml(graphml)
    assert {"korea_now", "daily_brief", "media_lab"} <= set(near.nodes) and "sample_helper_bot" not in near.nodes

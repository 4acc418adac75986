"""The tree keeps docs/architecture.md's rules: one owner per collection, pymongo only in storage/, no
import against the layers, no cycle between top-level packages, features joined only along declared edges.

Why as a test: these rules decay one convenient import at a time, and nobody reviews a whole import
graph. The rules are data in ``tests/architecture_rules.py``; a failing test prints every violation on
one line (``rule: file:line: detail``), so its output is the work plan. The self-checks at the bottom
plant one violation at a time in a small tree and in a copy of the real one, and expect exactly it: a
checker that found nothing would otherwise pass silently.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.architecture_rules import (
    DECLARED_EDGES,
    PACKAGES,
    RULES_DOC,
    Rules,
    Violation,
    by_rule,
    check,
    layer_of,
    ours,
    read_tree,
    unit_of,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def found() -> list[Violation]:
    return check(ROOT)


def expect_none(violations: list[Violation], *rules: str) -> None:
    chosen = [v for v in violations if v.rule in rules]
    if chosen:
        header = f"{len(chosen)} violation(s) of: " + "; ".join(f"{r} = {RULES_DOC[r]}" for r in rules)
        pytest.fail("\n".join([header, *map(str, chosen)]), pytrace=False)


# --- the real tree ----------------------------------------------------------------------------------


def test_every_collection_names_an_owner_that_exists(found: list[Violation]) -> None:
    expect_none(found, "owner-missing")


def test_collections_are_touched_only_by_their_owner(found: list[Violation]) -> None:
    expect_none(found, "collection-owner", "collection-dynamic", "collection-undeclared")


def test_only_storage_imports_the_database_driver(found: list[Violation]) -> None:
    expect_none(found, "driver-import")


def test_no_import_goes_against_the_layers(found: list[Violation]) -> None:
    expect_none(found, "layer-import")


def test_no_cycle_between_top_level_packages(found: list[Violation]) -> None:
    expect_none(found, "package-cycle")


def test_features_use_each_other_only_along_declared_edges(found: list[Violation]) -> None:
    expect_none(found, "undeclared-edge")


def test_every_module_has_a_layer_and_every_declared_edge_is_used() -> None:
    """The tables stay true: a module outside every layer is unchecked, and an edge nobody draws any more
    is a permission nobody should inherit."""
    tree = read_tree(ROOT)
    rules = Rules()
    assert [m for m in tree.modules if layer_of(m, rules) == "unknown"] == []
    used = {
        (unit_of(i.source, rules), unit_of(i.target, rules))
        for i in tree.imports
        if ours(i.target) and layer_of(i.source, rules) == layer_of(i.target, rules)
    }
    assert sorted(DECLARED_EDGES - used) == [], "declared edges no longer drawn: remove them from DECLARED_EDGES"


# --- self-checks: a planted violation is found, and only it ------------------------------------------

SCHEMA = """\
from pymongo import ASCENDING


class Collection:
    pass


COLLECTIONS = (
    Collection("things", "thing id", [], owner="storage.repos.things:ThingRepo", doc="foundation.records:Thing"),
)
"""

CLEAN: dict[str, str] = {
    "config/__init__.py": "",
    "config/settings.py": "LIMIT = 1\n",
    "foundation/__init__.py": "",
    "foundation/records.py": "from config.settings import LIMIT\n\n\nclass Thing:\n    size = LIMIT\n",
    "storage/__init__.py": "",
    "storage/schema.py": SCHEMA,
    "storage/repos/__init__.py": "",
    "storage/repos/things.py": (
        "from pymongo.errors import PyMongoError\n\nfrom foundation.records import Thing\n\nNAME = 'things'\n\n\n"
        "class ThingRepo:\n    def __init__(self, store):\n        self._coll = store[NAME]\n"
    ),
    "spiders/__init__.py": "",
    "spiders/page.py": "from foundation.records import Thing\n",
    "telegram_watch/__init__.py": "",
    "telegram_watch/live.py": "from foundation import records\n",
    "crawler/__init__.py": "",
    "crawler/ingest.py": "from spiders import page\nfrom storage.repos.things import ThingRepo\n",
    "crawler/media/__init__.py": "",
    "crawler/media/stage.py": "from ..ingest import ThingRepo\n",
    "crawler/cli/__init__.py": "",
    "crawler/cli/main.py": "import storage.schema\nfrom crawler.media import stage\nfrom telegram_watch import live\n",
}

# planted file → its text, and the (rule, file, line) it must produce, nothing more
PLANTS: dict[str, tuple[dict[str, str], set[tuple[str, str, int]]]] = {
    "collection by literal": (
        {"crawler/media/peek.py": "async def peek(store):\n    return await store['things'].find_one({})\n"},
        {("collection-owner", "crawler/media/peek.py", 2)},
    ),
    "collection by an imported name": (
        {
            "crawler/media/peek.py": "from storage.repos.things import NAME\n\n\nclass Peek:\n    def f(self):\n"
            "        return self._store[NAME]\n"
        },
        {("collection-owner", "crawler/media/peek.py", 6)},
    ),
    "collection by a computed name": (
        {"crawler/media/peek.py": "def peek(store, name):\n    return store.db[name]\n"},
        {("collection-dynamic", "crawler/media/peek.py", 2)},
    ),
    "collection the schema does not declare": (
        {"storage/repos/other.py": "def f(db):\n    return db.get_collection('nothing')\n"},
        {("collection-undeclared", "storage/repos/other.py", 2)},
    ),
    "collection without an owner": (
        {"storage/schema.py": SCHEMA.replace("\n)\n", "\n    Collection('loose', 'id', []),\n)\n")},
        {("owner-missing", "storage/schema.py", 10)},
    ),
    "owner class that does not exist": (
        {"storage/schema.py": SCHEMA.replace("ThingRepo", "GoneRepo")},
        {("owner-missing", "storage/schema.py", 9)},
    ),
    "owner moved to another module": (
        {"storage/schema.py": SCHEMA.replace("storage.repos.things:", "storage.repos.gone:")},
        {("owner-missing", "storage/schema.py", 9), ("collection-owner", "storage/repos/things.py", 10)},
    ),
    "pymongo in a function outside storage": (
        {"spiders/db.py": "def connect():\n    import pymongo\n\n    return pymongo\n"},
        {("driver-import", "spiders/db.py", 2)},
    ),
    "bson outside storage": (
        {"crawler/media/ids.py": "from bson import ObjectId\n"},
        {("driver-import", "crawler/media/ids.py", 1)},
    ),
    "source importing storage": (
        {"spiders/save.py": "from storage.repos import things\n"},
        {("layer-import", "spiders/save.py", 1)},
    ),
    "feature importing the shell in a function": (
        {"crawler/media/back.py": "def f():\n    from crawler.cli import main\n"},
        {("layer-import", "crawler/media/back.py", 2)},
    ),
    "cycle between packages": (
        {"foundation/loop.py": "import spiders.page\n"},
        {
            ("layer-import", "foundation/loop.py", 1),
            ("package-cycle", "foundation/loop.py", 1),
            ("package-cycle", "spiders/page.py", 1),
        },
    ),
    "shell imported only for type checking": (
        {
            "crawler/media/typed.py": (
                "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from crawler.cli import main\n"
            )
        },
        {("layer-import", "crawler/media/typed.py", 4)},
    ),
    "undeclared feature edge by a relative import": (
        {"crawler/hashing/__init__.py": "", "crawler/hashing/rel.py": "from ..media import stage\n"},
        {("undeclared-edge", "crawler/hashing/rel.py", 1)},
    ),
    "undeclared feature edge": (
        {"crawler/hashing.py": "from crawler.media import stage\n"},
        {("undeclared-edge", "crawler/hashing.py", 1)},
    ),
    "source importing a source": (
        {"spiders/both.py": "from telegram_watch.live import records\n"},
        {("undeclared-edge", "spiders/both.py", 1)},
    ),
}


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def keys(violations: list[Violation]) -> set[tuple[str, str, int]]:
    return {(v.rule, v.path, v.line) for v in violations}


def test_the_small_tree_is_clean(tmp_path: Path) -> None:
    write(tmp_path, CLEAN)
    assert check(tmp_path) == []


@pytest.mark.parametrize("case", list(PLANTS))
def test_a_planted_violation_is_found_alone(tmp_path: Path, case: str) -> None:
    files, expected = PLANTS[case]
    write(tmp_path, {**CLEAN, **files})
    found = check(tmp_path)
    print("\n".join(str(v) for v in found))
    assert keys(found) == expected


def test_a_cycle_alone_is_a_cycle_violation(tmp_path: Path) -> None:
    """With a layer table that allows everything, a cycle is still refused."""
    every = frozenset({"config", "foundation", "storage", "sources", "features", "shell"})
    permissive = Rules(allowed=dict.fromkeys(every, every))
    write(tmp_path, {**CLEAN, "config/loop.py": "def f():\n    import storage.schema\n"})
    found = check(tmp_path, permissive)
    assert keys(found) == {
        ("package-cycle", "config/loop.py", 2),  # config → storage
        ("package-cycle", "storage/repos/things.py", 3),  # storage → foundation
        ("package-cycle", "foundation/records.py", 1),  # foundation → config
    }
    assert "cycle config ⇄ foundation ⇄ storage" in by_rule(found, "package-cycle")[0].detail


# planted into a copy of the real tree: each must add exactly its own violation to what is there today
REAL_PLANTS: dict[str, tuple[str, set[tuple[str, str, int]]]] = {
    "crawler/media/planted_owner.py": (
        "async def peek(store):\n    return await store['messages'].find_one({})\n",
        {("collection-owner", "crawler/media/planted_owner.py", 2)},
    ),
    "spiders/planted_driver.py": (
        "def connect():\n    import pymongo\n\n    return pymongo\n",
        {("driver-import", "spiders/planted_driver.py", 2)},
    ),
    "telegram_watch/planted_upward.py": (
        "from storage.repos import runs\n",
        {("layer-import", "telegram_watch/planted_upward.py", 1)},
    ),
    "crawler/hashing/planted_edge.py": (
        "from crawler.takedowns import models\n",
        {("undeclared-edge", "crawler/hashing/planted_edge.py", 1)},
    ),
}


def test_planted_violations_in_a_copy_of_the_real_tree(tmp_path: Path, found: list[Violation]) -> None:
    for pkg in PACKAGES:
        if (ROOT / pkg).is_dir():
            shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    write(tmp_path, {rel: text for rel, (text, _) in REAL_PLANTS.items()})
    after = check(tmp_path)
    added = set(after) - set(found)
    assert set(found) <= set(after)
    assert keys(sorted(added)) == set().union(*(expected for _, expected in REAL_PLANTS.values()))

"""docs/architecture.md's dependency rules as data, and a checker that reads the source tree with ``ast``.

Why a module of its own: the rules (which layer a module belongs to, what each layer may import, which
feature may use which) are the part people will edit while the tree is moved into its target shape, so
they sit at the top as plain tables. The checker below never imports the code it checks: it parses
files, so it takes about a second, needs no database, and can be pointed at a temporary copy of
the tree with a planted violation (``tests/test_architecture.py`` does that to show each rule fails).

Violations are one line each, ``rule: path:line: detail``, so a failing run reads as a work plan.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# --- the rules (edit these) -------------------------------------------------------------------------

#: Top-level packages that are checked (tests/, bench/ and scripts/ are not).
PACKAGES: tuple[str, ...] = ("config", "foundation", "storage", "spiders", "telegram_watch", "crawler")

#: Layer of a module: the longest matching dotted prefix wins. ``crawler.<x>`` not listed here is the
#: feature ``x`` (see ``unit_of``). Modules that will move to ``foundation/`` are listed where they are
#: now, so today's imports of them are judged by where they are going.
LAYER_OF: dict[str, str] = {
    "config": "config",
    "foundation": "foundation",
    "foundation.models": "foundation",  # → foundation/ (records)
    "foundation.errors": "foundation",  # → foundation/ (the error tree)
    "foundation.links": "foundation",  # → foundation/ (t.me link forms)
    "foundation.logs": "foundation",  # → foundation/ (structlog chain + redaction)
    "foundation.keys": "foundation",  # → foundation/ (key files)
    "foundation.metrics": "foundation",  # → foundation/ (Prometheus metric declarations)
    "foundation.contracts": "foundation",  # → foundation/ (records and protocols sources and features exchange)
    "foundation.egress": "foundation",  # → foundation/ (the one egress guard)
    "foundation.egress_http": "foundation",  # → foundation/ (the guard for aiohttp)
    "foundation.case_ids": "foundation",  # → foundation/ (the case-id rule)
    "foundation.child_processes": "foundation",  # → foundation/ (children die with their parent)
    "foundation.i18n": "foundation",  # → foundation/ (message catalogs, Korean and English)
    "storage": "storage",
    "spiders": "sources",
    "telegram_watch": "sources",
    "crawler": "shell",  # the package itself (crawler/__init__.py)
    "crawler.__main__": "shell",
    "crawler.cli": "shell",
    "crawler.api": "shell",
    "crawler.server_modules": "shell",  # every feature that adds routes to the HTTP server: a composition root
    "crawler.console": "shell",
    "crawler.scheduling": "shell",
    "crawler.demo": "shell",
    "crawler.demo_site": "shell",
    "crawler.demo_alerts": "shell",
    "crawler.pipeline": "shell",  # assembles the ingest door from several features: a composition root
}

#: ``crawler.<x>`` is the feature ``x`` unless ``LAYER_OF`` says otherwise.
FEATURES_PACKAGE = "crawler"

#: Which layers a layer may import (its own layer is governed by ``SIDEWAYS_CHECKED``).
ALLOWED: dict[str, frozenset[str]] = {
    "config": frozenset(),
    "foundation": frozenset({"config"}),
    "storage": frozenset({"foundation", "config"}),
    "sources": frozenset({"foundation", "config"}),
    "features": frozenset({"sources", "storage", "foundation", "config"}),
    "shell": frozenset({"features", "sources", "storage", "foundation", "config"}),
}

#: Layers whose units may use each other only along a declared edge (``DECLARED_EDGES``). In the other
#: layers, modules of the same layer import each other freely.
SIDEWAYS_CHECKED: frozenset[str] = frozenset({"features", "sources"})

#: Feature → feature (and source → source) imports that exist and are accepted, by unit name (a feature
#: is named without ``crawler.``), measured on the tree of 2026-12-06. A new edge fails the test until it
#: is declared here (or, better, goes through an interface that already is). There is no source → source
#: edge today.
DECLARED_EDGES: frozenset[tuple[str, str]] = frozenset(
    {
        ("crawl_web", "ingest"),  # type checking only
        ("detection", "tokens"),  # Role
        ("discovery", "crawl_web"),  # discovery.run, in a function and type checking
        ("discovery", "ingest"),  # snowball stage
        ("discovery", "tokens"),
        ("evidence", "audit"),
        ("evidence", "detection"),  # evidence.api → detection.quarantine (with the one above: a pair cycle)
        ("evidence", "ingest"),  # capture stage
        ("evidence", "tokens"),
        ("investigate", "audit"),
        ("investigate", "detection"),  # quarantine; detection.api in a function
        ("investigate", "evidence"),  # ledger (proofs)
        ("investigate", "hashing"),  # sniff
        ("investigate", "tokens"),
        ("media", "detection"),  # detection.service (enqueue)
        ("media", "hashing"),  # the hashing library
        ("media", "ingest"),
        ("takedowns", "evidence"),  # ledger, wiring
        ("takedowns", "hashing"),  # signal registry (re-upload)
        ("takedowns", "ingest"),  # re-upload stage
        ("takedowns", "investigate"),  # access, pagination, serialize
        ("takedowns", "tokens"),
        # the route-declaration interface (crawler/routes): features declare their HTTP routes on it
        ("detection", "routes"),
        ("discovery", "routes"),
        ("evidence", "routes"),
        ("investigate", "routes"),
        ("takedowns", "routes"),
        ("routes", "tokens"),
        ("routes", "audit"),
        # the consent-based watchlist (docs/watchlist.md): a detector on the detection client, ledger
        # consent records, safe decoding from the hashing library, its one route
        ("watchlist", "detection"),  # client (the faces detector consumes the queue like any other)
        ("watchlist", "evidence"),  # entries.watchlist_entry (consent records)
        ("watchlist", "hashing"),  # safe image opening, sniffing
        ("watchlist", "routes"),
        ("watchlist", "tokens"),  # Role
        ("evidence", "captures"),  # bundles carry the WACZ web archive and the gap report (issue 23)
        ("media", "routes"),  # the HMA-compatible lookup routes (crawler.media.hma_api)
        ("media", "tokens"),  # Role, for those routes
    }
)

#: Database driver packages: only ``DRIVER_HOME`` may import them.
DRIVERS: tuple[str, ...] = ("pymongo", "bson", "motor", "gridfs")
DRIVER_HOME: str = "storage"

#: The module that declares every collection (``Collection("name", ..., owner="module:Class")``); it may
#: name any collection.
SCHEMA_MODULE: str = "storage.schema"

#: Modules that may index the store with a name they do not know statically (the store itself, the
#: schema, the generic work queue).
DYNAMIC_ACCESS_HOME: str = "storage"

#: Calls that open a collection on a caller's behalf: callee name → (position of the collection name
#: argument, owner it counts as). ``WorkQueue(store, "crawl_tasks")`` is a use of the queue, not a touch.
HANDLE_CALLS: dict[str, tuple[int, str]] = {"WorkQueue": (1, "storage.workqueue:WorkQueue")}

#: Method calls whose first argument names a collection (``db.get_collection("x")`` and the like).
COLLECTION_METHODS: frozenset[str] = frozenset({"get_collection", "collection", "coll"})

#: A subscript ``X["name"]`` is a collection access when X's last identifier looks like the store.
STORE_LIKE = re.compile(r"_?(?:\w+_)?(?:store|db|database)")

RULES_DOC = {
    "collection-owner": "a collection touched outside its owner (storage/schema.py `owner=`)",
    "collection-dynamic": "the store indexed outside storage/ with a name that is neither a literal nor a constant",
    "collection-undeclared": "the store indexed with a name storage/schema.py does not declare",
    "owner-missing": "a collection in storage/schema.py without an owner, or whose owner does not exist",
    "driver-import": "pymongo/bson imported outside storage/",
    "layer-import": "an import the layer table does not allow (upward, or into the app shell)",
    "package-cycle": "an import edge that is part of a cycle between top-level packages",
    "undeclared-edge": "a feature→feature (or source→source) import not in DECLARED_EDGES",
}


# --- what the checker finds -------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Violation:
    rule: str
    path: str
    line: int
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.path}:{self.line}: {self.detail}"


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (ours resolved to the deepest module that exists; others as written)
    path: str
    line: int
    lazy: bool  # inside a function
    type_only: bool  # under ``if TYPE_CHECKING:``


@dataclass(frozen=True)
class Access:
    """A collection named where a store is indexed (or a handle opened)."""

    module: str
    cls: str | None  # innermost enclosing class
    name: str | None  # None: not a literal (dynamic)
    path: str
    line: int
    via: str | None = None  # owner it goes through (``HANDLE_CALLS``)
    expr: str = ""


@dataclass(frozen=True)
class Declared:
    name: str
    owner: str  # "module:Class"
    doc: str  # "module:Class" or ""
    line: int


@dataclass
class Tree:
    root: Path
    modules: dict[str, Path] = field(default_factory=dict)  # dotted name → file
    imports: list[Import] = field(default_factory=list)
    accesses: list[Access] = field(default_factory=list)
    classes: dict[str, set[str]] = field(default_factory=dict)  # module → top-level class names
    declared: list[Declared] = field(default_factory=list)


@dataclass(frozen=True)
class Rules:
    layer_of: dict[str, str] = field(default_factory=lambda: dict(LAYER_OF))
    allowed: dict[str, frozenset[str]] = field(default_factory=lambda: dict(ALLOWED))
    sideways_checked: frozenset[str] = SIDEWAYS_CHECKED
    declared_edges: frozenset[tuple[str, str]] = DECLARED_EDGES


# --- module names and layers ------------------------------------------------------------------------


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str, rules: Rules) -> str:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if n == 1 and parts[0] == FEATURES_PACKAGE and len(parts) > 1:
            return "features"
        found = rules.layer_of.get(".".join(parts[:n]))
        if found is not None:
            return found
    return "unknown"


def unit_of(module: str, rules: Rules) -> str:
    """The thing sideways edges are drawn between: a feature (``crawler.<x>``), a source package, a layer."""
    layer = layer_of(module, rules)
    parts = module.split(".")
    if layer == "features":
        return parts[1]
    if layer == "sources":
        return parts[0]
    return layer


# --- reading the tree -------------------------------------------------------------------------------


def python_files(root: Path, packages: Iterable[str] = PACKAGES) -> Iterator[Path]:
    for pkg in packages:
        base = root / pkg
        if base.is_dir():
            yield from sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _last_identifier(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


@dataclass(frozen=True)
class _RawImport:
    base: str  # absolute module named by the statement
    name: str | None  # the imported name of ``from base import name`` (maybe a submodule)
    line: int
    lazy: bool
    type_only: bool


@dataclass(frozen=True)
class _RawAccess:
    key: str | None  # a literal name, or None
    key_name: str | None  # or a plain name to resolve through module constants
    line: int
    via: str | None
    cls: str | None
    expr: str


@dataclass(frozen=True)
class _Facts:
    """What one module says, independent of the rest of the tree (so it can be cached by content)."""

    imports: tuple[_RawImport, ...]
    accesses: tuple[_RawAccess, ...]
    classes: frozenset[str]
    constants: dict[str, str]  # module-level ``NAME = "text"``
    names: dict[str, tuple[str, str]]  # local name → (module, attribute) from ``from module import attribute``


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


@functools.lru_cache(maxsize=4096)
def _scan(package: str, source: str, filename: str) -> _Facts:
    """One iterative pass over a module's tree; ``package`` anchors relative imports."""
    module = ast.parse(source, filename=filename)
    imports: list[_RawImport] = []
    accesses: list[_RawAccess] = []
    classes: set[str] = set()
    names: dict[str, tuple[str, str]] = {}
    stack: list[tuple[ast.AST, int, bool, str | None]] = [(module, 0, False, None)]

    def access(key: ast.expr, line: int, via: str | None, cls: str | None, node: ast.AST) -> None:
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            accesses.append(_RawAccess(key.value, None, line, via, cls, ""))
        elif isinstance(key, ast.Name):
            accesses.append(_RawAccess(None, key.id, line, via, cls, ast.unparse(node)[:70]))
        else:
            accesses.append(_RawAccess(None, None, line, via, cls, ast.unparse(node)[:70]))

    while stack:
        node, functions, type_only, cls = stack.pop()
        lazy = functions > 0
        if isinstance(node, ast.Import):
            imports.extend(_RawImport(a.name, None, node.lineno, lazy, type_only) for a in node.names)
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, node.module] if node.module else parts)
            else:
                base = node.module or ""
            for a in node.names:
                imports.append(_RawImport(base, a.name, node.lineno, lazy, type_only))
                names[a.asname or a.name] = (base, a.name)
            continue
        if isinstance(node, _FUNCTIONS):
            functions += 1
        elif isinstance(node, ast.ClassDef):
            if cls is None and not functions:
                classes.add(node.name)
            cls = node.name
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend((s, functions, True, cls) for s in node.body)
            stack.extend((s, functions, type_only, cls) for s in node.orelse)
            continue
        elif isinstance(node, ast.Subscript):
            ident = _last_identifier(node.value)
            if ident is not None and STORE_LIKE.fullmatch(ident) and not isinstance(node.slice, ast.Slice):
                access(node.slice, node.lineno, None, cls, node)
        elif isinstance(node, ast.Call):
            ident = _last_identifier(node.func)
            if isinstance(node.func, ast.Attribute) and ident in COLLECTION_METHODS and node.args:
                access(node.args[0], node.lineno, None, cls, node)
            elif ident in HANDLE_CALLS:
                index, owner = HANDLE_CALLS[ident]
                if len(node.args) > index:
                    access(node.args[index], node.lineno, owner, cls, node)
        stack.extend((child, functions, type_only, cls) for child in ast.iter_child_nodes(node))
    return _Facts(tuple(imports), tuple(accesses), frozenset(classes), _string_constants(module), names)


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"``: what a subscript by ``NAME`` means."""
    out: dict[str, str] = {}
    for stmt in tree.body:
        value: ast.expr | None = None
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Assign):
            value, targets = stmt.value, stmt.targets
        elif isinstance(stmt, ast.AnnAssign):
            value, targets = stmt.value, [stmt.target]
        if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                out[target.id] = value.value
    return out


def _declared_collections(path: Path) -> list[Declared]:
    """``Collection("name", ..., owner="module:Class")`` calls in the schema, read without importing it."""
    out: list[Declared] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and _last_identifier(node.func) == "Collection" and node.args):
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        given = {
            kw.arg: kw.value.value
            for kw in node.keywords
            if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str)
        }
        out.append(Declared(first.value, given.get("owner", ""), given.get("doc", ""), node.lineno))
    return out


def read_tree(root: Path, packages: Iterable[str] = PACKAGES) -> Tree:
    """Imports (resolved to our deepest existing module) and collection accesses of every module."""
    tree = Tree(root=root)
    for path in python_files(root, packages):
        tree.modules[module_name(root, path)] = path
    facts: dict[str, _Facts] = {}
    for module, path in tree.modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        facts[module] = _scan(package, path.read_text(encoding="utf-8"), path.relative_to(root).as_posix())
        tree.classes[module] = set(facts[module].classes)
    for module, f in facts.items():
        rel = tree.modules[module].relative_to(root).as_posix()
        for i in f.imports:
            target = i.base
            if i.name is not None:
                sub = f"{i.base}.{i.name}" if i.base else i.name
                if sub in tree.modules:
                    target = sub
            tree.imports.append(Import(module, target, rel, i.line, i.lazy, i.type_only))
        for a in f.accesses:
            name = a.key
            if name is None and a.key_name is not None:
                name = f.constants.get(a.key_name)
                if name is None and a.key_name in f.names:
                    base, attr = f.names[a.key_name]
                    name = facts[base].constants.get(attr) if base in facts else None
            tree.accesses.append(Access(module, a.cls, name, rel, a.line, a.via, a.expr))
    schema = tree.modules.get(SCHEMA_MODULE)
    if schema is not None:
        tree.declared = _declared_collections(schema)
    return tree


# --- the rules --------------------------------------------------------------------------------------


def _top(module: str) -> str:
    return module.partition(".")[0]


def ours(module: str) -> bool:
    return _top(module) in PACKAGES


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _missing(tree: Tree, ref: str) -> str | None:
    """Why ``module:Class`` does not name a class of the tree, or None when it does."""
    module, _, cls = ref.partition(":")
    if module not in tree.modules:
        return f"module {module} does not exist"
    if cls and cls not in tree.classes.get(module, set()):
        return f"{module} has no class {cls}"
    return None


def check_collections(tree: Tree) -> list[Violation]:
    """Each collection has an owner that exists; only the owner's module names the collection."""
    owners = {d.name: d.owner for d in tree.declared}
    schema = tree.modules.get(SCHEMA_MODULE)
    schema_rel = schema.relative_to(tree.root).as_posix() if schema is not None else SCHEMA_MODULE
    out: list[Violation] = []
    for d in tree.declared:
        why = _missing(tree, d.owner) if d.owner else "no owner declared"
        if why is not None:
            out.append(Violation("owner-missing", schema_rel, d.line, f"{d.name}: {why}"))
        why = _missing(tree, d.doc) if d.doc else None
        if why is not None:
            out.append(Violation("owner-missing", schema_rel, d.line, f"{d.name}: document type {why}"))
    for a in tree.accesses:
        if a.module == SCHEMA_MODULE:
            continue
        where = f"{a.module}:{a.cls}" if a.cls else a.module
        if a.name is None:
            if a.via is None and not _within(a.module, DYNAMIC_ACCESS_HOME):
                out.append(Violation("collection-dynamic", a.path, a.line, f"{a.expr} in {where}"))
            continue
        owner = owners.get(a.name)
        if owner is None:
            if a.via is None:
                out.append(Violation("collection-undeclared", a.path, a.line, f"{a.name!r} in {where}"))
        elif owner and a.via is not None and a.via != owner:
            out.append(Violation("collection-owner", a.path, a.line, f"{a.name} via {a.via}; owner is {owner}"))
        elif owner and a.via is None and a.module != owner.partition(":")[0]:
            out.append(Violation("collection-owner", a.path, a.line, f"{a.name} in {where}; owner is {owner}"))
    return out


def check_drivers(tree: Tree) -> list[Violation]:
    return [
        Violation("driver-import", i.path, i.line, f"{i.source} imports {i.target}")
        for i in tree.imports
        if _top(i.target) in DRIVERS and not _within(i.source, DRIVER_HOME)
    ]


def check_layers(tree: Tree, rules: Rules) -> list[Violation]:
    out: list[Violation] = []
    for i in tree.imports:
        if not ours(i.target):
            continue
        src, dst = layer_of(i.source, rules), layer_of(i.target, rules)
        scope = " (in a function)" if i.lazy else " (type checking)" if i.type_only else ""
        if src == dst:
            a, b = unit_of(i.source, rules), unit_of(i.target, rules)
            if src in rules.sideways_checked and a != b and (a, b) not in rules.declared_edges:
                detail = f"{a} → {b}: {i.source} imports {i.target}{scope}"
                out.append(Violation("undeclared-edge", i.path, i.line, detail))
        elif dst not in rules.allowed.get(src, frozenset()):
            detail = f"{src} → {dst}: {i.source} imports {i.target}{scope}"
            out.append(Violation("layer-import", i.path, i.line, detail))
    return out


def package_of(module: str, rules: Rules) -> str:
    """The top-level package a module belongs to once the planned moves are done (``LAYER_OF`` says
    which of today's ``crawler`` modules go to ``foundation/``)."""
    return "foundation" if layer_of(module, rules) == "foundation" else _top(module)


def package_graph(tree: Tree, rules: Rules) -> dict[tuple[str, str], list[Import]]:
    """Top-level package → top-level package, with every import that draws the edge."""
    edges: dict[tuple[str, str], list[Import]] = {}
    for i in tree.imports:
        if not ours(i.target):
            continue
        a, b = package_of(i.source, rules), package_of(i.target, rules)
        if a != b:
            edges.setdefault((a, b), []).append(i)
    return edges


def strongly_connected(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Tarjan's algorithm; components of more than one node are the cycles."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
        succ.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(succ[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def check_cycles(tree: Tree, rules: Rules) -> list[Violation]:
    """One line per package edge inside a cycle: where it is first drawn, how many imports draw it and
    how many of those the layer table already forbids (the edges to cut first)."""
    edges = package_graph(tree, rules)
    out: list[Violation] = []
    for comp in strongly_connected({package_of(m, rules) for m in tree.modules}, edges):
        members = set(comp)
        for (a, b), imports in sorted(edges.items()):
            if a not in members or b not in members:
                continue
            first = min(imports, key=lambda i: (i.path, i.line))
            against = sum(1 for i in imports if layer_of(i.target, rules) not in _may_import(i.source, rules))
            detail = (
                f"{a} → {b} in cycle {' ⇄ '.join(comp)}: {len(imports)} imports, {against} against the layers;"
                f" first {first.source} imports {first.target}"
            )
            out.append(Violation("package-cycle", first.path, first.line, detail))
    return out


def _may_import(module: str, rules: Rules) -> frozenset[str]:
    layer = layer_of(module, rules)
    return rules.allowed.get(layer, frozenset()) | {layer}


def check(root: Path, rules: Rules | None = None) -> list[Violation]:
    """Every violation in the tree at ``root``, sorted by rule, file and line."""
    rules = rules or Rules()
    tree = read_tree(root)
    found = check_collections(tree) + check_drivers(tree) + check_layers(tree, rules) + check_cycles(tree, rules)
    return sorted(set(found))


def by_rule(violations: Iterable[Violation], rule: str) -> list[Violation]:
    return [v for v in violations if v.rule == rule]

"""The engine's layering, read from the source with ``ast`` (docs/architecture.md, issue 13).

Every import counts: module-level, function-local and under ``TYPE_CHECKING``, relative or absolute
(``ansible_collections.pycontainer.engine.plugins.module_utils...``). Checked:
- no import cycle between modules of ``plugins/module_utils``;
- no import from a layer to a layer above it (``LAYERS``, lowest first); ``ansible/`` and ``cli/`` are the two
  faces on top and never import each other; a folder or top-level file without a rank fails;
- ``plugins/modules`` import only ``ansible/`` and basics, the connection plugin nothing of the faces;
- and the checker itself catches what it is meant to catch (planted cycles and upward imports in a tmp tree).
"""

from __future__ import annotations

import ast
import collections
import pathlib
from dataclasses import dataclass

import pytest

PACKAGE = "ansible_collections.pycontainer.engine.plugins.module_utils"
PLUGINS = pathlib.Path(__file__).resolve().parents[2] / "plugins"

# Top-level files of module_utils that are basics: listed, so a new top-level file needs a decision too.
BASICS = frozenset({
    "errors", "timefmt", "version", "refs", "faults", "fsutil", "config", "events", "event_filters", "engine_log",
    "treesize", "units", "trace",
})
# Layer ranks, lowest first: a module may import only from its own layer or a lower one.
LAYERS: dict[str, int] = {
    "(basics)": 0,
    "linux": 1,
    "records": 2,
    "image": 3,
    "network": 4,
    "runtime": 5,
    "supervision": 6,
    "container": 7,
    "system": 8,
    "engine": 9,       # engine.py, the facade
    "ansible": 10,     # the two faces: same rank, and neither may import the other
    "cli": 10,
}
FACES = ("ansible", "cli")


@dataclass(frozen=True)
class Edge:
    source: str     # importing module, dotted, relative to module_utils ("runtime.volumes")
    target: str     # imported module
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line})"


def module_name(root: pathlib.Path, path: pathlib.Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def collect_modules(root: pathlib.Path) -> dict[str, pathlib.Path]:
    return {module_name(root, p): p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


def _imported(node: ast.AST, package: str) -> list[str]:
    """Dotted names (relative to module_utils) an import statement may load; [] for imports from elsewhere."""
    if isinstance(node, ast.Import):
        return [a.name[len(PACKAGE) + 1:] for a in node.names if a.name.startswith(PACKAGE + ".")]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        parts = package.split(".") if package else []
        if node.level > 1:
            parts = parts[:len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    elif node.module == PACKAGE:
        base = ""
    elif node.module and node.module.startswith(PACKAGE + "."):
        base = node.module[len(PACKAGE) + 1:]
    else:
        return []
    # ``from X import name``: name may be a submodule of X, or a name defined in X
    return [f"{base}.{a.name}" if base else a.name for a in node.names] + ([base] if base else [])


def resolve(node: ast.AST, package: str, modules: dict[str, pathlib.Path]) -> tuple[list[str], list[str]]:
    """(modules an import statement loads, module_utils names it asks for that are no module)."""
    candidates = _imported(node, package)
    if isinstance(node, ast.ImportFrom) and candidates:
        # each imported name: the submodule if it is one, else the module it is taken from
        base = candidates[-1] if len(candidates) > len(node.names) else ""
        candidates = [c if c in modules else base for c in candidates[:len(node.names)]]
    targets = list(dict.fromkeys(candidates))
    return [t for t in targets if t in modules], [t or "(module_utils)" for t in targets if t not in modules]


def import_edges(root: pathlib.Path, modules: dict[str, pathlib.Path] | None = None
                 ) -> tuple[list[Edge], list[Edge]]:
    """(edges between modules, imports of module_utils that resolve to no module)."""
    modules = modules if modules is not None else collect_modules(root)
    edges: list[Edge] = []
    unresolved: list[Edge] = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):  # walk: function-local and TYPE_CHECKING too
            found, missing = resolve(node, package, modules)
            edges.extend(Edge(name, target, node.lineno) for target in found if target != name)
            unresolved.extend(Edge(name, target, node.lineno) for target in missing)
    return edges, unresolved


def find_cycles(edges: list[Edge]) -> list[tuple[list[str], list[str]]]:
    """Per strongly connected component of more than one module (Tarjan, iterative): (a shortest cycle through
    its first module, all its modules)."""
    graph: dict[str, set[str]] = collections.defaultdict(set)
    for edge in edges:
        graph[edge.source].add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return [(_shortest_cycle(graph, component), sorted(component)) for component in components]


def _shortest_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    start = min(component)
    came_from: dict[str, str] = {}
    queue = collections.deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & component):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def layer(module: str) -> str:
    """The layer a module belongs to; KeyError (with the reason) for a folder or file without a rank."""
    top = module.split(".")[0]
    if module == "":
        return "(basics)"  # module_utils/__init__.py
    if top in LAYERS and (top != "engine" or module == "engine"):  # a ranked folder (or its __init__), engine.py
        return top
    if module in BASICS:
        return "(basics)"
    raise KeyError(f"{top!r} (module {module}) has no layer: rank the folder in LAYERS or list the file in BASICS")


def layering_violations(root: pathlib.Path) -> list[str]:
    """Upward imports, imports between the faces, unranked modules and unresolvable imports."""
    modules = collect_modules(root)
    edges, unresolved = import_edges(root, modules)
    problems = [f"unresolved import: {edge}" for edge in unresolved]
    unranked: dict[str, str] = {}
    for module in modules:
        try:
            layer(module)
        except KeyError as exc:
            unranked.setdefault(module.split(".")[0], exc.args[0])  # once per folder
    problems.extend(unranked.values())
    for edge in edges:
        try:
            source, target = layer(edge.source), layer(edge.target)
        except KeyError:
            continue  # reported above
        if source == target:
            continue
        if source in FACES and target in FACES:
            problems.append(f"face imports the other face: {edge}")
        elif LAYERS[target] > LAYERS[source]:
            problems.append(f"upward import {source} -> {target}: {edge}")
    return problems


def cycle_violations(root: pathlib.Path) -> list[str]:
    edges, _unresolved = import_edges(root)
    return ["import cycle: " + " -> ".join(cycle) + ("" if len(cycle) - 1 == len(members) else
                                                     f" (one of the cycles among {', '.join(members)})")
            for cycle, members in find_cycles(edges)]


def plugin_violations(plugins: pathlib.Path) -> list[str]:
    """Modules import only ansible/ and basics; the connection plugin imports neither face."""
    root = plugins / "module_utils"
    modules = collect_modules(root)
    problems = []
    for kind, allowed in (("modules", lambda lyr: lyr in ("ansible", "(basics)")),
                          ("connection", lambda lyr: lyr not in FACES)):
        for path in sorted((plugins / kind).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and node.level:
                    problems.append(f"{kind}/{path.name} line {node.lineno}: relative import")
                    continue
                found, _missing = resolve(node, "", modules)
                for target in found:
                    try:
                        where = layer(target)
                    except KeyError as exc:
                        problems.append(f"{kind}/{path.name}: {exc.args[0]}")
                        continue
                    if not allowed(where):
                        problems.append(f"{kind}/{path.name} line {node.lineno} imports {target} ({where})")
    return problems


# --- the project ------------------------------------------------------------------------------------------

def test_module_utils_has_no_import_cycles():
    cycles = cycle_violations(PLUGINS / "module_utils")
    assert not cycles, "\n".join(cycles)


def test_no_module_imports_a_layer_above_it_and_the_faces_stay_apart():
    problems = layering_violations(PLUGINS / "module_utils")
    assert not problems, "\n".join(problems)


def test_plugin_modules_import_only_their_face_and_the_connection_neither_face():
    problems = plugin_violations(PLUGINS)
    assert not problems, "\n".join(problems)


def test_the_graph_sees_the_engine():
    """The checker reads the real tree (a wrong root would make the three tests above pass on nothing)."""
    edges, _unresolved = import_edges(PLUGINS / "module_utils")
    assert any(e.source == "engine" and e.target == "config" for e in edges)
    assert any(e.source.startswith("ansible.") for e in edges)
    assert any(e.source.startswith("cli.") for e in edges)


# --- the checker catches what it must ---------------------------------------------------------------------

def _tree(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    root = tmp_path / "module_utils"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(root).parents:
            (root / parent / "__init__.py").touch()
        path.write_text(text)
    return root


CLEAN = {
    "errors.py": "class EngineError(Exception):\n    pass\n",
    "linux/libc.py": "from ..errors import EngineError\n",
    "records/containers.py": "from ..linux import libc\nfrom .. import errors\n",
    "runtime/volumes.py": "from ..records.containers import EngineError\n",
    "system/views.py": f"from {PACKAGE}.runtime.volumes import EngineError\n",
    "engine.py": "from .system import views\n",
    "ansible/glue.py": "from ..engine import views\n",
    "cli/main.py": "from ..engine import views\n",
}


def test_a_clean_tree_passes(tmp_path):
    root = _tree(tmp_path, CLEAN)
    assert layering_violations(root) == []
    assert cycle_violations(root) == []


@pytest.mark.parametrize("text", [
    "from ..system.views import x\n",                                   # relative, module level
    f"from {PACKAGE}.system import views\n",                            # absolute, submodule as a name
    f"import {PACKAGE}.system.views\n",                                 # plain import
    "def f():\n    from ..system import views\n    return views\n",     # function-local
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..engine import Engine\n",
], ids=["relative", "absolute-from", "import", "function-local", "type-checking"])
def test_a_planted_upward_import_is_caught(tmp_path, text):
    root = _tree(tmp_path, {**CLEAN, "records/hostconfig.py": text})
    problems = layering_violations(root)
    assert len(problems) == 1 and problems[0].startswith("upward import records -> "), problems
    assert "records.hostconfig -> " in problems[0]


def test_a_planted_cycle_is_caught_and_printed(tmp_path):
    root = _tree(tmp_path, {**CLEAN,
                            "records/a.py": "from .b import x\n",
                            "records/b.py": "def f():\n    from . import c\n",
                            "records/c.py": f"from {PACKAGE}.records import a\n"})
    assert cycle_violations(root) == ["import cycle: records.a -> records.b -> records.c -> records.a"]
    assert layering_violations(root) == []  # same folder: a cycle, not a layering problem


def test_a_cycle_through_package_init_is_caught(tmp_path):
    root = _tree(tmp_path, {**CLEAN, "linux/cgroups/__init__.py": "from .v2 import x\n",
                            "linux/cgroups/v2.py": "from . import helper\nfrom ..cgroups import y\n",
                            "linux/cgroups/helper.py": ""})
    assert cycle_violations(root) == ["import cycle: linux.cgroups -> linux.cgroups.v2 -> linux.cgroups"]


@pytest.mark.parametrize("source, target", [("ansible/container.py", "cli.main"), ("cli/run.py", "ansible.glue")])
def test_one_face_importing_the_other_is_caught(tmp_path, source, target):
    folder, name = target.split(".")
    root = _tree(tmp_path, {**CLEAN, source: f"from ..{folder} import {name}\n"})
    problems = layering_violations(root)
    assert len(problems) == 1 and problems[0].startswith("face imports the other face"), problems


@pytest.mark.parametrize("rel, what", [("storage/layers.py", "'storage' (module storage"),
                                       ("helpers.py", "'helpers' (module helpers)")])
def test_a_module_without_a_rank_fails_loudly(tmp_path, rel, what):
    root = _tree(tmp_path, {**CLEAN, rel: ""})
    problems = layering_violations(root)
    assert len(problems) == 1 and what in problems[0], problems


def test_an_import_of_a_missing_module_is_reported(tmp_path):
    root = _tree(tmp_path, {**CLEAN, "records/containers.py": "from ..nowhere import x\n"})
    assert layering_violations(root) == ["unresolved import: records.containers -> nowhere (line 1)"]


def test_plugin_modules_importing_the_cli_are_caught(tmp_path):
    _tree(tmp_path, CLEAN)
    (tmp_path / "modules").mkdir()
    (tmp_path / "connection").mkdir()
    (tmp_path / "modules" / "good.py").write_text(
        f"from ansible.module_utils.basic import AnsibleModule\nfrom {PACKAGE}.ansible.glue import run\n")
    (tmp_path / "modules" / "bad.py").write_text(f"from {PACKAGE}.cli import main\n")
    (tmp_path / "modules" / "engine_direct.py").write_text(f"from {PACKAGE}.engine import Engine\n")
    (tmp_path / "connection" / "conn.py").write_text(
        f"def f():\n    from {PACKAGE}.engine import Engine\n    from {PACKAGE}.ansible import glue\n")
    assert plugin_violations(tmp_path) == [
        "modules/bad.py line 1 imports cli.main (cli)",
        "modules/engine_direct.py line 1 imports engine (engine)",
        "connection/conn.py line 3 imports ansible.glue (ansible)",
    ]

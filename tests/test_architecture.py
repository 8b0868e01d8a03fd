"""The shape of the source tree, read with `ast` (nothing is imported): no import cycle, the core
names no partner and imports no plugin, plugins reach the core through one door and never each
other, no module past 400 lines, and no shipped code imports tests or benchmarks."""

from __future__ import annotations

import ast
import itertools
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("connector", "plugins")
MAX_LINES = 400
PARTNER_WORDS = re.compile(r"extole|listrak|segment", re.IGNORECASE)


@cache
def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of connector/ and plugins/ by dotted name (a package by its own name)."""
    found = {}
    for top in SHIPPED:
        for path in sorted((root / top).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _import_nodes(node: ast.AST, with_type_checking: bool):
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    children = ast.iter_child_nodes(node)
    if isinstance(node, ast.If) and not with_type_checking and "TYPE_CHECKING" in ast.unparse(node.test):
        children = node.orelse
    for child in children:
        yield from _import_nodes(child, with_type_checking)


def imports(name: str, root: Path = ROOT, with_type_checking: bool = False) -> dict[str, int]:
    """{imported module: line} for one module: `from a import b` is a.b when b is a module, relative
    imports are resolved, and imports under `if TYPE_CHECKING:` are left out unless asked for."""
    known = modules(root)
    path = known[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in _import_nodes(ast.parse(path.read_text(), str(path)), with_type_checking):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
            ]
        for target in targets:
            if target != name:
                found.setdefault(target, node.lineno)
    return found


def import_graph(root: Path = ROOT) -> dict[str, dict[str, int]]:
    known = modules(root)
    return {
        name: {target: line for target, line in imports(name, root).items() if target in known}
        for name in known
    }


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that can each reach the others."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def cycle_through(graph: dict[str, dict[str, int]], group: list[str]) -> list[str]:
    """One cycle inside a strongly connected group, as "module:line imports" steps."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node]):
            if target == start:
                steps = paths[node] + [start]
                return [f"{a}:{graph[a][b]} → {b}" for a, b in itertools.pairwise(steps)]
            if target in members and target not in paths:
                paths[target] = paths[node] + [target]
                queue.append(target)
    raise AssertionError(f"no cycle through {group}")


def test_no_import_cycle_between_modules():
    graph = import_graph()
    cycles = [cycle_through(graph, group) for group in strongly_connected(graph) if len(group) > 1]
    assert cycles == [], "\n\n".join("\n".join(cycle) for cycle in cycles)


def test_the_core_names_no_partner_outside_its_package_docstring():
    package = ROOT / "connector/__init__.py"
    docstring = ast.parse(package.read_text()).body[0]
    allowed = {(package, line) for line in range(docstring.lineno, docstring.end_lineno + 1)}
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "connector").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PARTNER_WORDS.search(line) and (path, number) not in allowed
    ]
    assert found == []


def test_no_module_is_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for path in modules().values()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_core_imports_no_plugin_and_shipped_code_no_tests_or_benchmarks():
    def forbidden(name: str) -> tuple[str, ...]:
        return ("plugins", "tests", "bench") if name.startswith("connector") else ("tests", "bench")

    found = [
        f"{name}:{line} imports {target}"
        for name in modules()
        for target, line in imports(name, with_type_checking=True).items()
        if target.split(".")[0] in forbidden(name)
    ]
    assert found == []


#: The one module of the core a plugin imports (connector/plugin_api.py says why).
PLUGIN_API = "connector.plugin_api"
#: A second door for test helpers and sandboxes only: the core's own test helpers (a Stack
#: part, a scripted answer), as flask.testing is for a Flask app's tests.
TESTING_API = "connector.testing"
FIRST_PARTY = ("connector", "plugins", "tests", "bench")


def is_test_code(name: str) -> bool:
    """A plugin's `testing` module, its sandbox (module or package): code for tests and demos."""
    parts = name.split(".")
    return len(parts) >= 3 and parts[2] in ("testing", "sandbox")


def plugin_import_problems(name: str, root: Path = ROOT) -> list[str]:
    """What module `name` of a plugin imports that it may not: anything first-party but the
    plugin API, its own package and (for test code) connector.testing."""
    own = ".".join(name.split(".")[:2])
    doors = (PLUGIN_API, TESTING_API) if is_test_code(name) else (PLUGIN_API,)
    problems = []
    for target, line in imports(name, root, with_type_checking=True).items():
        if target.split(".")[0] not in FIRST_PARTY:
            continue  # the standard library and third-party packages
        if target == own or target.startswith(f"{own}."):
            continue
        if any(target == door or target.startswith(f"{door}.") for door in doors):
            continue
        problems.append(f"{name}:{line} imports {target}")
    return problems


def test_plugins_import_only_the_plugin_api_their_own_package_and_libraries():
    found = [
        problem
        for name in modules()
        if name.startswith("plugins.") and name.count(".") >= 1
        for problem in plugin_import_problems(name)
    ]
    assert found == []


# -- the checks themselves --------------------------------------------------------------------
def test_a_cycle_is_found_and_named_with_its_lines():
    graph = {"a": {"b": 3}, "b": {"c": 5}, "c": {"a": 7, "d": 1}, "d": {}}
    (group,) = [g for g in strongly_connected(graph) if len(g) > 1]
    assert group == ["a", "b", "c"]
    assert cycle_through(graph, group) == ["a:3 → b", "b:5 → c", "c:7 → a"]


def test_imports_resolve_relative_and_submodule_names_and_skip_type_checking(tmp_path):
    web = tmp_path / "connector" / "web"
    web.mkdir(parents=True)
    for empty in (tmp_path / "connector" / "__init__.py", web / "__init__.py", web / "readmodel.py"):
        empty.write_text("")
    (web / "admin.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import readmodel\n"
        "from .. import web\n"
        "import connector.web.readmodel\n"
        "if TYPE_CHECKING:\n"
        "    from plugins.partner import source\n"
        "def lazy():\n"
        "    from ..web.access import refusal\n"
    )
    assert imports("connector.web.admin", tmp_path) == {
        "typing": 1,
        "connector.web.readmodel": 2,
        "connector.web": 3,
        "connector.web.access": 8,
    }
    assert imports("connector.web.admin", tmp_path, with_type_checking=True)["plugins.partner"] == 6


def test_a_plugin_importing_another_plugin_or_a_core_module_is_named(tmp_path):
    package = tmp_path / "plugins" / "partner"
    package.mkdir(parents=True)
    (tmp_path / "plugins" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "testing.py").write_text("from connector.testing import Part\nfrom plugins.other import x\n")
    (package / "source.py").write_text(
        "import json\nimport requests\n"
        "from connector.plugin_api import Source\n"
        "from connector.storable import cut\n"
        "from connector.testing import Part\n"
        "from plugins.partner import testing\n"
        "from plugins.other.verify import _list_fields\n"
    )
    (tmp_path / "connector").mkdir()
    modules.cache_clear()
    try:
        assert plugin_import_problems("plugins.partner.source", tmp_path) == [
            "plugins.partner.source:4 imports connector.storable",
            "plugins.partner.source:5 imports connector.testing",
            "plugins.partner.source:7 imports plugins.other.verify",
        ]
        assert plugin_import_problems("plugins.partner.testing", tmp_path) == [
            "plugins.partner.testing:2 imports plugins.other"
        ]
    finally:
        modules.cache_clear()

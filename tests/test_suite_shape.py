"""The test suite's own shape, read with `ast`: every test asserts something that can fail (an
`assert`, `pytest.raises`/`warns`, or a helper that asserts), so none passes merely by not
crashing."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where the helpers tests call live: the suite, the core's and each plugin's test helpers.
HELPERS = ("tests", "connector/testing", "plugins")


def _checks(node: ast.AST) -> bool:
    """Whether `node` holds an assert, a `pytest.raises`/`warns`, or `raise AssertionError`."""
    for child in ast.walk(node):
        if isinstance(child, ast.Assert):
            return True
        if (
            isinstance(child, ast.Raise)
            and child.exc is not None
            and "AssertionError" in ast.unparse(child.exc)
        ):
            return True
        if isinstance(child, ast.Call) and ast.unparse(child.func).split(".")[-1] in (
            "raises",
            "warns",
            "fail",
        ):
            return True
    return False


def _called(node: ast.AST) -> set[str]:
    return {ast.unparse(c.func).split(".")[-1] for c in ast.walk(node) if isinstance(c, ast.Call)}


@cache
def asserting_helpers(root: Path = ROOT) -> frozenset[str]:
    """Names of helper functions that assert, directly or through another such helper."""
    functions: dict[str, list[ast.FunctionDef]] = {}
    for top in HELPERS:
        for path in (root / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef) and not node.name.startswith("test_"):
                    functions.setdefault(node.name, []).append(node)
    found = {name for name, defs in functions.items() if any(_checks(d) for d in defs)}
    while True:
        more = {
            n for n, defs in functions.items() if n not in found and any(_called(d) & found for d in defs)
        }
        if not more:
            return frozenset(found)
        found |= more


def silent_tests(source: str, where: str) -> list[str]:
    """The tests in `source` that assert nothing, as `where:line name`."""
    helpers = asserting_helpers()
    return [
        f"{where}:{node.lineno} {node.name}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef)
        and node.name.startswith("test_")
        and not _checks(node)
        and not (_called(node) & helpers)
    ]


def test_every_test_asserts_something():
    found = [
        line
        for path in sorted((ROOT / "tests").rglob("test_*.py"))
        for line in silent_tests(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == []


def test_a_test_that_only_calls_is_found_and_one_whose_helper_asserts_is_not():
    source = (
        "def check_quietly(x):\n    assert x\n\n"
        "def test_quiet():\n    send_quietly(1)\n\n"
        "def test_through_a_helper():\n    wait_until(lambda: True)\n"
    )
    assert silent_tests(source, "t.py") == ["t.py:4 test_quiet"]

"""The tree stays readable: no import circle in `relay/`, and small modules.

Issue 16 broke the circle `relay/http` had (app -> admin -> app); this keeps
it broken. Imports inside `if TYPE_CHECKING:` blocks and inside functions are
not edges: they run late or never, so they cannot make an import cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("relay", "receiver_kit")
MAX_LINES = 450
# Modules allowed past MAX_LINES, each with its reason.
LONG_MODULES = {
    # The PostgreSQL queue: claim, commit and lease SQL kept beside the
    # transactions that must run them in order; its operators' half is split
    # off already (operations.py), as are batching, endpoints and the listener.
    "relay/storage/postgres/store.py": 700,
    # One page per route; each is short, and they share the helpers above them.
    "relay/http/dashboard/views.py": 560,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def top_level_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The modules `name` imports when it is itself imported."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    targets: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.If):
                if not _is_type_checking(node):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base if is_package else base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                targets.add(prefix)
                targets.update(f"{prefix}.{alias.name}" for alias in node.names)

    visit(tree.body)
    return {t for t in targets if t in known and t != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_no_import_circle() -> None:
    found = modules()
    known = set(found)
    # A package's __init__ importing its own submodules is how packages expose
    # them, not a circle: drop the edge from a submodule to its parents.
    graph = {
        name: {t for t in top_level_imports(path, name, known)
               if not name.startswith(t + ".")}
        for name, path in found.items()
    }
    assert "relay.http.admin" in graph["relay.http.app"]  # the parser sees imports
    assert "relay.http.state" in graph["relay.http.admin"]
    assert find_cycle(graph) is None, f"import circle: {' -> '.join(find_cycle(graph) or [])}"


def test_the_cycle_finder_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_modules_stay_small() -> None:
    too_long = {}
    for path in modules().values():
        rel = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text().splitlines())
        if lines > LONG_MODULES.get(rel, MAX_LINES):
            too_long[rel] = lines
    assert not too_long, f"split these, or give the reason in LONG_MODULES: {too_long}"

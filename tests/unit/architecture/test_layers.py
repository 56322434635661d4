"""The layout holds: core is layered (import-linter's contracts in pyproject.toml),
no module imports itself back through others, pages hold no SQL, and the root
conftest leans on no leaf conftest."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_the_import_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout and "core is layered KEPT" in done.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_no_module_imports_itself_back() -> None:
    """Counting imports made inside functions too (not those only for type checkers,
    which never run): no circle of any length."""
    graph = grimp.build_graph(
        "core", "cli", "gateway", "components", cache_dir=None, exclude_type_checking_imports=True
    )
    assert len(graph.modules) > 150
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    assert _cycles(graph) == [["a", "b", "c"]]


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_pages_hold_no_sql_and_no_store() -> None:
    pages = sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
    assert len(pages) > 5
    for page in pages:
        bad = [m for m in _imports(page) if m.startswith(("sqlalchemy", "core.store", "psycopg"))]
        assert bad == [], f"{page.name} imports {bad}"


def test_the_root_conftest_imports_no_leaf_conftest() -> None:
    bad = [m for m in _imports(ROOT / "tests" / "conftest.py") if m.endswith("conftest")]
    assert bad == []


def test_every_core_package_names_its_public_face() -> None:
    missing = []
    for init in sorted((ROOT / "core").glob("*/__init__.py")):
        if "migrations" in init.parts:
            continue
        tree = ast.parse(init.read_text())
        names = {
            t.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for t in node.targets
            if isinstance(t, ast.Name)
        }
        if "__all__" not in names or not ast.get_docstring(tree):
            missing.append(init.parent.name)
    assert missing == []


def test_the_old_documented_paths_still_work_and_say_where_to_go() -> None:
    """core.tools and core.db were in the README before the layout: they still import,
    with a DeprecationWarning naming the new path, until they are removed in 0.3."""
    import importlib

    for name, new in (("core.tools", "core.engine"), ("core.db", "core.runtime")):
        sys.modules.pop(name, None)
        with pytest.warns(DeprecationWarning, match=new):
            module = importlib.import_module(name)
        assert module.__all__
    from core.engine import tool
    from core.tools import tool as old_tool

    assert old_tool is tool


def _tool(name: str) -> str:
    return shutil.which(name) or str(Path(sys.executable).parent / name)


@pytest.mark.parametrize(
    "command",
    [["ruff", "format", "--check", "."], ["ruff", "check", "."], ["mypy"]],
    ids=["ruff-format", "ruff-check", "mypy"],
)
def test_the_code_checks_pass(command: list[str]) -> None:
    """README says the code is kept formatted, lint-clean and typed: CI checks it."""
    done = subprocess.run(
        [_tool(command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_gateway_routers_open_no_transactions() -> None:
    """The gateway calls core's use cases; reading or writing rows is core's (no
    ``db.session()`` / ``db.read()`` in a router)."""
    opened = []
    for module in sorted((ROOT / "gateway").glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("session", "read", "runner_session")
                and not node.args
            ):
                opened.append(f"{module.name}:{node.lineno}")
    assert opened == []

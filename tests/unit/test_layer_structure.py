"""The shape of the shared layer, checked from its source: services depend on ports and the domain only, no import
cycles, small functions and files, nothing of the tests or the benchmarks in what Lambda runs, a small CLI parser.
These are the rules docs/architecture.md states; this test keeps them true as the code changes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "accrual"
PACKAGE = LAYER / "accrual"
MAX_FUNCTION_LINES = 80
MAX_FILE_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(LAYER).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """The modules a file imports (`from a import b` names `a.b` when that is a module of the layer)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.If) and top_level_only:  # `if TYPE_CHECKING:` imports do not run
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_services_import_only_ports_the_domain_and_each_other() -> None:
    forbidden = ("accrual.adapters", "boto3", "botocore", "pynamodb", "accrual.settings")
    offenders = {
        name: sorted(i for i in _imports(path, top_level_only=False) if i.startswith(forbidden))
        for name, path in MODULES.items()
        if name.startswith("accrual.service")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_domain_and_the_readers_know_nothing_of_aws() -> None:
    forbidden = ("accrual.adapters", "accrual.service", "boto3", "botocore", "pynamodb")
    offenders = {
        name: sorted(i for i in _imports(path, top_level_only=False) if i.startswith(forbidden))
        for name, path in MODULES.items()
        if name.startswith(("accrual.domain", "accrual.partners"))
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_import_cycle_among_the_layers_modules() -> None:
    graph = {
        name: {i for i in _imports(path, top_level_only=True) if i in MODULES and i != name}
        for name, path in MODULES.items()
    }
    # a package's __init__ importing its own modules is how a package re-exports; it is not a cycle of the design
    for name in graph:
        graph[name] = {i for i in graph[name] if not (MODULES[name].name == "__init__.py" and i.startswith(name + "."))}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target] if target in path else [name, target])
            elif target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


SYSTEM_TIME_READS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today")}


def _system_time_reads(path: Path) -> list[str]:
    """Where a file reads the system clock as a date (`datetime.now()`, `datetime.utcnow()`, `date.today()`, however
    `datetime` or `date` is reached): the enclosing class or function of each read."""
    found: list[str] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = where
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                inner = f"{where}.{child.name}" if where else child.name
            elif isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
                owner = child.func.value
                owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
                if (owner_name, child.func.attr) in SYSTEM_TIME_READS:
                    found.append(f"{where or '<module>'} (line {child.lineno})")
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


def test_only_the_system_clock_reads_the_time_of_day() -> None:
    """Services, adapters and handlers take "now" from the composition's Clock (a test sets it), never the system."""
    checked = {name: path for name, path in MODULES.items() if name.startswith(("accrual.service", "accrual.adapters"))}
    checked |= {f"functions/{path.parent.name}": path for path in sorted((ROOT / "functions").glob("*/app.py"))}
    assert "functions/outbox_relay" in checked and "accrual.service.outbox" in checked
    reads = {name: found for name, path in checked.items() if (found := _system_time_reads(path))}
    assert reads == {}
    # the one real clock, found by the same search
    assert [read.split(" ")[0] for read in _system_time_reads(MODULES["accrual.composition"])] == ["SystemClock.now"]


def test_no_function_in_the_layer_is_longer_than_80_lines() -> None:
    long_functions = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{name}.{node.name}: {length} lines")
    assert long_functions == []


def test_no_file_in_the_layer_is_longer_than_500_lines() -> None:
    long_files = {
        name: count
        for name, path in MODULES.items()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES
    }
    assert long_files == {}


def test_the_layer_holds_nothing_of_the_tests_or_the_benchmarks() -> None:
    forbidden = ("tests", "support", "bench", "accrual_dev", "moto", "hypothesis", "pytest")
    offenders = {
        name: sorted(i for i in _imports(path, top_level_only=False) if i.split(".")[0] in forbidden)
        for name, path in MODULES.items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}
    requirements = (LAYER / "requirements.txt").read_text(encoding="utf-8").lower()
    for package in ("moto", "pytest", "hypothesis", "plotly"):
        assert package not in requirements


@pytest.mark.parametrize("function", ["build_parser", "main"])
def test_the_cli_parser_is_a_small_loop(function: str) -> None:
    path = ROOT / "dev" / "accrual_dev" / "cli.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == function]
    assert found, f"{function} is in dev/accrual_dev/cli.py"
    assert (found[0].end_lineno or 0) - found[0].lineno + 1 <= 40

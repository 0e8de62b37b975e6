"""The package's imports flow one way, and only the UI layer speaks gradio."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sentiment"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, wherever in the file (a function-level import is an edge too)."""
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}  # `from . import plots` names a module
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_import_cycle_inside_the_package():
    graph, state, cycles = _graph(), {}, []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles
    assert "sentiment.model.scoring" in graph["sentiment.model.predictor"]  # the check sees real edges


def test_gradio_is_imported_only_by_the_app_and_its_ui_layer():
    speaking = {_module(p) for p in [*PACKAGE.rglob("*.py"), ROOT / "app.py"]
                if any(m == "gradio" or m.startswith("gradio.") for m in _imports(p))}
    assert speaking and all(m == "app" or m.startswith("sentiment.ui") for m in speaking), speaking


def test_every_refusal_is_one_kind_that_the_app_and_the_clis_both_catch():
    from sentiment import cli
    from sentiment.config import USER_ERRORS, ConfigError, UserError
    from sentiment.data.files import DataError
    from sentiment.model.checkpoint import CheckpointError
    from sentiment.ui import boundary
    from sentiment.ui.jobs import RunInProgress

    assert all(issubclass(kind, UserError) for kind in (ConfigError, DataError, CheckpointError, RunInProgress))
    assert boundary.USER_ERRORS is cli.USER_ERRORS is USER_ERRORS and OSError in USER_ERRORS


def _long_functions(source: str, limit: int = 60) -> list[str]:
    """Functions over `limit` lines with no `# long:` comment on their `def` line saying why."""
    lines = source.splitlines()
    return [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > limit and "# long:" not in lines[node.lineno - 1]]


def test_every_function_reads_at_once():
    long_one = "def f():\n" + "    x = 1\n" * 60
    assert _long_functions(long_one) == ["f (61 lines)"]
    assert _long_functions(long_one.replace("def f():", "def f():  # long: one table")) == []
    found = {str(p.relative_to(ROOT)): _long_functions(p.read_text())
             for p in [*PACKAGE.rglob("*.py"), ROOT / "app.py", *(ROOT / "tests").glob("*.py")]}
    assert not {path: names for path, names in found.items() if names}

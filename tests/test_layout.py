"""The package's imports flow one way, and only the UI layer speaks gradio."""
import ast
from pathlib import Path, PurePath

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


def test_the_package_shows_its_parts_in_folders():
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= 8, top
    for folder in [PACKAGE, *(p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
        names = sorted({p.stem for p in folder.iterdir() if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py")
                                                                                   .is_file())} - {"__init__"})
        alike = [(a, b) for a in names for b in names if a != b and b.startswith(a)]  # train / trainer
        assert not alike, f"{folder.relative_to(ROOT)}: {alike}"
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 450}
    assert not long, long


def _immutable(value: object) -> bool:
    import dataclasses
    import types

    if isinstance(value, (str, bytes, int, float, complex, bool, type(None), frozenset, types.MappingProxyType, type,
                          PurePath)):
        return True
    if isinstance(value, tuple):
        return all(_immutable(v) for v in value)
    return dataclasses.is_dataclass(value) and type(value).__dataclass_params__.frozen


def test_the_ui_layer_keeps_no_state_of_its_own_and_no_module_writes_anothers():
    import importlib

    for path in (PACKAGE / "ui").glob("*.py"):
        module = importlib.import_module(_module(path))
        statements = [node for node in ast.parse(path.read_text()).body if isinstance(node, (ast.Assign, ast.AnnAssign))]
        assigned = {target.id for node in statements
                    for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(target, ast.Name)}
        held = {name: type(getattr(module, name)).__name__ for name in assigned - {"log"}  # the logger is logging's
                if not _immutable(getattr(module, name))
                and type(getattr(module, name)).__module__ not in ("typing", "collections.abc")}  # type aliases
        assert not held, f"{path.name} holds state at module level: {held}"
    assert not _immutable([]) and not _immutable({}) and _immutable(("a", 1))  # the check sees a list
    for path in [*PACKAGE.rglob("*.py"), ROOT / "app.py"]:
        tree = ast.parse(path.read_text())
        modules = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                   for alias in node.names if _is_module(node, alias.name, path)}
        modules |= {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        assignments = [node for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AugAssign))]
        writes = [f"{path.name}:{node.lineno}" for node in assignments
                  for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                  if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                  and target.value.id in modules]
        assert not writes, writes


def _is_module(node: ast.ImportFrom, name: str, path: Path) -> bool:
    """Whether `from X import name` in `path` names a module of the package (`from . import state`)."""
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    base = package[: len(package) - node.level + 1] if node.level else []
    parent = ROOT.joinpath(*base, *(node.module.split(".") if node.module else []))
    return (parent / f"{name}.py").is_file() or (parent / name / "__init__.py").is_file()
